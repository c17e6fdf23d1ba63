"""A brain that needs no kernel and no network: one self-contained HTML page with a WebGL cortex.

``view(ds)`` returns a :class:`BrainView`. In a notebook it shows inline (the page in an iframe); ``.save(path)``
writes the page and ``.to_html()`` returns it, to open anywhere: a browser, a docs site, an attachment. The page
holds the mesh, its sulcal shading and the colours of every time point, and draws them with WebGL:

* drag to rotate, the wheel to zoom, a double-click to go back to the view preset; view presets;
* a time slider and a play button: the colours of each time point are in the page (no images are swapped);
* the region under the pointer by name (HCP-MMP1 long names) and, on a click, that region outlined and its
  mean time course plotted below the brain;
* a colour bar with its limits.

``BrainViewer.to_html()`` (:mod:`tribev2.viz.viewer`) hands the viewer's overlay, colours, view and regions to
:func:`view`.

Why hand-written WebGL rather than a library: the scene is one mesh with per-vertex colours, a headlight and an
orthographic camera (about 300 lines of JavaScript). A library would be embedded in every page and notebook
output: the vtk.js viewer that PyVista's ``export_html`` embeds weighs 1.05 MB before any data (the brain itself,
gzip-compressed, is about 0.3 MB), and it shows one static scene, so the time axis would still be ours to write.
"""

from __future__ import annotations

import base64
import gzip
import html
import json
import os
from importlib import resources
from pathlib import Path

import numpy as np

from ..cache import atomic_path
from ..region_names import describe
from ..surface import HEMIS, load_sulcal_depth, load_surface
from .scene import _CAMERAS, ColorScale, brain_maps, placed_coordinates, region_labels, rgb_colors, sulcal_background

PALETTE_SIZE = 255  # colour indices 0..254; index 255 shows the sulcal background (NaN or below the threshold)
BACKGROUND_INDEX = 255
POSITION_STEP_MM = 0.01
PRESETS = {
    "left lateral": ("lateral", "left"),
    "left medial": ("medial", "left"),
    "right lateral": ("lateral", "right"),
    "right medial": ("medial", "right"),
    "dorsal": ("dorsal", None),
    "ventral": ("ventral", None),
    "anterior": ("anterior", None),
    "posterior": ("posterior", None),
}


def view(
    data,
    *,
    subject=None,
    atlas=None,
    hemi: str = "both",
    surface: str = "half-inflated",
    cmap=None,
    vmin: float | None = None,
    vmax: float | None = None,
    percentile: float | None = 99.0,
    threshold: float | None = None,
    initial_view: str | None = None,
    title: str | None = None,
    size: tuple[int, int] = (720, 460),
) -> BrainView:
    """A kernel-free 3-D view of ``data``: a prediction Dataset (every time point, on a slider), a DataArray or
    array with a ``vertex`` dimension (e.g. a correlation map), or a :class:`~tribev2.viz.viewer.BrainViewer`
    (its current overlay, colours, view and regions).

    ``atlas``: an :class:`~tribev2.Atlas` or atlas name for region names under the pointer (default: the data's
    ``roi`` coordinate). ``cmap``, ``vmin``/``vmax``, ``percentile``, ``threshold``: colours, as in
    :func:`tribev2.viz.plot_surface` (one scale for every time point). ``initial_view``: a preset (``"left
    lateral"``, ``"dorsal"``...). ``size``: ``(width, height)`` of the 3-D canvas in pixels.
    """
    from .viewer import BrainViewer

    if isinstance(data, BrainViewer):
        return _from_viewer(data, title=title, size=size)
    maps = brain_maps(data, subject=subject)
    scale = ColorScale.for_values(
        maps.values, cmap=cmap, vmin=vmin, vmax=vmax, percentile=percentile, threshold=threshold
    )
    labels, names, atlas_name = region_labels(data, atlas, maps.mesh)
    offset = (
        float(data["time"].attrs.get("hemodynamic_offset_s", 0.0)) if "time" in getattr(data, "coords", {}) else 0.0
    )
    return BrainView(
        maps.mesh,
        maps.values,
        maps.times,
        scale=scale,
        caption=maps.caption,
        labels=labels,
        region_names=names,
        atlas=atlas_name,
        offset_s=offset,
        hemi=hemi,
        surface=surface,
        initial_view=initial_view,
        title=title,
        size=size,
    )


