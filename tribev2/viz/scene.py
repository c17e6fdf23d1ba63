"""The rendering core shared by every view: maps out of Datasets, colours, cameras and an off-screen cortex.

Everything the figures, the movie, the HTML report and the viewer draw goes through three steps:

1. :func:`brain_maps` turns a Dataset / DataArray / array into ``(n_maps, V)`` values on a named fsaverage mesh
   (NaN where a vertex has no value, e.g. after ``ds.sel(roi=...)``);
2. :func:`color_limits` and :func:`colorize` (or :func:`rgb_colors`) give each vertex an RGB colour over the
   sulcal background;
3. :class:`BrainScene` holds the two hemispheres in one PyVista plotter, takes new colours without rebuilding
   anything, and renders a named view (``lateral``, ``medial``, ``dorsal``, ``ventral``, ``anterior``,
   ``posterior``) to an ``(H, W, 3)`` image, off-screen (EGL, no display needed) or in a notebook.
"""

from __future__ import annotations

import contextlib
import io
import math
import os
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from ..surface import FSAVERAGE_SIZES, HEMIS, check_mesh, load_sulcal_depth, load_surface, mesh_for_vertices

VIEWS = ("lateral", "medial", "dorsal", "ventral", "anterior", "posterior")
SPLIT_VIEWS = ("lateral", "medial")  # with both hemispheres: one image per hemisphere, side by side
DISPLAY_HEMIS = ("left", "right", "both")
# camera direction (focal point -> camera) and view-up per view; lateral/medial depend on the hemisphere
_CAMERAS = {
    ("lateral", "left"): ((-1, 0, 0), (0, 0, 1)),
    ("lateral", "right"): ((1, 0, 0), (0, 0, 1)),
    ("medial", "left"): ((1, 0, 0), (0, 0, 1)),
    ("medial", "right"): ((-1, 0, 0), (0, 0, 1)),
    "dorsal": ((0, 0, 1), (0, 1, 0)),
    "ventral": ((0, 0, -1), (0, 1, 0)),
    "anterior": ((0, 1, 0), (0, 0, 1)),
    "posterior": ((0, -1, 0), (0, 0, 1)),
}
HEMI_GAP_MM = 6.0  # space between the hemispheres when both are shown (inflated surfaces overlap otherwise)


# -- data ------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class BrainMaps:
    """``values (n_maps, V)`` on both hemispheres of ``mesh`` (left first), NaN where there is no value;
    ``times`` holds each map's time in seconds (``None`` for maps without a time)."""

    mesh: str
    values: np.ndarray
    times: tuple[float | None, ...]
    name: str = ""
    units: str = ""

    @property
    def caption(self) -> str:
        """What the values are, for a colorbar: ``"predicted BOLD response (a.u.)"``."""
        return " ".join(filter(None, [self.name, f"({self.units})" if self.units else ""]))

    def label(self, index: int) -> str:
        t = self.times[index]
        return "" if t is None else f"t = {t:g} s"


