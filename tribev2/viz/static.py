"""Publication figures: cortical maps rendered off-screen and laid out in a matplotlib figure.

``plot_surface(ds, time=[5, 10, 20], views=["lateral", "medial"])`` draws a grid (views × time points) with
one colour scale and a colorbar; ``render`` returns one view as an image array; ``plot_contributions`` draws the
modality contributions as an RGB overlay (text red, audio green, video blue).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
from matplotlib.figure import Figure

from .scene import BrainScene, ColorScale, brain_maps, outline_painter, png_bytes, rgb_colors

RGB_NAMES = ("red", "green", "blue")  # colours of the three modality channels, in the data's modality order


class BrainFigure(Figure):
    """A matplotlib ``Figure`` that shows itself as a PNG in notebooks, with or without pyplot."""

    def _repr_png_(self) -> bytes:
        return png_bytes(self)


def render(data, *, view: str = "lateral", hemi: str = "both", surface: str = "half-inflated", time=None,
           subject=None, mesh: str | None = None, cmap=None, vmin: float | None = None, vmax: float | None = None,
           symmetric: bool | str = "auto", percentile: float | None = None, threshold: float | None = None,
           outlines=None, sulcal: bool = True, size: tuple[int, int] = (480, 360)) -> np.ndarray:
    """One view of one map as an ``(H, W, 3)`` uint8 image (arguments as in :func:`plot_surface`)."""
    maps = brain_maps(data, time=time, subject=subject, mesh=mesh)
    if len(maps.values) != 1:
        raise ValueError(f"the data holds {len(maps.values)} maps; pick one with time=...")
    scale = ColorScale.for_values(maps.values, cmap=cmap, vmin=vmin, vmax=vmax, symmetric=symmetric,
                                  percentile=percentile, threshold=threshold)
    with BrainScene(maps.mesh, surface=surface, hemi=hemi, size=size, sulcal=sulcal) as scene:
        paint = outline_painter(scene, outlines)
        scene.paint(paint(scale.colors(maps.values[0], scene.background)))
        return scene.image(view)


def plot_surface(data, *, time=None, views: str | Sequence[str] = "lateral", hemi: str = "both",
                 surface: str = "half-inflated", subject=None, mesh: str | None = None, cmap=None,
                 vmin: float | None = None, vmax: float | None = None, symmetric: bool | str = "auto",
                 percentile: float | None = None, threshold: float | None = None, outlines=None,
                 sulcal: bool = True, colorbar: bool = True, title: str | None = None,
                 size: tuple[int, int] = (480, 360), dpi: int = 100):
    """Cortical maps as a matplotlib ``Figure``: one row per view, one column per time point.

    ``data``: a prediction Dataset, a DataArray with a ``vertex`` dimension (``ds.prediction.mean("time")``,
    a correlation map, ``ds.sel(roi="V1")``...) or an array ``(V,)``. ``time``: seconds, one or a list (needed
    when the data has several time points). ``views``: ``"lateral"``, ``"medial"``, ``"dorsal"``,
    ``"ventral"``, ``"anterior"``, ``"posterior"`` or a list. ``hemi``: ``"left"``, ``"right"`` or
    ``"both"``. ``surface``: ``"half-inflated"`` (default), ``"inflated"``, ``"pial"``, ``"white"``.
    Colours: ``cmap`` (diverging for data of both signs, else sequential), limits ``vmin``/``vmax`` or the
    data's range or ``percentile`` (``symmetric`` about zero: ``"auto"``, ``True``, ``False``), shared by
    every panel; values with ``|value| < threshold`` show the sulcal background. ``outlines``: an
    :class:`~tribev2.Atlas` (or atlas name) whose region borders are drawn. ``size``: pixels of one
    hemisphere's picture.
    """
    views = [views] if isinstance(views, str) else list(views)
    maps = brain_maps(data, time=time, subject=subject, mesh=mesh)
    if maps.values.shape[0] > 12:
        raise ValueError(f"the data holds {maps.values.shape[0]} maps (time points); choose up to 12 with "
                         "time=[...] (tribev2.viz.save_movie shows them all)")
    scale = ColorScale.for_values(maps.values, cmap=cmap, vmin=vmin, vmax=vmax, symmetric=symmetric,
                                  percentile=percentile, threshold=threshold)
    with BrainScene(maps.mesh, surface=surface, hemi=hemi, size=size, sulcal=sulcal) as scene:
        paint = outline_painter(scene, outlines)
        panels, sides = _panels(scene, [paint(scale.colors(v, scene.background)) for v in maps.values], views)
    titles = [maps.label(i) for i in range(len(maps.values))]
    figure = _grid_figure(panels, views, sides, titles, dpi=dpi, title=title, colorbar_room=colorbar)
    if colorbar:
        width = figure.get_figwidth() * dpi
        bar = figure.colorbar(scale.mappable(), cax=figure.add_axes((1 - 95 / width, 0.2, 12 / width, 0.6)))
        bar.set_label(maps.caption)
        if scale.threshold:
            bar.ax.axhspan(-scale.threshold, scale.threshold, color="0.7")
    return figure


def plot_contributions(contributions, *, views: str | Sequence[str] = "lateral", hemi: str = "both",
                       surface: str = "half-inflated", subject=None, mesh: str | None = None,
                       percentile: float = 99.0, sulcal: bool = True, title: str | None = None,
                       size: tuple[int, int] = (480, 360), dpi: int = 100):
    """Modality contributions as one RGB map (first modality red, second green, third blue: text, audio,
    video for TRIBE v2), like the reference's ``plot_surf_rgb``: each channel scaled to its ``percentile``,
    mixed colours where modalities overlap. ``contributions``: see :func:`modality_channels`."""
    from matplotlib.patches import Patch

    views = [views] if isinstance(views, str) else list(views)
    channels, names, mesh = modality_channels(contributions, subject=subject, mesh=mesh)
    with BrainScene(mesh, surface=surface, hemi=hemi, size=size, sulcal=sulcal) as scene:
        panels, sides = _panels(scene, [rgb_colors(channels, scene.background, percentile=percentile)], views)
    figure = _grid_figure(panels, views, sides, [""], dpi=dpi, title=title, colorbar_room=False, bottom=30)
    figure.legend(handles=[Patch(color=c, label=m) for m, c in zip(names, RGB_NAMES)], loc="lower center",
                  ncol=3, frameon=False)
    return figure


def modality_channels(contributions, *, subject=None, mesh: str | None = None) -> tuple[np.ndarray, list[str], str]:
    """``(V, 3)`` non-negative channels, the three modality names and the mesh of modality contributions.

    ``contributions``: a DataArray with ``modality`` and ``vertex`` dimensions, as
    :func:`tribev2.contributions` returns (signed, over time: each vertex's channel is then the
    root-mean-square over time of what the modality adds), or non-negative per-modality maps (e.g.
    per-modality encoding scores; absolute values are used); or a Dataset with one variable per modality.
    """
    import xarray as xr

    if isinstance(contributions, xr.Dataset):
        contributions = contributions.to_dataarray("modality")
    if not isinstance(contributions, xr.DataArray) or "modality" not in contributions.dims:
        raise ValueError("contributions must be a DataArray with a 'modality' dimension (or a Dataset with "
                         "one variable per modality)")
    names = [str(m) for m in contributions["modality"].values]
    if len(names) != 3:
        raise ValueError(f"contributions have modalities {names}; an RGB map needs exactly three")
    mesh = mesh or contributions.attrs.get("mesh")
    if "time" in contributions.dims:
        contributions = np.sqrt((contributions ** 2).mean("time"))
    maps = [brain_maps(contributions.sel(modality=m), subject=subject, mesh=mesh)
            for m in contributions["modality"].values]
    return np.abs(np.stack([m.values[0] for m in maps], axis=1)), names, maps[0].mesh


# -- helpers shared by the figures -----------------------------------------------------------------------------
def _panels(scene: BrainScene, colour_sets: Sequence[np.ndarray], views: Sequence[str]):
    """Images ``[view][map]``, and the hemispheres of each view from left to right."""
    grid = [[None] * len(colour_sets) for _ in views]
    for column, colours in enumerate(colour_sets):
        scene.paint(colours)
        for row, view in enumerate(views):
            grid[row][column] = scene.image(view)
    return grid, [scene.hemi_order(view) for view in views]


def _grid_figure(panels, views, sides, column_titles, *, dpi, title, colorbar_room, bottom=4) -> BrainFigure:
    """A figure of whole pixels: the panel images at their size, room for row labels, titles, a colorbar
    (right) and a legend (``bottom`` pixels). The first column marks the hemispheres ``L`` / ``R`` in its top
    corners (``sides``: the hemispheres of each row, left to right), as views from below or the front show
    them mirrored."""
    rows, columns = len(panels), len(panels[0])
    panel_width = max(row[0].shape[1] for row in panels)
    left = 24 if rows > 1 else 0
    top = 4 + (24 if title else 0) + (22 if any(column_titles) else 0)
    right = 110 if colorbar_room else 0
    width = left + columns * panel_width + right
    height = top + sum(row[0].shape[0] for row in panels) + bottom
    figure = BrainFigure(figsize=(width / dpi, height / dpi), dpi=dpi)
    grid = figure.add_gridspec(rows, columns, wspace=0.0, hspace=0.0, left=left / width,
                               right=1 - right / width, top=1 - top / height, bottom=bottom / height,
                               height_ratios=[row[0].shape[0] for row in panels])
    for r, row in enumerate(panels):
        for c, image in enumerate(row):
            ax = figure.add_subplot(grid[r, c])
            ax.imshow(image, interpolation="antialiased")
            ax.set_axis_off()
            if r == 0 and column_titles[c]:
                ax.set_title(column_titles[c], fontsize=10)
            if c == 0:
                for hemi, (x, align) in zip(sides[r], ((0.015, "left"), (0.985, "right"))):
                    ax.text(x, 0.97, hemi[0].upper(), transform=ax.transAxes, ha=align, va="top", fontsize=9,
                            fontweight="bold", color="0.35")
            if c == 0 and rows > 1:
                ax.annotate(views[r], (0, 0.5), xycoords="axes fraction", xytext=(-3, 0), textcoords="offset points",
                            rotation=90, ha="right", va="center")
    if title:
        figure.suptitle(title, y=1 - 2 / height, va="top", fontsize=12)
    return figure
