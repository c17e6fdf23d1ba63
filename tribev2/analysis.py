"""Questions asked of a prediction: by region (the ``ds.tribe`` accessor), how well it fits measured BOLD
(:func:`evaluate`), and what each modality adds (:func:`contributions`).

The accessor works on any Dataset or DataArray with a ``vertex`` dimension (predictions, correlation maps,
contributions)::

    ds.tribe.with_atlas("Desikan-Killiany")    # switch the roi coordinate
    ds.tribe.sel(roi="V*", hemi="left")         # shell-style patterns, lists, and hemi in one call
    ds.tribe.by_roi()                           # mean per region: (time, roi, subject)
    ds.tribe.by_roi(hemi="separate")            # (time, hemi, roi, subject)
    ds.tribe.top_rois(10)                       # tidy table of the 10 regions with the highest mean
    ds.tribe.events()                           # the events table a prediction was made from

Plain ``ds.sel(roi="V1")`` takes the same names, patterns and lists (the ``roi`` coordinate is indexed by
:class:`tribev2.atlas.RegionIndex`) and always keeps the ``vertex`` dimension; xarray allows one index per
``sel`` call, so ``hemi`` goes in a second call (``ds.sel(roi="V1").sel(hemi="left")``) or through
``ds.tribe.sel``.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import xarray as xr

from .atlas import DEFAULT_ATLAS, Atlas, attach_atlas
from .dataset import events_table
from .io import load_ground_truth
from .model import TribeModel, load_model
from .predict import predict, predict_features
from .regions import NO_REGION, match_names, region_order
from .surface import HEMIS, apply_to_vertices, mesh_for_vertices, n_vertices_per_hemi

_RETRIEVAL_EPS = 1e-15  # as the reference's rank metric: scores = pred · truth / (eps + ‖truth‖)


@xr.register_dataset_accessor("tribe")
@xr.register_dataarray_accessor("tribe")
class TribeAccessor:
    """Region-level views of cortical data (``ds.tribe``); see the module documentation."""

    def __init__(self, obj: xr.Dataset | xr.DataArray):
        self._obj = obj

    @property
    def mesh(self) -> str:
        """The fsaverage mesh of the data (from ``attrs["mesh"]``, else the vertex count)."""
        return self._obj.attrs.get("mesh") or mesh_for_vertices(self._obj.sizes["vertex"])

    def with_atlas(self, atlas: str | Atlas = DEFAULT_ATLAS, **load_options):
        """A copy whose ``roi`` coordinate comes from ``atlas`` (a name for :func:`tribev2.load_atlas`, with
        ``path=`` etc. passed on, or an :class:`~tribev2.Atlas`)."""
        return attach_atlas(self._obj, atlas, **load_options)

    def sel(self, roi: str | Sequence[str] | None = None, hemi: str | Sequence[str] | None = None, **indexers):
        """The vertices of the regions matching ``roi`` (a name, a shell-style pattern such as ``"V*"`` or
        ``"*IPS*"``, or a list of them), optionally of one hemisphere; other ``indexers`` go to ``.sel``."""
        obj = self._obj
        keep = np.ones(obj.sizes["vertex"], dtype=bool)
        if roi is not None:
            names = self._roi()
            keep &= np.isin(names.values, match_names(region_order(names), roi, what="this data's roi coordinate"))
        if hemi is not None:
            wanted = [hemi] if isinstance(hemi, str) else list(hemi)
            unknown = set(wanted) - set(HEMIS)
            if unknown:
                raise ValueError(f"hemi={hemi!r}: expected 'left', 'right' or both")
            keep &= np.isin(obj["hemi"].values, wanted)
        return obj.isel(vertex=np.flatnonzero(keep)).sel(**indexers)

    def by_roi(self, hemi: str = "combined", *, include_unassigned: bool = False):
        """Mean over the vertices of each region (NaN ignored), ``vertex`` replaced by ``roi``.

        ``hemi="combined"`` pools both hemispheres (``(time, roi, subject)`` for a prediction);
        ``"separate"`` keeps them apart (``(time, hemi, roi, subject)``; NaN where a hemisphere lacks the
        region). Vertices of no region are left out unless ``include_unassigned``. A ``n_vertices``
        coordinate counts the vertices averaged. Variables without ``vertex`` are kept as they are.
        """
        if hemi not in ("combined", "separate"):
            raise ValueError(f"hemi={hemi!r}: expected 'combined' or 'separate'")
        if hemi == "separate" and "hemi" not in self._obj.coords:
            raise ValueError("by_roi(hemi='separate') needs the 'hemi' coordinate along 'vertex'")
        vertex_hemi = self._obj["hemi"].values if hemi == "separate" else None
        regions = _Regions(self._roi(), vertex_hemi, hemi == "separate", include_unassigned)
        if isinstance(self._obj, xr.DataArray):
            return regions.mean(self._obj)
        obj = self._obj.drop_vars([n for n, c in self._obj.coords.items() if "vertex" in c.dims])
        means = {name: regions.mean(var) if "vertex" in var.dims else var for name, var in self._obj.data_vars.items()}
        return xr.Dataset(means, coords=obj.coords, attrs=self._obj.attrs)

    def top_rois(
        self, k: int = 10, *, variable: str = "prediction", hemi: str = "combined", absolute: bool = False
    ) -> pd.DataFrame:
        """The ``k`` regions with the highest mean (over their vertices and every dimension but ``subject``;
        select times first, e.g. ``ds.isel(time=slice(10, 20)).tribe.top_rois()``) as a tidy table:
        ``subject, rank, roi[, hemi], value, n_vertices``. ``absolute`` ranks by ``|value|``; ``variable``
        names the Dataset variable (ignored for a DataArray)."""
        if not (isinstance(k, (int, np.integer)) and k > 0):
            raise ValueError(f"k={k!r}: expected a positive number of regions")
        data = self._obj if isinstance(self._obj, xr.DataArray) else self._obj[variable]
        regional = data.tribe.by_roi(hemi=hemi)
        other = [d for d in regional.dims if d not in ("roi", "hemi", "subject")]
        regional = regional.mean(other)
        if "subject" not in regional.dims:
            regional = regional.expand_dims(subject=["-"])
        rows = []
        for subject in regional["subject"].values:
            table = regional.sel(subject=subject).to_dataframe(name="value").reset_index()
            table = table.dropna(subset=["value"])
            order = (table["value"].abs() if absolute else table["value"]).sort_values(ascending=False).index
            table = table.loc[order[:k]].assign(subject=subject, rank=np.arange(1, min(k, len(order)) + 1))
            rows.append(table)
        columns = ["subject", "rank", "roi"] + (["hemi"] if hemi == "separate" else []) + ["value", "n_vertices"]
        return pd.concat(rows, ignore_index=True)[columns]

    def events(self, *, time: float | None = None) -> pd.DataFrame:
        """The events table stored by :func:`tribev2.predict` (all of it, or the events overlapping the TR that
        holds ``time`` seconds); see :func:`tribev2.dataset.events_table`."""
        return events_table(self._obj, time=time)

    def _roi(self) -> xr.DataArray:
        if "roi" not in self._obj.coords:
            raise ValueError(
                "no 'roi' coordinate: attach one with .tribe.with_atlas(name) (or predict_features(..., atlas=name))"
            )
        return self._obj["roi"]


class _Regions:
    """Vertex -> region grouping and the NaN-ignoring mean over it."""

    def __init__(self, roi: xr.DataArray, vertex_hemi: np.ndarray | None, separate: bool, include_unassigned: bool):
        import scipy.sparse

        names = [n for n in region_order(roi) if include_unassigned or n != NO_REGION]
        codes = pd.Index(names).get_indexer(roi.values)  # -1: left out
        n_names = len(names)
        self.hemis = list(HEMIS) if separate else None
        if separate:
            codes = np.where(codes >= 0, codes + n_names * (vertex_hemi == "right"), -1)
        n_groups = n_names * (2 if separate else 1)
        kept = np.flatnonzero(codes >= 0)
        self.matrix = scipy.sparse.csr_matrix(
            (np.ones(len(kept)), (codes[kept], kept)), shape=(n_groups, len(roi))
        )  # (G, V) membership
        self.names = names
        self.counts = np.asarray(self.matrix.sum(axis=1)).ravel().astype(np.int64)
        self.by_column = self.matrix.tocsc()  # the faster layout for (G, V) @ (V, rest)
        scale = 1.0 / np.maximum(self.counts, 1)
        self.averaging = scipy.sparse.diags(scale) @ self.by_column  # (G, V): rows of non-empty groups sum to 1

    def members(self) -> list[np.ndarray]:
        """The vertex indices of each group."""
        return np.split(self.matrix.indices, self.matrix.indptr[1:-1])

    def mean(self, data: xr.DataArray) -> xr.DataArray:
        axis = data.get_axis_num("vertex")
        values = np.asarray(data.values, dtype=np.float64)
        finite = np.isfinite(values)
        if finite.all():
            means = apply_to_vertices(self.averaging, values, axis)  # (..., G, ...)
            means[(slice(None),) * axis + (self.counts == 0,)] = np.nan  # a region absent from a hemisphere
        else:
            sums = apply_to_vertices(self.by_column, np.where(finite, values, 0.0), axis)
            with np.errstate(invalid="ignore", divide="ignore"):  # NaN where a group has no finite value
                means = sums / apply_to_vertices(self.by_column, finite.astype(np.float64), axis)
        group_dims = ("hemi", "roi") if self.hemis else ("roi",)
        group_shape = (len(self.hemis), len(self.names)) if self.hemis else (len(self.names),)
        means = means.reshape(values.shape[:axis] + group_shape + values.shape[axis + 1 :])
        dims = data.dims[:axis] + group_dims + data.dims[axis + 1 :]
        coords = {name: coord for name, coord in data.coords.items() if "vertex" not in coord.dims}
        coords["roi"] = ("roi", np.array(self.names, dtype=object))
        if self.hemis:
            coords["hemi"] = ("hemi", np.array(self.hemis, dtype=object))
        coords["n_vertices"] = (group_dims, self.counts.reshape(group_shape))
        dtype = data.dtype if np.issubdtype(data.dtype, np.floating) else np.float64
        return xr.DataArray(means.astype(dtype, copy=False), dims=dims, coords=coords, name=data.name, attrs=data.attrs)


# -- evaluation against measured BOLD ----------------------------------------------------------------------------
def evaluate(
    ds: xr.Dataset | xr.DataArray,
    ground_truth,
    *,
    tr_s: float | None = None,
    start_s: float = 0.0,
    k: int = 1,
    segment_trs: int | None = None,
    variable: str = "prediction",
    by_roi: bool = False,
    hemi: str = "combined",
) -> xr.Dataset:
    """Compare a prediction with measured BOLD on the same mesh.

    ``ground_truth``: an array ``(time, vertex)``; a DataArray with ``time`` (seconds) and ``vertex``; a
    path to NetCDF/Zarr, the ``(left, right)`` pair of GIFTI files, or a volumetric NIfTI (projected to the
    surface as the reference does: nilearn ``vol_to_surf``, ball of radius 3 mm around each pial vertex,
    linear interpolation); see :func:`tribev2.io.load_ground_truth`.

    Time: ground truth is in acquisition time, its first volume at ``start_s`` seconds after the stimulus
    onset and one volume every ``tr_s`` seconds (default: the file's TR, else the prediction's 1 s).
    Prediction row ``t`` models BOLD at ``t + hemodynamic_offset_s`` (5 s), so it is compared with the
    ground truth linearly interpolated at that time (an exact pick when the TRs agree); rows whose time
    falls outside the recording, and rows that draw on a volume zero at every vertex (missing data,
    as the reference drops them), are left out. A prediction on some vertices of the mesh (e.g.
    ``ds.tribe.sel(roi="V*")``) is compared with the same vertices of a whole-mesh ground truth.

    Returns a Dataset: ``pearson_r (vertex, subject)`` (Pearson r over time per vertex; NaN, with a warning,
    where either series is constant or not finite), ``mse (vertex, subject)``, their means over the vertices
    where they are not NaN, ``pearson_r_mean`` and ``mse_mean``, and ``topk_accuracy (subject)``: top-``k``
    retrieval as the reference computes it (over the vertices whose values are all finite): predictions and
    ground truth are averaged over each segment (``segment_trs`` rows; default the model's 100-s windows),
    each predicted segment is scored against every measured one (dot product with the L2-normalised
    truth) and counts as retrieved when its own segment ranks among the ``k`` best (ties share the mean
    rank). With ``by_roi=True`` every metric is summarised per region instead (``(roi, subject)``, or
    ``(hemi, roi, subject)`` with ``hemi="separate"``): mean r and MSE over the region's vertices, and
    retrieval using only them.
    """
    if not isinstance(ds, (xr.Dataset, xr.DataArray)):
        raise TypeError(
            f"evaluate: expected the prediction Dataset (or a DataArray), got {type(ds).__name__}; "
            f"open a saved one with tribev2.open_dataset"
        )
    mesh = ds.tribe.mesh  # a Dataset's attrs, which its variables do not carry
    prediction = ds if isinstance(ds, xr.DataArray) else ds[variable]
    if "subject" not in prediction.dims:
        prediction = prediction.expand_dims(subject=["-"], axis=-1)
    prediction = prediction.transpose("time", "vertex", "subject")
    if not (isinstance(k, (int, np.integer)) and k > 0):
        raise ValueError(f"k={k!r}: expected a positive number of segments")
    truth = load_ground_truth(ground_truth, mesh=mesh, tr_s=tr_s, start_s=start_s)
    if truth.sizes["vertex"] == 2 * n_vertices_per_hemi(mesh) != prediction.sizes["vertex"]:
        truth = truth.isel(vertex=prediction["vertex"].values)  # a subset of the mesh: its vertex ids
    if truth.sizes["vertex"] != prediction.sizes["vertex"]:
        raise ValueError(
            f"ground truth has {truth.sizes['vertex']:,} vertices, the prediction "
            f"{prediction.sizes['vertex']:,}: they must be on the same mesh (see "
            f"tribev2.io.resample)"
        )
    offset = float(prediction["time"].attrs.get("hemodynamic_offset_s", 0.0))
    rows, measured = _aligned_truth(prediction["time"].values + offset, truth)
    predicted = prediction.values[rows].astype(np.float64)  # (T, V, S)
    if len(rows) < 2:
        raise ValueError(
            f"only {len(rows)} prediction row(s) overlap the ground truth (its times "
            f"{truth.time.values[0]:g}..{truth.time.values[-1]:g} s, predictions model "
            f"{offset:g} s later than their row time): need at least 2"
        )

    r = _pearson(predicted, measured[:, :, None])  # (V, S)
    mse = ((predicted - measured[:, :, None]) ** 2).mean(axis=0)  # (V, S)
    segments = _segments(prediction, rows, segment_trs)
    template = prediction.isel(time=0, drop=True)  # (vertex, subject) with the vertex coordinates and indexes
    maps = xr.Dataset(
        {
            "pearson_r": template.copy(data=r).assign_attrs(long_name="Pearson r over time", units=""),
            "mse": template.copy(data=mse).assign_attrs(long_name="mean squared error over time"),
        }
    )
    attrs = {
        "k": k,
        "n_timepoints": len(rows),
        "n_segments": int(segments.max() + 1),
        "tr_s": float(prediction["time"].attrs.get("tr_s", 1.0)),
        "hemodynamic_offset_s": offset,
        "alignment": "prediction row t vs ground truth linearly interpolated at t + hemodynamic_offset_s",
    }
    predicted_means, measured_means = _segment_means(predicted, segments), _segment_means(measured, segments)
    if by_roi:
        summary = maps.tribe.by_roi(hemi=hemi)
        groups = _Regions(maps["roi"], maps["hemi"].values if hemi == "separate" else None, hemi == "separate", False)
        accuracy = np.stack(
            [
                _topk_accuracy(predicted_means[:, m], measured_means[:, m], k)
                if len(m)
                else np.full(predicted.shape[2], np.nan)
                for m in groups.members()
            ]
        )
        summary["topk_accuracy"] = (summary["pearson_r"].dims, accuracy.reshape(summary["pearson_r"].shape))
        return summary.assign_attrs(attrs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN subjects: already warned about
        maps["pearson_r_mean"] = ("subject", np.nanmean(r, axis=0))
        maps["mse_mean"] = ("subject", np.nanmean(mse, axis=0))
    maps["topk_accuracy"] = (
        "subject",
        _topk_accuracy(predicted_means, measured_means, k),
        {"long_name": f"top-{k} segment retrieval accuracy"},
    )
    return maps.assign_attrs(attrs)


def _aligned_truth(times: np.ndarray, truth: xr.DataArray) -> tuple[np.ndarray, np.ndarray]:
    """Rows of the prediction inside the recording, and the truth linearly interpolated there: (T, V). Rows
    that take any weight from a missing volume (zero at every vertex) are left out."""
    source = truth["time"].values.astype(np.float64)
    values = np.asarray(truth.transpose("time", "vertex").values, dtype=np.float64)
    tolerance = 1e-6
    rows = np.flatnonzero((times >= source[0] - tolerance) & (times <= source[-1] + tolerance))
    position = np.interp(times[rows], source, np.arange(len(source)))
    lower = np.minimum(np.floor(position + tolerance).astype(np.int64), len(source) - 1)
    upper = np.minimum(lower + 1, len(source) - 1)
    weight = np.clip(position - lower, 0.0, 1.0)
    missing = (values == 0).all(axis=1)
    present = ~((missing[lower] & (weight < 1.0 - tolerance)) | (missing[upper] & (weight > tolerance)))
    weight = weight[present, None]
    aligned = values[lower[present]] * (1.0 - weight) + values[upper[present]] * weight
    return rows[present], aligned


def _pearson(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pearson r along axis 0, broadcasting the rest; NaN (with one warning) where a series is constant or not
    finite (infinite values give NaN sums here, numpy's own warnings held back)."""
    with np.errstate(invalid="ignore", over="ignore"):
        a = a - a.mean(axis=0)
        b = b - b.mean(axis=0)
        denominator = np.sqrt((a**2).sum(axis=0) * (b**2).sum(axis=0))
        numerator = (a * b).sum(axis=0)
    undefined = ~(denominator > 0)
    if undefined.any():
        warnings.warn(
            f"Pearson r is undefined at {int(undefined.sum()):,} of {undefined.size:,} "
            "vertex/subject pairs (prediction or ground truth constant or not finite over time): "
            "set to NaN",
            RuntimeWarning,
            stacklevel=3,
        )
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(undefined, np.nan, numerator / np.where(undefined, 1.0, denominator))


def _segments(prediction: xr.DataArray, rows: np.ndarray, segment_trs: int | None) -> np.ndarray:
    """Segment index (0, 1, ...) of each kept row."""
    if segment_trs is not None:
        if not (isinstance(segment_trs, (int, np.integer)) and segment_trs > 0):
            raise ValueError(f"segment_trs={segment_trs!r}: expected a positive number of rows")
        labels = rows // segment_trs
    elif "window" in prediction.coords:
        labels = prediction["window"].values[rows]
    else:
        labels = np.zeros(len(rows), dtype=np.int64)
    return pd.factorize(labels)[0]


def _segment_means(values: np.ndarray, segments: np.ndarray) -> np.ndarray:
    """Mean of the rows of each segment: (T, ...) -> (N, ...)."""
    one_hot = np.eye(int(segments.max() + 1))[segments]  # (T, N)
    means = one_hot.T @ values.reshape(len(values), -1) / one_hot.sum(axis=0)[:, None]
    return means.reshape((one_hot.shape[1],) + values.shape[1:])


def _topk_accuracy(predicted: np.ndarray, measured: np.ndarray, k: int) -> np.ndarray:
    """Top-k retrieval among segment means, per subject: predicted (N, V, S), measured (N, V) -> (S,). Vertices
    with a non-finite value (in any segment or subject) are left out; NaN when none is left."""
    if len(measured) < 2:
        warnings.warn(
            "top-k retrieval needs at least 2 segments; this comparison has 1 (pass segment_trs= "
            "to cut it into shorter segments): topk_accuracy is NaN",
            RuntimeWarning,
            stacklevel=3,
        )
        return np.full(predicted.shape[2], np.nan)
    finite = np.isfinite(measured).all(axis=0) & np.isfinite(predicted).all(axis=(0, 2))
    if not finite.any():
        return np.full(predicted.shape[2], np.nan)
    predicted, measured = predicted[:, finite], measured[:, finite]
    truth = measured / (_RETRIEVAL_EPS + np.linalg.norm(measured, axis=1, keepdims=True))  # (N, V)
    accuracy = []
    for s in range(predicted.shape[2]):
        scores = predicted[:, :, s] @ truth.T  # (N predicted, N measured)
        true_scores = np.diag(scores)[:, None]
        rank = ((scores > true_scores).sum(axis=1) + (scores >= true_scores).sum(axis=1) - 1) / 2
        accuracy.append(float((rank < k).mean()))
    return np.array(accuracy)


# -- modality contributions ------------------------------------------------------------------------------------
def contributions(
    source,
    *,
    model=None,
    extractors=None,
    duration_s: float | None = None,
    subjects=None,
    batch_size: int = 8,
    atlas: str | Atlas | None = DEFAULT_ATLAS,
    transcript=None,
    language: str = "english",
    device: str = "auto",
    progress: bool = False,
) -> xr.DataArray:
    """What each modality adds to the prediction: the prediction with every modality minus the prediction
    with that modality absent (zeros after its projection, as the reference ablates modalities).

    ``source`` is either features ``{modality: (L, D, T)}`` (then ``model`` is required and the other
    arguments are those of :func:`tribev2.predict_features`), or a stimulus as :func:`tribev2.predict` takes
    it (a media/text/transcript file or an events table; ``model``, ``extractors``, ``transcript``,
    ``language``, ``device`` as there; ``duration_s`` is for features only): its events are built once and
    every ablation reuses the feature cache, so each modality costs one brain-model pass, not a new extraction.

    Returns ``contribution (modality, time, vertex, subject)`` with the full prediction's coordinates (``roi``
    when the atlas is available) and attributes. With a single modality, "absent" leaves the model with no
    input at all (its output from the position embedding alone).
    """
    if isinstance(source, Mapping):
        if model is None:
            raise ValueError("contributions(features, model=...): features need the brain model they were made for")
        options = dict(model=model, duration_s=duration_s, subjects=subjects, batch_size=batch_size)

        def run(kept: Sequence[str], atlas=None) -> xr.Dataset:
            return predict_features({m: source[m] for m in kept}, atlas=atlas, **options)

        full = run(list(source), atlas)
    else:
        from .events import events_from

        if duration_s is not None:
            raise ValueError(
                "contributions(stimulus, duration_s=...): duration_s is for features; a stimulus "
                "is predicted over its whole duration (cut the events table to shorten it)"
            )
        events = (
            source
            if isinstance(source, pd.DataFrame)
            else events_from(source, transcript=transcript, language=language, device=device, progress=progress)
        )
        options = dict(
            model=model,
            extractors=extractors,
            subjects=subjects,
            batch_size=batch_size,
            language=language,
            device=device,
            progress=progress,
        )

        def run(kept: Sequence[str] | None, atlas=None) -> xr.Dataset:
            return predict(events, modalities=kept, atlas=atlas, **options)

        full = run(None, atlas)
    names = full.attrs["modalities"].split(",")  # the modalities that had features
    parts = []
    for name in names:
        rest = [m for m in names if m != name]
        without = run(rest).prediction.values if rest else _no_input_prediction(model, full)
        parts.append(full.prediction.values - without)
    contribution = xr.DataArray(
        np.stack(parts),
        dims=("modality",) + full.prediction.dims,
        coords={**full.prediction.coords, "modality": ("modality", np.array(names, dtype=object))},
        attrs={
            "long_name": "prediction minus prediction without the modality",
            "units": full.prediction.attrs.get("units", ""),
        },
        name="contribution",
    )
    return contribution.assign_attrs({k: v for k, v in full.attrs.items() if k not in contribution.attrs})


def _no_input_prediction(model, full: xr.Dataset) -> np.ndarray:
    """The model's output with every modality absent, ``(time, vertex, subject)`` like ``full``: the encoder
    sees only its position embedding, so every window gives the same output. ``model``: the model object, or
    anything else to load the one ``full`` records."""
    import torch

    if not isinstance(model, TribeModel):
        model = load_model(full.attrs["model"], revision=full.attrs.get("model_revision") or None)
    with torch.inference_mode():
        window = model({}, subjects=list(full["subject"].values), n_samples=model.config.window_samples)
    window = window[0].permute(2, 1, 0).float().cpu().numpy()  # (T_out, V, S)
    n_time = full.sizes["time"]
    return np.tile(window, (math.ceil(n_time / len(window)), 1, 1))[:n_time]