def brain_maps(data, *, time=None, subject=None, mesh: str | None = None, variable: str = "prediction") -> BrainMaps:
    """Per-vertex maps from a prediction Dataset, a DataArray with a ``vertex`` dimension or a NumPy array.

    ``time``: one time in seconds, a list of times, or ``None`` for every time point. ``subject``: a name of
    the ``subject`` coordinate (default: ``"average"`` when present, else the first). ``mesh``: needed only
    when neither the data's attributes nor its vertex count say which fsaverage mesh it lives on.
    A DataArray that holds part of the cortex (``ds.sel(roi="V1")``, ``sel(hemi="left")``) is placed at its
    ``vertex`` ids; the other vertices are NaN (not drawn).
    """
    import xarray as xr

    if isinstance(data, xr.Dataset):
        if variable not in data.data_vars:
            raise ValueError(
                f"the Dataset has no variable {variable!r}; it has {list(data.data_vars)} "
                "(pass variable=... or a DataArray)"
            )
        mesh = mesh or data.attrs.get("mesh") or None
        data = data[variable]
    if not isinstance(data, xr.DataArray):
        array = np.asarray(data, dtype=np.float64)
        if array.ndim not in (1, 2):
            raise ValueError(
                f"data has shape {array.shape}; expected (vertex,) or (map, vertex) values, "
                "or an xarray Dataset / DataArray"
            )
        array = np.atleast_2d(array)
        mesh = check_mesh(mesh) if mesh else mesh_for_vertices(array.shape[1])
        _check_width(array.shape[1], mesh)
        return BrainMaps(mesh, array, (None,) * len(array))
    if "vertex" not in data.dims:
        raise ValueError(f"data has dims {data.dims}; expected a 'vertex' dimension")
    if "subject" in data.dims:
        data = data.sel(subject=_pick_subject(data, subject))
    times: tuple[float | None, ...]
    if "time" in data.dims:
        if time is not None:
            data = data.sel(time=_nearest_times(data, time))
        times = tuple(float(t) for t in np.atleast_1d(data["time"].values))
        data = data.transpose(..., "time", "vertex") if "time" in data.dims else data
    else:
        if time is not None:
            raise ValueError("time=... was given but the data has no 'time' dimension")
        times = (None,)
    extra = [d for d in data.dims if d not in ("time", "vertex") and data.sizes[d] > 1]
    if extra:
        raise ValueError(
            f"data still has the dimension(s) {extra}: select or reduce them first "
            f"(e.g. .sel({extra[0]}=...) or .mean({extra[0]!r}))"
        )
    values = np.asarray(data.values, dtype=np.float64).reshape(len(times), data.sizes["vertex"])
    mesh = check_mesh(mesh or data.attrs.get("mesh") or _mesh_from_vertices(data))
    full = np.full((len(times), 2 * FSAVERAGE_SIZES[mesh]), np.nan)
    ids = np.asarray(data["vertex"].values, dtype=np.int64) if "vertex" in data.coords else np.arange(values.shape[1])
    if ids.size and (ids.min() < 0 or ids.max() >= full.shape[1]):
        raise ValueError(
            f"vertex ids run from {ids.min()} to {ids.max()}, outside {mesh}'s {full.shape[1]:,} "
            "vertices (pass mesh=...)"
        )
    full[:, ids] = values
    name = str(data.attrs.get("long_name") or data.name or "")
    return BrainMaps(mesh, full, times, name, str(data.attrs.get("units", "")))


def _check_width(n_vertices: int, mesh: str) -> None:
    if n_vertices != 2 * FSAVERAGE_SIZES[mesh]:
        raise ValueError(
            f"{n_vertices:,} values do not match {mesh} ({2 * FSAVERAGE_SIZES[mesh]:,} vertices, left then right)"
        )


def _mesh_from_vertices(data) -> str:
    """The mesh of a DataArray without a ``mesh`` attribute: from its full vertex count, or, when it covers
    only part of the cortex, the smallest mesh that holds its vertex ids (only a part confined to the first
    1,284 or 5,124 ids of a finer mesh is ambiguous: pass ``mesh=`` there)."""
    n = data.sizes["vertex"]
    if any(n == 2 * size for size in FSAVERAGE_SIZES.values()):
        return mesh_for_vertices(n)
    if "vertex" in data.coords and n:
        top = int(np.max(data["vertex"].values))
        for mesh, size in FSAVERAGE_SIZES.items():
            if top < 2 * size and size >= n / 2:
                return mesh
    raise ValueError(f"cannot tell the mesh of {n:,} vertices; pass mesh='fsaverage5' (or another)")


def _pick_subject(data, subject):
    names = [str(s) for s in data["subject"].values]
    if subject is None:
        return "average" if "average" in names else data["subject"].values[0]
    if str(subject) not in names:
        raise ValueError(f"subject={subject!r} is not in the data; it has {names}")
    return data["subject"].values[names.index(str(subject))]


MAX_PICTURE_PX = 4096  # a side of one hemisphere's picture: beyond, gigabytes of pixels (VTK aborts the process)


