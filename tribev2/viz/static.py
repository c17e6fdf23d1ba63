"""Publication figures: cortical maps rendered off-screen and laid out in one matplotlib Axes.

``plot_surface(ds, time=[5, 10, 20], views=["lateral", "medial"])`` draws a grid (views × time points) with
one colour scale and a colorbar; ``render`` returns one view as an image array; ``plot_contributions`` draws the
modality contributions as an RGB overlay (text red, audio green, video blue).

Sizes: a figure is as wide as a notebook cell (at most ``NOTEBOOK_WIDTH_PX`` pixels at ``dpi``) unless
``figsize=`` (inches) says otherwise; ``axes=`` draws into an Axes of your own figure instead (as nilearn's
``plot_surf_stat_map(axes=...)``). The brain pictures are rendered at twice the pixels they are shown at, and
every text (hemisphere tags, titles, row labels, colorbar) is sized from the shown picture height, so the text
reads at the size the figure is shown at.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from matplotlib.figure import Figure

from ..checks import real_number
from .scene import SPLIT_VIEWS, BrainScene, ColorScale, brain_maps, outline_painter, png_bytes, rgb_colors

RGB_NAMES = ("red", "green", "blue")  # colours of the three modality channels, in the data's modality order
NOTEBOOK_WIDTH_PX = 900  # default figure width: a JupyterLab cell shows it unscaled
MIN_WIDTH_PX = 320  # room for a colorbar's caption under a single small picture
MAX_FIGURE_PX = 10_000  # a side of a new figure (figsize x dpi): beyond, gigabytes of pixels
PICTURE_WIDTH_PX = 300  # default shown width of one hemisphere's picture (narrower when the figure is full)
PICTURE_ASPECT = 4 / 3  # width / height of one hemisphere's picture
COLORBAR_BELOW_PX = 60  # room under a one-row figure for its horizontal colorbar and caption
OVERSAMPLE = 2  # brain pictures are rendered at this many pixels per shown pixel, then smoothed down


class BrainFigure(Figure):
    """A matplotlib ``Figure`` that shows itself as a PNG in notebooks, with or without pyplot."""

    def _repr_png_(self) -> bytes:
        return png_bytes(self)


def render(
    data,
    *,
    view: str = "lateral",
    hemi: str = "both",
    surface: str = "half-inflated",
    time=None,
    subject=None,
    mesh: str | None = None,
    cmap=None,
    vmin: float | None = None,
    vmax: float | None = None,
    symmetric: bool | str = "auto",
    percentile: float | None = None,
    threshold: float | None = None,
    outlines=None,
    sulcal: bool = True,
    size: tuple[int, int] = (480, 360),
) -> np.ndarray:
    """One view of one map as an ``(H, W, 3)`` uint8 image (arguments as in :func:`plot_surface`; ``size``:
    pixels of one hemisphere's picture)."""
    maps = brain_maps(data, time=time, subject=subject, mesh=mesh)
    if len(maps.values) != 1:
        raise ValueError(f"the data holds {len(maps.values)} maps; pick one with time=...")
    scale = ColorScale.for_values(
        maps.values, cmap=cmap, vmin=vmin, vmax=vmax, symmetric=symmetric, percentile=percentile, threshold=threshold
    )
    with BrainScene(maps.mesh, surface=surface, hemi=hemi, size=size, sulcal=sulcal) as scene:
        paint = outline_painter(scene, outlines)
        scene.paint(paint(scale.colors(maps.values[0], scene.background)))
        return scene.image(view)


def plot_surface(
    data,
    *,
    time=None,
    views: str | Sequence[str] = "lateral",
    hemi: str = "both",
    surface: str = "half-inflated",
    subject=None,
    mesh: str | None = None,
    cmap=None,
    vmin: float | None = None,
    vmax: float | None = None,
    symmetric: bool | str = "auto",
    percentile: float | None = None,
    threshold: float | None = None,
    outlines=None,
    sulcal: bool = True,
    colorbar: bool = True,
    title: str | None = None,
    figsize: tuple[float, float] | None = None,
    axes=None,
    dpi: int = 100,
):
    """Cortical maps as a matplotlib ``Figure``: one row per view, one column per time point.

    ``data``: a prediction Dataset, a DataArray with a ``vertex`` dimension (``ds.prediction.mean("time")``,
    a correlation map, ``ds.sel(roi="V1")``...) or an array ``(V,)``. ``time``: seconds, one or a list (needed
    when the data has several time points). ``views``: ``"lateral"``, ``"medial"``, ``"dorsal"``,
    ``"ventral"``, ``"anterior"``, ``"posterior"`` or a list. ``hemi``: ``"left"``, ``"right"`` or
    ``"both"``. ``surface``: ``"half-inflated"`` (default), ``"inflated"``, ``"pial"``, ``"white"``.
    Colours: ``cmap`` (diverging for data of both signs, else sequential), limits ``vmin``/``vmax`` or the
    data's range or ``percentile`` (``symmetric`` about zero: ``"auto"``, ``True``, ``False``), shared by
    every panel; values with ``|value| < threshold`` show the sulcal background. ``outlines``: an
    :class:`~tribev2.Atlas` (or atlas name) whose region borders are drawn. Each row is tagged ``L`` / ``R``
    above the middle of each hemisphere (views from below or the front show them mirrored).

    Size: ``figsize`` (inches, at ``dpi`` pixels per inch; default: as wide as a notebook cell, at most
    900 px, and as tall as the pictures need); ``axes``: a matplotlib Axes to draw into instead (the figure
    it belongs to is returned; the colorbar takes room beside it).
    """
    views = [views] if isinstance(views, str) else list(views)
    maps = brain_maps(data, time=time, subject=subject, mesh=mesh)
    if maps.values.shape[0] > 12:
        raise ValueError(
            f"the data holds {maps.values.shape[0]} maps (time points); choose up to 12 with "
            "time=[...] (tribev2.viz.save_movie shows them all)"
        )
    scale = ColorScale.for_values(
        maps.values, cmap=cmap, vmin=vmin, vmax=vmax, symmetric=symmetric, percentile=percentile, threshold=threshold
    )
    titles = [maps.label(i) for i in range(len(maps.values))]
    plan = _Plan(views, hemi, titles)
    # a colorbar beside a given Axes takes its room from it, before the pictures are fitted in
    bar = (
        axes.figure.colorbar(scale.mappable(), ax=axes, fraction=0.04, pad=0.02, shrink=0.7)
        if colorbar and axes is not None
        else None
    )
    below = colorbar and axes is None and plan.rows == 1  # one row: a long caption fits under it, not beside
    ax = _brain_axes(
        plan,
        axes,
        figsize=figsize,
        dpi=dpi,
        title=title,
        right=110 if colorbar and not below else 0,
        bottom=COLORBAR_BELOW_PX if below else 0.0,
    )
    with BrainScene(maps.mesh, surface=surface, hemi=hemi, size=plan.render_size, sulcal=sulcal) as scene:
        paint = outline_painter(scene, outlines)
        panels = _panels(scene, [paint(scale.colors(v, scene.background)) for v in maps.values], views)
        plan.draw(ax, panels, [scene.hemi_order(view) for view in views])
    if colorbar:
        bar = bar or (_colorbar_below(ax, scale) if below else _colorbar_beside(ax, scale))
        _label_colorbar(bar, scale, maps.caption, plan.fonts)
    return ax.figure


def plot_contributions(
    contributions,
    *,
    views: str | Sequence[str] = "lateral",
    hemi: str = "both",
    surface: str = "half-inflated",
    subject=None,
    mesh: str | None = None,
    percentile: float = 99.0,
    sulcal: bool = True,
    title: str | None = None,
    figsize: tuple[float, float] | None = None,
    axes=None,
    dpi: int = 100,
):
    """Modality contributions as one RGB map (first modality red, second green, third blue: text, audio,
    video for TRIBE v2), like the reference's ``plot_surf_rgb``: each channel scaled to its ``percentile``,
    mixed colours where modalities overlap. ``contributions``: see :func:`modality_channels`. ``figsize``,
    ``axes``, ``dpi``: as in :func:`plot_surface`."""
    from matplotlib.patches import Patch

    views = [views] if isinstance(views, str) else list(views)
    channels, names, mesh = modality_channels(contributions, subject=subject, mesh=mesh)
    plan = _Plan(views, hemi, [""])
    ax = _brain_axes(plan, axes, figsize=figsize, dpi=dpi, title=title, bottom=plan.fonts.label_px * 2.6)
    with BrainScene(mesh, surface=surface, hemi=hemi, size=plan.render_size, sulcal=sulcal) as scene:
        panels = _panels(scene, [rgb_colors(channels, scene.background, percentile=percentile)], views)
        plan.draw(ax, panels, [scene.hemi_order(view) for view in views])
    ax.legend(
        handles=[Patch(color=c, label=m) for m, c in zip(names, RGB_NAMES)],
        loc="upper center",
        bbox_to_anchor=(0.5, 0.0),
        ncol=3,
        frameon=False,
        fontsize=plan.fonts.points(plan.fonts.label_px),
        handlelength=1.2,
        borderaxespad=0.2,
    )
    return ax.figure


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
        raise ValueError(
            "contributions must be a DataArray with a 'modality' dimension (or a Dataset with "
            "one variable per modality)"
        )
    names = [str(m) for m in contributions["modality"].values]
    if len(names) != 3:
        raise ValueError(f"contributions have modalities {names}; an RGB map needs exactly three")
    mesh = mesh or contributions.attrs.get("mesh")
    if "time" in contributions.dims:
        contributions = np.sqrt((contributions**2).mean("time"))
    maps = [
        brain_maps(contributions.sel(modality=m), subject=subject, mesh=mesh) for m in contributions["modality"].values
    ]
    return np.abs(np.stack([m.values[0] for m in maps], axis=1)), names, maps[0].mesh


# -- layout: sizes in shown pixels, fonts from the picture size --------------------------------------------------
@dataclass(frozen=True)
class Fonts:
    """Text sizes in shown pixels for pictures ``picture_px`` high, at ``dpi`` (matplotlib wants points)."""

    picture_px: float
    dpi: float

    @property
    def tag_px(self) -> float:
        return float(np.clip(0.09 * self.picture_px, 12, 17))

    @property
    def title_px(self) -> float:
        return float(np.clip(0.095 * self.picture_px, 13, 17))

    @property
    def label_px(self) -> float:
        return float(np.clip(0.08 * self.picture_px, 12, 15))

    def points(self, px: float) -> float:
        return px * 72.0 / self.dpi


class _Plan:
    """Where the pictures of a views × maps grid go, in shown pixels of the Axes that holds them: a line of
    column titles on top, then per row a strip with the hemisphere tags and the row's pictures. ``fit``
    chooses the picture size for a box; ``draw`` puts the rendered panels there."""

    def __init__(self, views: Sequence[str], hemi: str, titles: Sequence[str]):
        self.views, self.titles = list(views), list(titles)
        self.rows, self.columns = len(self.views), len(self.titles)
        # hemisphere pictures across a cell: lateral and medial views of both hemispheres come side by side
        self.across = 2 if hemi == "both" and any(v in SPLIT_VIEWS for v in self.views) else 1
        self.fit(self.columns * self.across * PICTURE_WIDTH_PX, dpi=100)

    def fit(self, width_px: float, height_px: float | None = None, *, dpi: float) -> None:
        """Pictures as wide as ``width_px`` allows (and ``height_px``, when given)."""
        self.dpi = dpi
        self._set_width(width_px / (self.columns * self.across))
        if height_px is not None and self.height_px > height_px:
            # strips and titles hardly change with the picture size: one correction step is enough
            fixed = self.height_px - self.rows * self.picture_h
            self._set_width(min(self.picture_w, max(8.0, (height_px - fixed) / self.rows * PICTURE_ASPECT)))

    def _set_width(self, picture_w: float) -> None:
        self.picture_w = float(picture_w)
        self.picture_h = self.picture_w / PICTURE_ASPECT
        self.fonts = Fonts(self.picture_h, self.dpi)
        self.title_h = 1.5 * self.fonts.title_px if any(self.titles) else 0.0
        self.strip_h = 1.4 * self.fonts.tag_px

    @property
    def cell_w(self) -> float:
        return self.across * self.picture_w

    @property
    def width_px(self) -> float:
        return self.columns * self.cell_w

    @property
    def height_px(self) -> float:
        return self.title_h + self.rows * (self.strip_h + self.picture_h)

    @property
    def render_size(self) -> tuple[int, int]:
        """Rendered pixels of one hemisphere's picture."""
        return max(16, round(OVERSAMPLE * self.picture_w)), max(12, round(OVERSAMPLE * self.picture_h))

    def draw(self, ax, panels, sides) -> None:
        """Draw ``panels[row][column]`` images; ``sides[row]``: the hemispheres of that row, left to right."""
        fonts = self.fonts
        ax.set_xlim(0, self.width_px)
        ax.set_ylim(self.height_px, 0)
        ax.set_aspect("equal", anchor="C")
        ax.set_axis_off()
        for column, text in enumerate(self.titles):
            if text:
                ax.text(
                    (column + 0.5) * self.cell_w,
                    self.title_h / 2,
                    text,
                    ha="center",
                    va="center",
                    fontsize=fonts.points(fonts.title_px),
                )
        for row, images in enumerate(panels):
            top = self.title_h + row * (self.strip_h + self.picture_h) + self.strip_h
            for column, image in enumerate(images):
                width = self.picture_w * image.shape[1] / self.render_size[0]
                left = column * self.cell_w + (self.cell_w - width) / 2
                ax.imshow(image, extent=(left, left + width, top + self.picture_h, top), interpolation="antialiased")
                if column == 0:  # tags above the middle of each hemisphere: never side by side
                    shares = len(sides[row])
                    for index, hemi in enumerate(sides[row]):
                        ax.text(
                            left + (index + 0.5) * width / shares,
                            top - self.strip_h / 2,
                            hemi[0].upper(),
                            ha="center",
                            va="center",
                            fontsize=fonts.points(fonts.tag_px),
                            fontweight="bold",
                            color="0.35",
                        )
            if self.rows > 1:
                ax.text(
                    -0.3 * fonts.label_px,
                    top + self.picture_h / 2,
                    self.views[row],
                    rotation=90,
                    ha="right",
                    va="center",
                    fontsize=fonts.points(fonts.label_px),
                    clip_on=False,
                )


def _check_figure_size(figsize, dpi) -> None:
    """``dpi`` a positive number and ``figsize`` None or ``(width, height)`` inches making from ``MIN_WIDTH_PX``
    to :data:`MAX_FIGURE_PX` pixels a side, else a ``ValueError`` naming them."""
    real_number(dpi, "dpi", positive=True)
    if figsize is None:
        return
    try:
        width, height = (real_number(side, "figsize", positive=True) for side in figsize)
    except (TypeError, ValueError):
        raise ValueError(f"figsize={figsize!r}: expected (width, height) in inches") from None
    pixels = (round(width * dpi), round(height * dpi))
    if not (MIN_WIDTH_PX <= pixels[0] <= MAX_FIGURE_PX and 100 <= pixels[1] <= MAX_FIGURE_PX):
        raise ValueError(
            f"figsize={figsize!r} at dpi={dpi!r} makes {pixels[0]}x{pixels[1]} pixels; expected from "
            f"{MIN_WIDTH_PX}x100 to {MAX_FIGURE_PX}x{MAX_FIGURE_PX}"
        )


def _brain_axes(plan: _Plan, axes, *, figsize, dpi: float, title: str | None, right: float = 0.0, bottom: float = 0.0):
    """The Axes the pictures go in, and ``plan`` fitted to it: ``axes`` as given (its title set), or the one
    Axes of a new figure of ``figsize`` inches, with ``right`` shown pixels kept for a colorbar and ``bottom``
    for a legend. A new figure without ``figsize`` is as wide as the pictures at their default size, at most
    ``NOTEBOOK_WIDTH_PX``, and as tall as they need."""
    _check_figure_size(figsize, dpi)
    if axes is not None:
        if title:
            axes.set_title(title, fontsize=plan.fonts.points(plan.fonts.title_px + 2))
        box = axes.get_window_extent()
        plan.fit(box.width, box.height, dpi=axes.figure.dpi)
        return axes
    left = 1.8 * 12 if plan.rows > 1 else 4.0
    top = 4.0
    if figsize is None:
        natural = plan.width_px
        width = max(MIN_WIDTH_PX, min(NOTEBOOK_WIDTH_PX, left + natural + right + 4))
        plan.fit(min(natural, width - left - right - 4), dpi=dpi)
    else:
        width = figsize[0] * dpi
        plan.fit(width - left - right - 4, figsize[1] * dpi - top - bottom - 4 - (30 if title else 0), dpi=dpi)
    top += 1.8 * plan.fonts.title_px if title else 0.0
    height = figsize[1] * dpi if figsize is not None else top + plan.height_px + bottom + 4
    width, height = round(width), round(height)  # whole pixels
    figure = BrainFigure(figsize=(width / dpi, height / dpi), dpi=dpi)
    box = (plan.width_px, plan.height_px) if figsize is None else (width - left - right - 4, height - top - bottom - 4)
    ax = figure.add_axes((left / width, bottom / height, box[0] / width, box[1] / height))
    if title:
        figure.suptitle(title, y=1 - 4 / height, va="top", fontsize=plan.fonts.points(plan.fonts.title_px + 2))
    return ax


def _colorbar_beside(ax, scale: ColorScale):
    """A vertical colorbar in the room kept right of ``ax``."""
    figure = ax.figure
    ax.apply_aspect()  # the box the pictures fill
    box, width = ax.get_position(), figure.get_figwidth() * figure.dpi
    cax = figure.add_axes((box.x1 + 14 / width, box.y0 + 0.2 * box.height, 12 / width, 0.6 * box.height))
    return figure.colorbar(scale.mappable(), cax=cax)


def _colorbar_below(ax, scale: ColorScale):
    """A horizontal colorbar in the room kept under ``ax``, centred, its caption under it."""
    figure = ax.figure
    ax.apply_aspect()
    box = ax.get_position()
    width, height = (size * figure.dpi for size in figure.get_size_inches())
    bar_width = min(0.4 * box.width, 320 / width)
    cax = figure.add_axes(
        (box.x0 + (box.width - bar_width) / 2, (COLORBAR_BELOW_PX - 18) / height, bar_width, 10 / height)
    )
    return figure.colorbar(scale.mappable(), cax=cax, orientation="horizontal")


def _label_colorbar(bar, scale: ColorScale, caption: str, fonts: Fonts) -> None:
    from matplotlib.ticker import MaxNLocator

    length = bar.ax.get_window_extent().width if bar.orientation == "horizontal" else 200
    bar.locator = MaxNLocator(max(2, min(7, int(length / (4 * fonts.label_px)))))
    bar.ax.tick_params(labelsize=fonts.points(fonts.label_px))
    bar.set_label(caption, fontsize=fonts.points(fonts.label_px))
    if scale.threshold:
        bar.ax.axhspan(-scale.threshold, scale.threshold, color="0.7")


def _panels(scene: BrainScene, colour_sets: Sequence[np.ndarray], views: Sequence[str]):
    """Images ``[view][map]``."""
    grid = [[None] * len(colour_sets) for _ in views]
    for column, colours in enumerate(colour_sets):
        scene.paint(colours)
        for row, view in enumerate(views):
            grid[row][column] = scene.image(view)
    return grid