def _from_viewer(viewer, *, title, size) -> BrainView:
    overlay = viewer.state["overlay"]
    common = {
        "caption": viewer.captions.get(overlay, overlay),
        "labels": viewer.labels,
        "region_names": viewer.region_names,
        "atlas": viewer.atlas_name,
        "offset_s": viewer.offset_s,
        "hemi": viewer.scene.hemi,
        "surface": viewer.scene.surface,
        "initial_view": viewer.state["view"],
        "initial_time": viewer.state["time"],
        "region": viewer.state["region"],
        "title": title,
        "size": size,
        "course_values": viewer.prediction.values,
        "course_times": viewer.prediction.times,
    }
    if overlay == "contributions":
        rgb = rgb_colors(viewer.overlays[overlay], viewer.scene.background, percentile=viewer.percentile or 99.0)
        return BrainView(viewer.mesh, None, (None,), rgb=rgb, legend=list(viewer.modalities), **common)
    maps = viewer.overlays[overlay]
    times = viewer.prediction.times if overlay == "prediction" else (None,)
    return BrainView(viewer.mesh, maps, times, scale=viewer.scales[overlay], **common)


class BrainView:
    """The data of one kernel-free page (see the module doc); :meth:`to_html` writes it, :meth:`save` saves it.

    ``values (n_maps, V)`` with ``times`` (``None`` for a map without a time) coloured by ``scale``, or ``rgb``
    ``(V, 3)`` uint8 colours given as they are (e.g. modality contributions, with ``legend`` naming red, green,
    blue). ``labels (V,)`` index ``region_names`` (``names[0]``: no region). Region time courses are means of
    ``course_values`` (default: ``values``) at ``course_times``, drawn on the BOLD time axis (``+ offset_s``).
    """

    def __init__(
        self,
        mesh: str,
        values,
        times,
        *,
        scale: ColorScale | None = None,
        rgb=None,
        legend=None,
        caption: str = "",
        labels=None,
        region_names=(),
        atlas: str | None = None,
        offset_s: float = 0.0,
        hemi: str = "both",
        surface: str = "half-inflated",
        initial_view: str | None = None,
        initial_time: int = 0,
        region: str | None = None,
        title: str | None = None,
        size: tuple[int, int] = (720, 460),
        course_values=None,
        course_times=None,
    ):
        if hemi not in (*HEMIS, "both"):
            raise ValueError(f"hemi={hemi!r}: expected 'left', 'right' or 'both'")
        initial_view = initial_view or ("right lateral" if hemi == "right" else "left lateral")
        if initial_view not in PRESETS:
            raise ValueError(f"initial_view={initial_view!r}: expected one of {', '.join(map(repr, PRESETS))}")
        if (values is None) == (rgb is None):
            raise ValueError("give either values (with a colour scale) or rgb colours")
        self.mesh, self.hemi, self.surface = mesh, hemi, surface
        self.values, self.times, self.scale, self.rgb, self.legend = values, tuple(times), scale, rgb, legend
        self.caption, self.labels, self.region_names, self.atlas = caption, labels, tuple(region_names), atlas
        self.offset_s, self.initial_view, self.initial_time, self.region = offset_s, initial_view, initial_time, region
        self.title, self.size = title, (int(size[0]), int(size[1]))
        self.course_values = values if course_values is None else course_values
        self.course_times = self.times if course_times is None else tuple(course_times)

    # -- output -------------------------------------------------------------------------------------------------
    def to_html(self) -> str:
        """The page: HTML, CSS, JavaScript and data in one string; nothing is fetched when it opens."""
        template = resources.files("tribev2.viz").joinpath("standalone.html").read_text(encoding="utf-8")
        page = template.replace("{{title}}", html.escape(self.title or self.caption or "brain"))
        return page.replace("{{data}}", json.dumps(self._payload()).replace("</", "<\\/"))

    def save(self, path: str | os.PathLike) -> Path:
        """Write :meth:`to_html` to ``path`` (``.html``), atomically; returns the path."""
        path = Path(path)
        if path.suffix.lower() not in (".html", ".htm"):
            raise ValueError(f"{path}: expected a file name ending in .html")
        with atomic_path(path) as tmp:
            tmp.write_text(self.to_html(), encoding="utf-8")
        return path

    def _repr_html_(self) -> str:
        """The page in an iframe (its own document: several views in one notebook do not meet)."""
        width, height = self.size
        return (
            f'<iframe class="tribev2-view" srcdoc="{html.escape(self.to_html(), quote=True)}" '
            f'style="width: {width + 24}px; max-width: 100%; height: {height + 340}px; border: 0;"></iframe>'
        )

    # -- data ---------------------------------------------------------------------------------------------------
    def _payload(self) -> dict:
        hemis = HEMIS if self.hemi == "both" else (self.hemi,)
        surfaces = [load_surface(self.mesh, self.surface, h) for h in hemis]
        n_per_hemi = len(surfaces[0].coordinates)
        shown = np.concatenate([np.arange(n_per_hemi) + (n_per_hemi if h == "right" else 0) for h in hemis])
        # coordinates to 0.01 mm in int16 (half the bytes of float32); faces once when both hemispheres share them
        positions = np.round(np.vstack([placed_coordinates(s) for s in surfaces]) / POSITION_STEP_MM)
        shared = len(surfaces) == 2 and np.array_equal(surfaces[0].faces, surfaces[1].faces)
        faces = surfaces[0].faces if shared else np.vstack([s.faces + i * n_per_hemi for i, s in enumerate(surfaces)])
        depth = np.concatenate([load_sulcal_depth(self.mesh, h) for h in hemis])
        background = (sulcal_background(depth) * 255).round().astype(np.uint8)
        payload = {
            "size": self.size,
            "hemis": list(hemis),
            "nPerHemi": n_per_hemi,
            "caption": self.caption,
            "positions": _packed(positions.astype(np.int16)),
            "positionStep": POSITION_STEP_MM,
            "faces": _packed(faces.astype(np.uint32)),
            "sharedFaces": bool(shared),
            "background": _packed(background),
            "times": list(self.times),
            "offset": self.offset_s,
            "initialTime": self.initial_time,
            "presets": {
                name: _preset(view, hemi, hemis)
                for name, (view, hemi) in PRESETS.items()
                if hemi is None or hemi in hemis
            },
            "initialView": self.initial_view,
        }
        if self.rgb is not None:
            payload.update(
                encoding="rgb", colours=_packed(np.asarray(self.rgb, dtype=np.uint8)[shown]), legend=self.legend or []
            )
        else:
            indices, palette = _palette_indices(np.asarray(self.values)[:, shown], self.scale)
            payload.update(
                encoding="index",
                frames=_packed(indices),
                palette=palette.tolist(),
                limits=list(self.scale.limits),
                threshold=self.scale.threshold,
            )
        if self.labels is not None:
            payload.update(self._regions(shown))
        return payload

    def _regions(self, shown: np.ndarray) -> dict:
        every = np.asarray(self.labels)
        labels = every[shown]
        present = np.unique(labels[labels > 0])
        courses = np.asarray(self.course_values, dtype=np.float64)
        means = [np.nanmean(courses[:, every == code], axis=1) for code in present]
        names = [""] * len(self.region_names)
        for code in present:
            names[code] = describe(self.region_names[code], self.atlas)
        return {
            "labels": _packed(labels.astype(np.uint16)),
            "regionNames": names,
            "regionCodes": list(self.region_names),
            "courses": {int(code): _json_numbers(mean) for code, mean in zip(present, means)},
            "courseTimes": [float(t) + self.offset_s for t in self.course_times if t is not None],
            "region": self.region_names.index(self.region) if self.region else 0,
        }


