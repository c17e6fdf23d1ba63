"""Plotting from the data: ``ds.tribe.plot(...)`` and ``ds.tribe.plot_timecourse(roi=...)``.

:mod:`tribev2.viz` attaches these methods to the ``tribe`` accessor of :mod:`tribev2.analysis` when it is
imported (``import tribev2`` does), so the analysis layer never imports the plotting layer above it.
``.tribe.plot()`` draws what the data is:

- a prediction (Dataset or DataArray): maps at ``time=`` (default: three times spread over the recording);
- an evaluation (:func:`tribev2.evaluate`): the Pearson r map (``metric=``), or the best regions as bars when it
  was made ``by_roi``;
- contributions (:func:`tribev2.contributions`): text / audio / video as one RGB map, or one ``modality=``;
- any DataArray with a ``vertex`` dimension: its map (:func:`tribev2.viz.plot_surface`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import xarray as xr

from ..analysis import TribeAccessor
from .scene import _pick_subject

DEFAULT_TIMES = 3  # maps drawn by .tribe.plot() of data over time when no time is given
MAX_LINES = 12  # region time courses in one plot


def plot_data(data, *, time=None, variable: str | None = None, **options):
    """The figure ``data.tribe.plot(...)`` draws (see the module documentation); ``options`` go to
    :func:`plot_surface`, :func:`plot_contributions` or :func:`plot_evaluation`."""
    from .static import plot_contributions, plot_surface

    if isinstance(data, xr.Dataset) and variable is None and "pearson_r" in data.data_vars:
        return plot_evaluation(data, **options)
    if isinstance(data, xr.Dataset):
        data = _variable(data, variable or "prediction")
    if "modality" in data.dims:
        modality = options.pop("modality", None)
        if modality is None:
            unused = sorted(set(options) & {"cmap", "vmin", "vmax", "symmetric", "threshold", "outlines"})
            if unused:
                raise ValueError(f"{', '.join(unused)}: not for contributions drawn as RGB (pick one with modality=)")
            if time is not None:
                data = data.sel(time=time, method="nearest")
            return plot_contributions(data, **options)
        data = data.sel(modality=modality).assign_attrs(long_name=f"{modality} contribution")
    if time is None and "time" in data.dims and data.sizes["time"] > 1:
        index = np.unique(np.linspace(0, data.sizes["time"] - 1, DEFAULT_TIMES).round().astype(int))
        time = data["time"].values[index].tolist()
    return plot_surface(data, time=time, **options)


def plot_evaluation(
    scores: xr.Dataset,
    *,
    metric: str = "pearson_r",
    subject=None,
    k: int = 20,
    views: str | Sequence[str] = ("lateral", "medial"),
    title: str | None = None,
    **options,
):
    """What :func:`tribev2.evaluate` returns, as a figure: the ``metric`` map (``"pearson_r"`` or ``"mse"``;
    symmetric colours for r) titled with the means and the retrieval accuracy, or, for a by-region
    evaluation, the ``k`` regions with the highest ``metric`` as bars. ``options`` go to
    :func:`plot_surface` (``threshold``, ``hemi``, ``figsize``, ``axes``...)."""
    from .static import plot_surface

    if metric not in scores.data_vars:
        raise ValueError(f"metric={metric!r}: the evaluation has {sorted(scores.data_vars)}")
    values = scores[metric]
    if "subject" in values.dims:
        values = values.sel(subject=_pick_subject(values, subject))
    summary = _evaluation_summary(scores, values, subject)
    if "vertex" not in values.dims:
        return _region_bars(
            values, k=k, title=title or summary, figsize=options.get("figsize"), axes=options.get("axes")
        )
    if metric == "pearson_r":
        options.setdefault("symmetric", True)
        options.setdefault("percentile", 99)
    return plot_surface(values, views=views, title=title or summary, **options)


def plot_timecourse(
    data,
    roi: str | Sequence[str],
    *,
    hemi: str = "combined",
    subject=None,
    variable: str = "prediction",
    figsize: tuple[float, float] = (7.5, 3.0),
    axes=None,
    dpi: int = 100,
    title: str | None = None,
):
    """The mean over each region's vertices against time, one line per region (names, shell patterns such as
    ``"V*"``, or a list: as ``.tribe.sel``), per hemisphere with ``hemi="separate"``, per modality for
    contributions. ``data``: a prediction Dataset (``variable``) or a DataArray with ``time``, ``vertex``
    and a ``roi`` coordinate. ``figsize`` (inches) or ``axes`` (a matplotlib Axes to draw into)."""
    from .static import BrainFigure

    if isinstance(data, xr.Dataset):
        data = _variable(data, variable)
    if "time" not in data.dims:
        raise ValueError(f"data has dims {data.dims}: a time course needs a 'time' dimension")
    if "subject" in data.dims:
        data = data.sel(subject=_pick_subject(data, subject))
    regional = data.tribe.sel(roi=roi).tribe.by_roi(hemi=hemi)
    groups = sorted((d for d in regional.dims if d != "time"), key=lambda d: d != "roi")  # "V1 left", "V1 audio"
    lines = regional.stack(line=groups).transpose("time", "line") if groups else regional.expand_dims(line=[0], axis=1)
    if lines.sizes["line"] > MAX_LINES:
        raise ValueError(f"roi={roi!r} gives {lines.sizes['line']} time courses; choose up to {MAX_LINES} regions")
    if axes is None:
        figure = BrainFigure(figsize=figsize, dpi=dpi, layout="constrained")
        axes = figure.add_subplot()
    times = data["time"].values
    for index in range(lines.sizes["line"]):
        line = lines.isel(line=index)
        label = " ".join(str(line[d].values) for d in groups)
        axes.plot(times, line.values, label=label, linewidth=1.5)
    offset = data["time"].attrs.get("hemodynamic_offset_s")
    axes.set_xlabel("time (s)" + (f"; the response modelled {offset:g} s later" if offset else ""))
    caption = str(data.attrs.get("long_name") or data.name or "")
    units = data.attrs.get("units")
    axes.set_ylabel(f"{caption} ({units})" if units else caption)
    axes.axhline(0, color="0.6", linewidth=0.8, zorder=0)
    axes.legend(
        fontsize="small", frameon=False, ncol=1 + lines.sizes["line"] // 7, loc="upper left", bbox_to_anchor=(1.0, 1.0)
    )
    axes.margins(x=0)
    if title:
        axes.set_title(title)
    return axes.figure


def _evaluation_summary(scores: xr.Dataset, values: xr.DataArray, subject) -> str:
    parts = [str(values.attrs.get("long_name") or values.name)]
    for name, text in (("pearson_r_mean", "mean r = {:.3f}"), ("topk_accuracy", "top-{k} retrieval = {:.2f}")):
        if name in scores.data_vars and scores[name].ndim <= 1:
            value = scores[name]
            if "subject" in value.dims:
                value = value.sel(subject=_pick_subject(value, subject))
            parts.append(text.format(float(value), k=scores.attrs.get("k", 1)))
    return ", ".join(parts)


def _region_bars(values: xr.DataArray, *, k: int, title: str, figsize=None, axes=None):
    """The ``k`` regions with the highest value as horizontal bars (the best on top)."""
    from .static import BrainFigure

    if "hemi" in values.dims:
        values = values.stack(region=("roi", "hemi"))
        names = [f"{r} ({h[0].upper()})" for r, h in values["region"].values]
    else:
        values = values.rename(roi="region")
        names = [str(r) for r in values["region"].values]
    order = [i for i in np.argsort(-np.nan_to_num(values.values, nan=-np.inf)) if np.isfinite(values.values[i])][:k]
    if axes is None:
        figure = BrainFigure(figsize=figsize or (6.0, 0.8 + 0.22 * len(order)), dpi=100, layout="constrained")
        axes = figure.add_subplot()
    axes.barh(np.arange(len(order)), values.values[order], color="#c0504d")
    axes.set_yticks(np.arange(len(order)), [names[i] for i in order], fontsize="small")
    axes.invert_yaxis()
    axes.set_xlabel(str(values.attrs.get("long_name") or values.name))
    axes.set_title(title, fontsize="medium")
    return axes.figure


def _variable(data: xr.Dataset, variable: str) -> xr.DataArray:
    if variable in data.data_vars:
        return data[variable]
    raise ValueError(f"the Dataset has no variable {variable!r}; it has {sorted(data.data_vars)} (pass variable=...)")


# -- the accessor methods ----------------------------------------------------------------------------------------
def _accessor_plot(self, time=None, **options):
    return plot_data(self._obj, time=time, **options)


def _accessor_plot_timecourse(self, roi, **options):
    return plot_timecourse(self._obj, roi, **options)


_accessor_plot.__doc__ = "A figure of the data (maps, evaluation, contributions): see :func:`tribev2.viz.plot_data`."
_accessor_plot_timecourse.__doc__ = (
    "Region means over time: ``roi=`` names or patterns; see :func:`tribev2.viz.plot_timecourse`."
)


def attach() -> None:
    """Put ``plot`` and ``plot_timecourse`` on the ``tribe`` accessor (:mod:`tribev2.viz` does on import)."""
    TribeAccessor.plot = _accessor_plot
    TribeAccessor.plot_timecourse = _accessor_plot_timecourse