def picture_size(size) -> tuple[int, int]:
    """``size`` as ``(width, height)`` in whole pixels, each side from 16 to :data:`MAX_PICTURE_PX`, else a
    ``ValueError`` naming it."""
    try:
        width, height = (int(side) for side in size)
    except (TypeError, ValueError):
        width = height = 0
    if not (16 <= width <= MAX_PICTURE_PX and 16 <= height <= MAX_PICTURE_PX):
        raise ValueError(
            f"size={size!r}: expected (width, height) in pixels, each from 16 to {MAX_PICTURE_PX} (one hemisphere's "
            f"picture)"
        )
    return width, height


def _nearest_times(data, time):
    """The data's time points nearest to ``time`` (seconds), refusing times more than half a step away."""
    available = np.asarray(data["time"].values, dtype=np.float64)
    chosen = available[nearest_time_indices(available, time)]
    return chosen if np.ndim(time) else chosen[0]


def nearest_time_indices(available, time) -> np.ndarray:
    """Indices of the ``available`` time points (seconds) nearest to ``time`` (one or several), or a
    ``ValueError`` for a time more than half a step away from all of them."""
    available = np.asarray(available, dtype=np.float64)
    wanted = np.atleast_1d(np.asarray(time, dtype=np.float64))
    if wanted.size == 0 or not np.isfinite(wanted).all():
        raise ValueError(f"time={time!r}: expected one or more finite times in seconds (None: every time point)")
    step = float(np.median(np.diff(available))) if available.size > 1 else 1.0
    index = np.abs(available[None, :] - wanted[:, None]).argmin(axis=1)
    far = np.abs(available[index] - wanted) > step / 2 + 1e-9
    if far.any():
        raise ValueError(
            f"time={wanted[far].tolist()} s is outside the data's time points "
            f"({available[0]:g}..{available[-1]:g} s every {step:g} s)"
        )
    return index


def region_labels(ds, atlas, mesh: str) -> tuple[np.ndarray | None, tuple[str, ...], str | None]:
    """``(labels (V,), names, atlas name)`` with ``names[0]`` meaning no region, from ``atlas`` or the Dataset's
    ``roi``."""
    from ..atlas import NO_REGION, Atlas, load_atlas

    if atlas is not None:
        atlas = atlas if isinstance(atlas, Atlas) else load_atlas(atlas, mesh=mesh)
        if atlas.mesh != mesh:
            raise ValueError(f"atlas {atlas.name!r} is on {atlas.mesh}; the data is on {mesh}")
        return atlas.labels, atlas.names, atlas.name
    roi = getattr(ds, "coords", {}).get("roi")
    if roi is None:
        return None, (NO_REGION,), None
    per_vertex = np.full(2 * FSAVERAGE_SIZES[mesh], NO_REGION, dtype=object)
    per_vertex[np.asarray(ds["vertex"].values)] = np.asarray(roi.values, dtype=object)
    names = (NO_REGION,) + tuple(n for n in dict.fromkeys(per_vertex) if n != NO_REGION)
    lookup = {n: i for i, n in enumerate(names)}
    return np.array([lookup[n] for n in per_vertex]), names, roi.attrs.get("atlas")


# -- colours ---------------------------------------------------------------------------------------------------
def color_limits(
    values: np.ndarray,
    *,
    vmin: float | None = None,
    vmax: float | None = None,
    symmetric: bool | str = "auto",
    percentile: float | None = None,
) -> tuple[float, float]:
    """Colour limits for ``values`` (NaN ignored).

    Given ``vmin``/``vmax`` win (both given: used as they are). Otherwise the limits span the data, or its
    ``percentile`` (e.g. 99: robust to outliers). ``symmetric`` (``"auto"``: when the data has both signs, or
    the one given limit is a negative ``vmin``, and no given limit lies on the wrong side of zero) centres them
    on zero, the given limit (or the data) setting the half-width.
    """
    finite = np.asarray(values, dtype=np.float64)
    finite = finite[np.isfinite(finite)]
    if finite.size == 0:
        raise ValueError("the data has no finite value to colour")
    if percentile is not None and not 0 < percentile <= 100:
        raise ValueError(f"percentile={percentile!r}: expected a number in (0, 100]")
    if vmin is not None and vmax is not None:
        if not vmax > vmin:
            raise ValueError(f"vmin={vmin!r} must be below vmax={vmax!r}")
        return float(vmin), float(vmax)
    if symmetric == "auto":
        symmetric = (
            (bool(finite.min() < 0 < finite.max()) or (vmin is not None and vmin < 0))
            and (vmin is None or vmin < 0)
            and (vmax is None or vmax > 0)
        )
    if symmetric:
        given = vmax if vmax is not None and vmax > 0 else -vmin if vmin is not None and vmin < 0 else None
        top = given if given is not None else _spread(np.abs(finite), percentile)
        top = top if top > 0 else 1.0
        return -float(top), float(top)
    low = vmin if vmin is not None else _spread(finite, 100 - percentile if percentile else None, low=True)
    high = vmax if vmax is not None else _spread(finite, percentile)
    if high <= low:
        high = low + 1.0
    return float(low), float(high)