def _json_numbers(values: np.ndarray) -> list[float | None]:
    """Numbers for JSON: NaN (a region without values) becomes null."""
    return [round(float(v), 6) if np.isfinite(v) else None for v in values]


def _palette_indices(values: np.ndarray, scale: ColorScale) -> tuple[np.ndarray, np.ndarray]:
    """``(n_maps, V)`` uint8 palette indices and the ``(255, 3)`` uint8 palette: the colormap over the scale's
    limits; :data:`BACKGROUND_INDEX` where the value is NaN or below the threshold (as :func:`colorize`)."""
    from matplotlib import colormaps

    low, high = scale.limits
    scaled = np.clip((np.nan_to_num(values) - low) / (high - low), 0.0, 1.0)
    indices = np.round(scaled * (PALETTE_SIZE - 1)).astype(np.uint8)
    hidden = ~np.isfinite(values)
    if scale.threshold is not None:
        hidden |= np.abs(np.nan_to_num(values)) < scale.threshold
    indices[hidden] = BACKGROUND_INDEX
    palette = colormaps.get_cmap(scale.cmap)(np.linspace(0.0, 1.0, PALETTE_SIZE))[:, :3]
    return indices, (palette * 255).round().astype(np.uint8)


def _preset(view: str, hemi: str | None, hemis) -> dict:
    direction, up = _CAMERAS.get(view) or _CAMERAS[(view, hemi)]
    return {"direction": list(direction), "up": list(up), "hemis": [hemi] if hemi else list(hemis)}


def _packed(array: np.ndarray) -> dict:
    """A little-endian array, gzip-compressed and base64-encoded, with its type for the page to unpack."""
    array = np.ascontiguousarray(array)
    kinds = {
        np.dtype(np.uint32): "uint32",
        np.dtype(np.int16): "int16",
        np.dtype(np.uint16): "uint16",
        np.dtype(np.uint8): "uint8",
    }
    data = gzip.compress(array.astype(array.dtype.newbyteorder("<")).tobytes(), compresslevel=6, mtime=0)
    return {"type": kinds[array.dtype], "shape": list(array.shape), "gz": base64.b64encode(data).decode("ascii")}