def _spread(values: np.ndarray, percentile: float | None, low: bool = False) -> float:
    if percentile is None:
        return float(values.min() if low else values.max())
    return float(np.percentile(values, percentile))


def default_cmap(limits: tuple[float, float]) -> str:
    """A diverging map for limits centred on zero, a sequential one otherwise."""
    return "RdBu_r" if math.isclose(limits[0], -limits[1]) else "YlOrRd"


@dataclass(frozen=True)
class ColorScale:
    """How values become colours: ``cmap`` over ``limits``; ``|value| < threshold`` shows the background."""

    limits: tuple[float, float]
    cmap: object = "RdBu_r"  # a matplotlib colormap or its name
    threshold: float | None = None

    @classmethod
    def for_values(
        cls,
        values: np.ndarray,
        *,
        cmap: str | None = None,
        vmin: float | None = None,
        vmax: float | None = None,
        symmetric: bool | str = "auto",
        percentile: float | None = None,
        threshold: float | None = None,
    ) -> ColorScale:
        """Limits from ``values`` (see :func:`color_limits`); ``cmap`` defaults to :func:`default_cmap`."""
        if threshold is not None and not threshold >= 0:
            raise ValueError(f"threshold={threshold!r}: expected a non-negative number")
        limits = color_limits(values, vmin=vmin, vmax=vmax, symmetric=symmetric, percentile=percentile)
        return cls(limits, cmap or default_cmap(limits), threshold)

    def colors(self, values: np.ndarray, background: np.ndarray) -> np.ndarray:
        return colorize(values, background, limits=self.limits, cmap=self.cmap, threshold=self.threshold)

    def mappable(self):
        """A matplotlib ``ScalarMappable`` for colorbars."""
        from matplotlib import colormaps
        from matplotlib.cm import ScalarMappable
        from matplotlib.colors import Normalize

        return ScalarMappable(Normalize(*self.limits), colormaps.get_cmap(self.cmap))


def sulcal_background(sulc: np.ndarray) -> np.ndarray:
    """Gray levels in [0, 1] from sulcal depth: gyri light, sulci darker (FreeSurfer's convention)."""
    return 0.7 - 0.22 * np.tanh(np.asarray(sulc, dtype=np.float64) / 0.6)


def colorize(
    values: np.ndarray,
    background: np.ndarray,
    *,
    limits: tuple[float, float],
    cmap="RdBu_r",
    threshold: float | None = None,
) -> np.ndarray:
    """``(V, 3)`` uint8 colours: ``cmap`` over ``limits`` where ``|value| >= threshold``, the gray
    ``background`` (``(V,)`` in [0, 1]) where the value is NaN or below the threshold."""
    from matplotlib import colormaps

    values = np.asarray(values, dtype=np.float64)
    shown = np.isfinite(values)
    if threshold is not None:
        shown &= np.abs(values) >= threshold
    low, high = limits
    scaled = np.clip((np.nan_to_num(values) - low) / (high - low), 0.0, 1.0)
    colours = colormaps.get_cmap(cmap)(scaled)[:, :3]
    gray = np.repeat(np.asarray(background, dtype=np.float64)[:, None], 3, axis=1)
    return (np.where(shown[:, None], colours, gray) * 255).round().astype(np.uint8)


def rgb_colors(channels: np.ndarray, background: np.ndarray, *, percentile: float = 99.0) -> np.ndarray:
    """``(V, 3)`` uint8 colours from three non-negative channels per vertex (e.g. text, audio, video
    contributions as red, green, blue), each scaled to its ``percentile`` and blended over the background by
    the strongest channel (the reference's ``plot_surf_rgb``)."""
    channels = np.nan_to_num(np.asarray(channels, dtype=np.float64), nan=0.0).clip(min=0)
    if channels.ndim != 2 or channels.shape[1] != 3:
        raise ValueError(f"channels have shape {channels.shape}; expected (vertex, 3)")
    scale = np.percentile(channels, percentile, axis=0)
    scaled = np.clip(channels / np.where(scale > 0, scale, 1.0), 0.0, 1.0)
    strength = scaled.max(axis=1, keepdims=True)
    colour = scaled / np.where(strength > 0, strength, 1.0)
    gray = np.repeat(np.asarray(background, dtype=np.float64)[:, None], 3, axis=1)
    return ((strength * colour + (1 - strength) * gray) * 255).round().astype(np.uint8)


def region_borders(labels: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """``(V,)`` bool: region outlines one vertex wide, i.e. the vertices that share a triangle with a vertex
    of a higher label (integer ``labels``; each border is drawn on the side of its lower label)."""
    labels = np.asarray(labels)
    corners = labels[faces]  # (F, 3)
    below_top = corners < corners.max(axis=1, keepdims=True)
    border = np.zeros(len(labels), dtype=bool)
    border[faces[below_top]] = True
    return border


def draw_outlines(colours: np.ndarray, borders: np.ndarray, color=(0, 0, 0), opacity: float = 0.7) -> np.ndarray:
    """``colours`` with the ``borders`` vertices (see :func:`region_borders`) painted ``color``."""
    colours = colours.copy()
    colours[borders] = (opacity * np.asarray(color) + (1 - opacity) * colours[borders]).round()
    return colours


def placed_coordinates(surface) -> np.ndarray:
    """A hemisphere's vertex coordinates shifted along x so that the left hemisphere ends, and the right
    begins, half a gap from x = 0 (inflated hemispheres overlap otherwise)."""
    x = surface.coordinates[:, 0]
    shift = -HEMI_GAP_MM / 2 - x.max() if surface.hemi == "left" else HEMI_GAP_MM / 2 - x.min()
    return surface.coordinates + np.array([shift, 0.0, 0.0])


# -- the scene -------------------------------------------------------------------------------------------------
class BrainScene:
    """Both hemispheres of an fsaverage mesh in one PyVista plotter.

    ``paint(colours)`` swaps the per-vertex colours in place (no new meshes, so movies and sliders are fast);
    ``image(view)`` renders a view to ``(H, W, 3)`` uint8. With ``hemi="both"`` the lateral and medial views
    show the left and right hemispheres side by side (``2W`` wide); the others show both in one picture.
    ``size`` is ``(width, height)`` of one hemisphere's picture. ``sulcal=False`` draws a uniform gray cortex
    instead of the sulcal-depth shading. ``smooth_edges=False`` turns off multisampling of the off-screen
    window: silhouettes get jagged, rendering is 2 to 2.5 times faster on a software renderer (for movies).
    Pass ``plotter=`` to draw into an existing (e.g. notebook) plotter instead of an off-screen one.
    """

    def __init__(
        self,
        mesh: str,
        *,
        surface: str = "half-inflated",
        hemi: str = "both",
        size: tuple[int, int] = (480, 360),
        sulcal: bool = True,
        smooth_edges: bool = True,
        background: str = "white",
        plotter=None,
    ):
        import pyvista as pv

        if hemi not in DISPLAY_HEMIS:
            raise ValueError(f"hemi={hemi!r}: expected one of {', '.join(map(repr, DISPLAY_HEMIS))}")
        self.mesh, self.surface, self.hemi = check_mesh(mesh), surface, hemi
        self.size = picture_size(size)
        self.hemis = HEMIS if hemi == "both" else (hemi,)
        self.n_per_hemi = FSAVERAGE_SIZES[self.mesh]
        if plotter is None:
            with _quiet_display_fallback():
                plotter = pv.Plotter(off_screen=True, window_size=self.size)
            if not smooth_edges:
                plotter.render_window.SetMultiSamples(0)  # before the first render creates the GL context
        self.plotter = plotter
        self.plotter.set_background(background)
        self.plotter.enable_parallel_projection()
        self.surfaces = {h: load_surface(self.mesh, surface, h) for h in HEMIS}
        depth = np.concatenate([load_sulcal_depth(self.mesh, h) for h in HEMIS])
        self.background = sulcal_background(depth if sulcal else np.zeros_like(depth))
        self.polydata, self.actors = {}, {}
        for h in self.hemis:
            points = placed_coordinates(self.surfaces[h])
            faces = self.surfaces[h].faces
            poly = pv.PolyData(points, np.hstack([np.full((len(faces), 1), 3), faces]).ravel())
            poly.point_data["rgb"] = np.zeros((len(points), 3), dtype=np.uint8)
            self.polydata[h] = poly
            self.actors[h] = self.plotter.add_mesh(
                poly,
                scalars="rgb",
                rgb=True,
                smooth_shading=True,
                ambient=0.25,
                diffuse=0.8,
                specular=0.05,
                show_scalar_bar=False,
                name=f"cortex-{h}",
            )
        self.paint(np.repeat((self.background * 255).round().astype(np.uint8)[:, None], 3, axis=1))

    @property
    def faces(self) -> np.ndarray:
        """Triangles of both hemispheres in whole-brain vertex ids (right shifted by one hemisphere)."""
        return np.vstack([self.surfaces["left"].faces, self.surfaces["right"].faces + self.n_per_hemi])

    def vertex_at(self, point: Sequence[float]) -> int:
        """The whole-brain id of the shown vertex nearest to a 3-D ``point`` (e.g. where a click landed)."""
        best, best_distance = -1, np.inf
        for h, poly in self.polydata.items():
            distances = np.linalg.norm(np.asarray(poly.points) - np.asarray(point, dtype=float), axis=1)
            index = int(distances.argmin())
            if distances[index] < best_distance:
                best, best_distance = index + (0 if h == "left" else self.n_per_hemi), distances[index]
        return best

    def paint(self, colours: np.ndarray) -> None:
        """Set the ``(V, 3)`` uint8 colours of both hemispheres (left then right)."""
        colours = np.asarray(colours)
        if colours.shape != (2 * self.n_per_hemi, 3):
            raise ValueError(f"colours have shape {colours.shape}; expected ({2 * self.n_per_hemi}, 3)")
        for h, poly in self.polydata.items():
            start = 0 if h == "left" else self.n_per_hemi
            poly.point_data["rgb"][:] = colours[start : start + self.n_per_hemi]
            poly.Modified()

    def image(self, view: str = "lateral", hemis: Sequence[str] | None = None) -> np.ndarray:
        """Render ``view`` of ``hemis`` (default: the scene's) to an ``(H, W, 3)`` uint8 array."""
        if hemis is None and self.hemi == "both" and view in SPLIT_VIEWS:
            return side_by_side(*(self.image(view, (h,)) for h in HEMIS))
        self.set_view(view, hemis)
        self.plotter.render()
        return np.asarray(self.plotter.screenshot(return_img=True))[..., :3].copy()

    def set_view(self, view: str, hemis: Sequence[str] | None = None) -> None:
        """Point the camera for ``view``, showing ``hemis`` (default: those of the scene; lateral and medial
        views of both hemispheres show the left one)."""
        hemis, direction, up, right = self._camera(view, hemis)
        for h, actor in self.actors.items():
            actor.SetVisibility(h in hemis)
        points = np.vstack([self.polydata[h].points for h in hemis])
        across, along = points @ right, points @ up
        centre = points.mean(axis=0)
        centre += right * ((across.max() + across.min()) / 2 - centre @ right)
        centre += up * ((along.max() + along.min()) / 2 - centre @ up)
        camera = self.plotter.camera
        camera.focal_point = tuple(centre)
        camera.position = tuple(centre + direction * 500.0)
        camera.up = tuple(up)
        width, height = self.plotter.window_size
        half_w, half_h = (across.max() - across.min()) / 2, (along.max() - along.min()) / 2
        camera.parallel_scale = 1.04 * max(half_h, half_w * height / width)
        self.plotter.reset_camera_clipping_range()

    def hemi_order(self, view: str = "lateral", hemis: Sequence[str] | None = None) -> tuple[str, ...]:
        """The hemispheres that ``image(view, hemis)`` shows, from the picture's left to its right, each
        taking an equal share of its width (e.g. ``("right", "left")`` for an anterior view: the brain is seen
        face to face)."""
        if hemis is None and self.hemi == "both" and view in SPLIT_VIEWS:
            return HEMIS
        hemis, _, _, right = self._camera(view, hemis)
        return tuple(sorted(hemis, key=lambda h: right[0] * (-1 if h == "left" else 1)))

    def _camera(self, view: str, hemis: Sequence[str] | None):
        """``(hemis, direction, up, right)``: the hemispheres shown, the direction from the focal point to the
        camera, the view-up and the picture's x axis (unit vectors)."""
        if view not in VIEWS:
            raise ValueError(f"view={view!r}: expected one of {', '.join(map(repr, VIEWS))}")
        hemis = tuple(hemis or (self.hemis[:1] if view in SPLIT_VIEWS else self.hemis))
        unknown = [h for h in hemis if h not in self.actors]
        if unknown:
            raise ValueError(f"hemisphere(s) {unknown} are not in this scene (hemi={self.hemi!r})")
        direction, up = (np.asarray(v, dtype=float) for v in (_CAMERAS.get(view) or _CAMERAS[(view, hemis[0])]))
        return hemis, direction, up, np.cross(up, direction)  # x axis of a camera looking along -direction

    def close(self) -> None:
        self.plotter.close()

    def __enter__(self) -> BrainScene:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def outline_painter(scene: BrainScene, outlines):
    """A function that adds ``outlines`` (an Atlas, an atlas name or None) to a colour array."""
    if outlines is None:
        return lambda colours: colours
    from ..atlas import Atlas, load_atlas

    atlas = outlines if isinstance(outlines, Atlas) else load_atlas(outlines, mesh=scene.mesh)
    if len(atlas.labels) != len(scene.background):
        raise ValueError(f"outlines: atlas {atlas.name!r} is on {atlas.mesh}, the data on {scene.mesh}")
    borders = region_borders(atlas.labels, scene.faces)
    return lambda colours: draw_outlines(colours, borders)


def figure_array(figure) -> np.ndarray:
    """A matplotlib Figure rasterised to an ``(H, W, 3)`` uint8 array."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(figure)
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3].copy()


def side_by_side(*images: np.ndarray) -> np.ndarray:
    """``(H, W, 3)`` images next to each other, top-aligned, on white."""
    height = max(image.shape[0] for image in images)
    return np.concatenate(
        [np.pad(image, ((0, height - image.shape[0]), (0, 0), (0, 0)), constant_values=255) for image in images], axis=1
    )


def png_bytes(image) -> bytes:
    """PNG bytes of an ``(H, W, 3)`` uint8 array or a matplotlib Figure."""
    buffer = io.BytesIO()
    if isinstance(image, np.ndarray):
        from PIL import Image

        Image.fromarray(image).save(buffer, format="png")
    else:
        from matplotlib.backends.backend_agg import FigureCanvasAgg

        FigureCanvasAgg(image).print_png(buffer)
    return buffer.getvalue()


@contextlib.contextmanager
def _quiet_display_fallback() -> Iterator[None]:
    """VTK's warning that it falls back from X11 to EGL (or OSMesa) held back where Linux has no display at all:
    the expected path to off-screen pictures, not a fault (a render window made elsewhere still warns)."""
    if not sys.platform.startswith("linux") or os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"):
        yield
        return
    from vtkmodules.vtkCommonCore import vtkLogger

    before = vtkLogger.GetCurrentVerbosityCutoff()
    vtkLogger.SetStderrVerbosity(vtkLogger.VERBOSITY_ERROR)
    try:
        yield
    finally:
        vtkLogger.SetStderrVerbosity(before)
