"""The notebook viewer: a 3-D cortex to rotate, scrub through time and click into, beside region time courses.

``tribev2.viz.brain(ds)`` returns a :class:`BrainViewer`, displayed as ipywidgets:

* the cortex, either live in the browser through PyVista's trame backend (rotate, zoom, click a region; served
  through the notebook server's own address by ``jupyter-server-proxy`` when the server has it, so it works on
  JupyterHub and through SSH tunnels) or, with no browser attached (a script, ``nbconvert``), as an image
  re-rendered off-screen after each change;
* a time slider with a play button, view presets, the colormap, colour limits and threshold;
* atlas-region outlines and a region picker (a click on the cortex, or the list, where regions carry their long
  names: "V1 · Primary Visual Cortex") that outlines the region and plots its mean time course (prediction, and
  ground truth when given);
* overlays: the prediction over time, a correlation map, or modality contributions as RGB.

Every control is also a method (``set_time``, ``set_view``, ``select_region``, ``set_overlay``...), so a viewer
can be driven from code and its state rendered with :meth:`BrainViewer.image`.

Displayed in a notebook, a viewer writes two outputs: a PNG snapshot, then the widgets. A live front end hides
the snapshot once the widgets draw (a style rule the widgets carry); where they cannot draw (nbconvert HTML, a
notebook viewer, GitHub, a docs site) the snapshot stays. :meth:`BrainViewer.to_html` gives the same brain as a
page that needs no kernel (see :mod:`tribev2.viz.standalone`).
"""

from __future__ import annotations

import os
import urllib.error
import urllib.parse
import urllib.request

import numpy as np

from ..region_names import describe
from .scene import (
    VIEWS,
    BrainScene,
    ColorScale,
    brain_maps,
    draw_outlines,
    figure_array,
    nearest_time_indices,
    picture_size,
    png_bytes,
    region_borders,
    region_labels,
    rgb_colors,
    side_by_side,
)
from .static import RGB_NAMES, modality_channels

BACKENDS = ("auto", "static", "trame")
PRESETS = {
    "left lateral": ("lateral", ("left",)),
    "left medial": ("medial", ("left",)),
    "right lateral": ("lateral", ("right",)),
    "right medial": ("medial", ("right",)),
    **{v: (v, None) for v in VIEWS if v not in ("lateral", "medial")},
}
CMAPS = ("RdBu_r", "coolwarm", "seismic", "YlOrRd", "hot", "inferno", "viridis")
HIGHLIGHT = (0, 200, 60)  # outline of the picked region
VIEWER_CLASS = "tribev2-viewer"
# drawn by the live widgets only: hides the PNG snapshot output just before them (see the module doc)
_HIDE_SNAPSHOT = (
    f"<style>.jp-OutputArea-child:has(+ .jp-OutputArea-child .{VIEWER_CLASS}), "
    f".output_area:has(+ .output_area .{VIEWER_CLASS}) {{display: none;}}</style>"
)


class BrainViewer:
    """An interactive cortex for a prediction Dataset (see the module doc), made by ``tribev2.viz.brain(ds)``;
    ``widget`` is its ipywidgets box, and the viewer displays as it.

    ``truth``: measured BOLD on the same mesh, anything :func:`tribev2.io.load_ground_truth` reads (a
    DataArray ``(time, vertex)`` with acquisition times, a file...), drawn beside the prediction in region
    time courses, both on the BOLD time axis (prediction row ``t`` at ``t`` + the hemodynamic offset).
    ``atlas``: an :class:`~tribev2.Atlas` or atlas name for outlines and the region picker (default: the
    Dataset's ``roi`` coordinate). ``correlation``: a map ``(vertex,)``, e.g.
    ``tribev2.evaluate(ds, truth).pearson_r``. ``contributions``: what :func:`tribev2.contributions` returns
    (or per-modality maps), shown as RGB (see :func:`tribev2.viz.static.modality_channels`). ``view``: a
    preset of :data:`PRESETS` (default: the lateral view of the left, or only, hemisphere).
    ``percentile``/``threshold``/``cmap`` (a matplotlib colormap name): initial colours. ``backend``:
    ``"trame"`` (live 3-D, needs a browser and ``pyvista[jupyter]``), ``"static"`` (images re-rendered
    off-screen) or ``"auto"`` (trame inside a Jupyter server session when trame is installed, else static).
    ``size``: ``(width, height)`` of the cortex in pixels.
    """

    def __init__(
        self,
        ds,
        *,
        truth=None,
        atlas=None,
        correlation=None,
        contributions=None,
        subject=None,
        view: str | None = None,
        hemi: str = "both",
        surface: str = "half-inflated",
        cmap=None,
        percentile: float | None = 99.0,
        threshold: float | None = None,
        backend: str = "auto",
        size: tuple[int, int] = (640, 440),
    ):
        if backend not in BACKENDS:
            raise ValueError(f"backend={backend!r}: expected one of {', '.join(map(repr, BACKENDS))}")
        self.prediction = brain_maps(ds, subject=subject)
        if self.prediction.times[0] is None:
            raise ValueError(
                "brain() follows a prediction over time and the data has no 'time' dimension; draw a "
                "single map with viz.plot_surface, or give it to brain() as correlation="
            )
        self.mesh = self.prediction.mesh
        self.offset_s = float(ds["time"].attrs.get("hemodynamic_offset_s", 0.0)) if "time" in ds.coords else 0.0
        self.truth = _truth_maps(truth, self.mesh) if truth is not None else None
        self.backend = _choose_backend(backend)
        size = picture_size(size)  # checked before a notebook plotter is made for it
        plotter = _notebook_plotter(size) if self.backend == "trame" else None
        self.scene = BrainScene(self.mesh, surface=surface, hemi=hemi, size=size, plotter=plotter)
        self.labels, self.region_names, self.atlas_name = region_labels(ds, atlas, self.mesh)
        self.overlays = {"prediction": self.prediction.values}
        self.captions = {"prediction": self.prediction.caption or "prediction"}  # colorbar labels
        if correlation is not None:
            correlation = brain_maps(correlation, mesh=self.mesh)
            self.overlays["correlation"] = correlation.values[:1]
            self.captions["correlation"] = correlation.caption or "correlation"
        if contributions is not None:
            channels, self.modalities, _ = modality_channels(contributions, subject=subject, mesh=self.mesh)
            self.overlays["contributions"] = channels  # (V, 3): the modalities as red, green, blue
        self.percentile = percentile
        cmap = getattr(cmap, "name", cmap)  # the colormap menu holds names
        view = view or ("right lateral" if hemi == "right" else "left lateral")
        self.state = {"time": 0, "view": view, "overlay": "prediction", "outlines": False, "region": None}
        self.scales = {
            name: ColorScale.for_values(values, cmap=cmap, percentile=percentile, threshold=threshold)
            for name, values in self.overlays.items()
            if name != "contributions"
        }
        self._check_preset(view)
        self._borders = region_borders(self.labels, self.scene.faces) if self.labels is not None else None
        self._build_widgets()
        self.refresh()

    # -- state changes (the widgets call these) -----------------------------------------------------------------
    def set_time(self, time_s: float) -> None:
        """Show the time point nearest to ``time_s`` seconds (one more than half a TR outside is an error)."""
        self._show_time_index(int(nearest_time_indices(self.prediction.times, time_s)[0]))

    def _show_time_index(self, index: int) -> None:
        self.state["time"] = index
        self._sync(self._time, value=index)
        self.refresh()

    def set_view(self, preset: str) -> None:
        """Turn the camera to a preset of :data:`PRESETS` (``"left lateral"``, ``"dorsal"``...)."""
        self.state["view"] = self._check_preset(preset)
        self._sync(self._view, value=preset)
        self.refresh()

    def set_overlay(self, name: str) -> None:
        """Show ``"prediction"``, ``"correlation"`` or ``"contributions"`` (those given to :func:`brain`)."""
        if name not in self.overlays:
            raise ValueError(f"overlay {name!r} is not available; this viewer has {list(self.overlays)}")
        self.state["overlay"] = name
        self._sync(self._overlay, value=name)
        self._sync_scale_widgets()
        self._legend.value = (
            ""
            if name != "contributions"
            else " ".join(
                f'<b style="color:{colour}">{modality}</b>' for modality, colour in zip(self.modalities, RGB_NAMES)
            )
        )
        self.refresh()

    def set_colors(
        self, *, cmap=None, vmin: float | None = None, vmax: float | None = None, threshold: float | None = None
    ) -> None:
        """Change the colormap, limits or threshold of the current overlay."""
        name = self.state["overlay"]
        if name == "contributions":
            raise ValueError("the contributions overlay is RGB; it has no colormap or limits")
        scale = self.scales[name]
        limits = (scale.limits[0] if vmin is None else vmin, scale.limits[1] if vmax is None else vmax)
        if not limits[1] > limits[0]:
            raise ValueError(f"vmin={limits[0]} must be below vmax={limits[1]}")
        self.scales[name] = ColorScale(limits, cmap or scale.cmap, scale.threshold if threshold is None else threshold)
        self._sync_scale_widgets()
        self.refresh()

    def show_outlines(self, show: bool = True) -> None:
        """Draw the borders of every atlas region."""
        if show and self.labels is None:
            raise ValueError("no atlas: pass atlas=... to brain() or attach one to the Dataset")
        self.state["outlines"] = bool(show)
        self._sync(self._outlines, value=bool(show))
        self.refresh()

    def select_region(self, name: str | None) -> None:
        """Outline region ``name`` and plot its mean time course (``None`` clears the selection)."""
        if name is not None and (self.labels is None or name not in self.region_names[1:]):
            known = (
                "no atlas"
                if self.labels is None
                else f"{len(self.region_names) - 1} regions, e.g. " + ", ".join(self.region_names[1:6])
            )
            raise ValueError(f"region {name!r} is not in the atlas ({known})")
        self.state["region"] = name
        self._sync(self._region, value=name)
        self.refresh()

    def pick(self, point) -> str | None:
        """Select the region under a 3-D ``point`` of the shown surface (what a click on the cortex does);
        returns its name (``None`` outside every region)."""
        if self.labels is None:
            return None
        label = self.labels[self.scene.vertex_at(point)]
        self.select_region(self.region_names[label] if label > 0 else None)
        return self.state["region"]

    # -- what is shown ------------------------------------------------------------------------------------------
    def colors(self) -> np.ndarray:
        """``(V, 3)`` uint8 colours of the current state."""
        name = self.state["overlay"]
        values = self.overlays[name]
        if name == "contributions":
            colours = rgb_colors(values, self.scene.background, percentile=self.percentile or 99.0)
        else:
            colours = self.scales[name].colors(values[min(self.state["time"], len(values) - 1)], self.scene.background)
        if self.state["outlines"]:
            colours = draw_outlines(colours, self._borders)
        if self.state["region"] is not None:
            inside = self.labels == self.region_names.index(self.state["region"])
            colours = draw_outlines(
                colours, region_borders(inside.astype(np.int8), self.scene.faces), HIGHLIGHT, opacity=1.0
            )
        return colours

    def image(self) -> np.ndarray:
        """The cortex as currently shown, rendered off-screen: ``(H, W, 3)`` uint8."""
        view, hemis = PRESETS[self.state["view"]]
        self.scene.paint(self.colors())
        return self.scene.image(view, hemis)

    def snapshot(self) -> np.ndarray:
        """The cortex and the time-course panel side by side in one ``(H, W, 3)`` image."""
        return side_by_side(self.image(), figure_array(self._timecourse_figure()))

    def region_timecourse(self, name: str | None = None) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """Mean time course over the vertices of region ``name`` (default: the selected one) on the time
        axis of the BOLD signal: ``{"prediction": (times, values)[, "truth": (times, values)]}``, the
        prediction's row times shifted by its hemodynamic offset, the ground truth at its acquisition times."""
        name = name or self.state["region"]
        if name is None:
            raise ValueError("no region selected")
        inside = self.labels == self.region_names.index(name)
        courses = {"prediction": (self.prediction, self.offset_s)}
        if self.truth is not None:
            courses["truth"] = (self.truth, 0.0)
        return {
            key: (np.asarray(maps.times, dtype=float) + shift, np.nanmean(maps.values[:, inside], axis=1))
            for key, (maps, shift) in courses.items()
        }

    def refresh(self) -> None:
        """Re-draw the cortex and the time-course panel from the current state."""
        if self.backend == "trame":
            view, hemis = PRESETS[self.state["view"]]
            self.scene.paint(self.colors())
            self.scene.set_view(view, hemis)
            self.scene.plotter.render()
            self._cortex.viewer.update()
        else:
            self._cortex.value = png_bytes(self.image())
        self._plot.value = png_bytes(self._timecourse_figure())
        name, _, count = self.region_title().partition(": ")  # two lines: long region names fit the panel
        self._title.value = f"<b>{name}</b>" + (f": <br>{count}" if count else "")
        t = self.prediction.times[self.state["time"]]
        self._time_label.value = f"t = {t:g} s (BOLD at {t + self.offset_s:g} s)"

    def region_title(self) -> str:
        """What the time-course panel shows: ``"V1 · Primary Visual Cortex: mean over 163 vertices"``."""
        region = self.state["region"]
        if region is None:
            return "no region picked"
        count = int((self.labels == self.region_names.index(region)).sum())
        return f"{describe(region, self.atlas_name)}: mean over {count} vertices"

    # -- widgets ------------------------------------------------------------------------------------------------
    def _build_widgets(self) -> None:
        import ipywidgets as w

        last = len(self.prediction.times) - 1
        self._quiet = False  # True while code (not the user) moves a widget
        self._time = w.IntSlider(
            0,
            min=0,
            max=last,
            description="time",
            readout=False,
            continuous_update=False,
            layout=w.Layout(width="320px"),
        )
        play = w.Play(0, min=0, max=last, interval=600, description="play")
        w.jslink((play, "value"), (self._time, "value"))
        self._time_label = w.Label()
        self._view = w.Dropdown(options=list(PRESETS), value=self.state["view"], description="view")
        self._overlay = w.Dropdown(options=list(self.overlays), value="prediction", description="overlay")
        self._legend = w.HTML()  # the RGB key of the contributions overlay
        self._cmap = w.Dropdown(
            options=sorted(set(CMAPS) | {str(s.cmap) for s in self.scales.values()}), description="colormap"
        )
        # the slider's own read-out is cut to a few characters: the limits are written out beside it
        self._limits = w.FloatRangeSlider(description="limits", continuous_update=False, readout=False)
        self._limits_label = w.Label(layout=w.Layout(min_width="150px"))
        self._threshold = w.FloatSlider(description="threshold", continuous_update=False, readout_format=".3g")
        self._outlines = w.Checkbox(False, description="region outlines", disabled=self.labels is None)
        names = [] if self.labels is None else sorted(self.region_names[1:], key=str.lower)
        self._region = w.Dropdown(
            options=[("(none)", None)] + [(describe(n, self.atlas_name), n) for n in names],
            description="region",
            disabled=self.labels is None,
            layout=w.Layout(width="420px"),
        )
        self._title = w.HTML(layout=w.Layout(width="420px"))
        self._plot = w.Image(format="png", layout=w.Layout(width="420px"))
        width, height = self.scene.size
        size = w.Layout(width=f"{width}px", height=f"{height}px", flex="0 0 auto")
        if self.backend == "trame":
            self._cortex = self.scene.plotter.show(
                jupyter_backend="server",
                return_viewer=True,
                jupyter_kwargs={"add_menu": False, "handler": _trame_widget},
            )
            self._cortex.layout = size
            self.scene.plotter.enable_point_picking(
                callback=self.pick, left_clicking=True, show_message=False, show_point=False, use_picker=False
            )
        else:
            self._cortex = w.Image(format="png", layout=size)
        self._sync_scale_widgets()
        for widget, action in (
            (self._time, self._show_time_index),
            (self._view, self.set_view),
            (self._overlay, self.set_overlay),
            (self._outlines, self.show_outlines),
            (self._region, self.select_region),
            (self._cmap, lambda v: self.set_colors(cmap=v)),
            (self._limits, lambda v: self.set_colors(vmin=v[0], vmax=v[1])),
            (self._threshold, lambda v: self.set_colors(threshold=v)),
        ):
            widget.observe(lambda change, action=action: self._quiet or action(change["new"]), "value")
        controls = w.VBox(
            [
                w.HBox([play, self._time, self._time_label]),
                w.HBox([self._view, self._overlay, self._legend]),
                w.HBox([self._cmap, self._limits, self._limits_label]),
                w.HBox([self._threshold, self._outlines]),
                self._region,
            ]
        )
        self.widget = w.VBox(
            [w.HTML(_HIDE_SNAPSHOT), w.HBox([self._cortex, w.VBox([self._title, self._plot])]), controls]
        )
        self.widget.add_class(VIEWER_CLASS)

    def _sync(self, widget, **traits) -> None:
        """Show new values in a widget without firing its callback."""
        self._quiet = True
        try:
            with widget.hold_trait_notifications():
                for trait, value in traits.items():
                    setattr(widget, trait, value)
        finally:
            self._quiet = False

    def _sync_scale_widgets(self) -> None:
        """Point the colormap, limits and threshold controls at the current overlay's scale."""
        name = self.state["overlay"]
        for control in (self._cmap, self._limits, self._threshold):
            control.disabled = name == "contributions"
        if name == "contributions":
            return
        scale = self.scales[name]
        top = float(max(np.nanmax(np.abs(self.overlays[name])), *np.abs(scale.limits)))
        self._sync(self._cmap, value=str(scale.cmap))
        self._sync(self._limits, min=-top, max=top, step=top / 200, value=scale.limits)
        self._limits_label.value = f"{scale.limits[0]:.3g} to {scale.limits[1]:.3g}"
        self._sync(self._threshold, min=0.0, max=top, step=top / 200, value=scale.threshold or 0.0)

    def _check_preset(self, preset: str) -> str:
        if preset not in PRESETS:
            raise ValueError(f"view={preset!r}: expected one of {', '.join(map(repr, PRESETS))}")
        _, hemis = PRESETS[preset]
        if hemis and self.scene.hemi != "both" and hemis != (self.scene.hemi,):
            raise ValueError(
                f"view={preset!r} shows the {hemis[0]} hemisphere; this viewer has hemi={self.scene.hemi!r}"
            )
        return preset

    def _timecourse_figure(self):
        """The selected region's time course above the colour key of the cortex."""
        from matplotlib.figure import Figure

        figure = Figure(figsize=(4.2, 2.6), dpi=100, layout="constrained")
        ax, key = figure.subplots(2, 1, height_ratios=(14, 1))
        self._colour_key(key)
        region = self.state["region"]
        t_now = self.prediction.times[self.state["time"]]
        if region is None:
            ax.text(
                0.5,
                0.5,
                "pick a region (list below or click\non the cortex) to see its time course",
                ha="center",
                va="center",
                transform=ax.transAxes,
                fontsize=9,
                color="0.4",
            )
            ax.set_axis_off()
            return figure
        for key, (times, values) in self.region_timecourse(region).items():
            ax.plot(times, values, label=key, lw=1.5, ls="-" if key == "prediction" else "--")
        ax.axvline(t_now + self.offset_s, color="0.3", lw=1)
        ax.set_title(self.region_title(), fontsize=9)
        ax.set_xlabel("BOLD time (s after stimulus onset)", fontsize=8)
        ax.tick_params(labelsize=8)
        ax.legend(fontsize=8, frameon=False)
        return figure

    def _colour_key(self, ax) -> None:
        """A horizontal colorbar of the current overlay in ``ax`` (the RGB key for contributions)."""
        name = self.state["overlay"]
        if name == "contributions":
            ax.set_axis_off()
            for i, (modality, colour) in enumerate(zip(self.modalities, RGB_NAMES)):
                ax.text(
                    (i + 0.5) / 3,
                    0.5,
                    modality,
                    color=colour,
                    fontsize=8,
                    fontweight="bold",
                    ha="center",
                    va="center",
                    transform=ax.transAxes,
                )
            return
        scale = self.scales[name]
        bar = ax.figure.colorbar(scale.mappable(), cax=ax, orientation="horizontal")
        if scale.threshold:
            ax.axvspan(-scale.threshold, scale.threshold, color="0.7")
        bar.ax.tick_params(labelsize=7, pad=1)
        bar.set_label(f"cortex: {self.captions[name]}", fontsize=8, labelpad=1)

    # -- display ------------------------------------------------------------------------------------------------
    def _ipython_display_(self) -> None:
        """A PNG snapshot, then the widgets (see the module doc: live front ends hide the snapshot)."""
        from IPython.display import display

        display(self.snapshot_bundle(), raw=True)
        display(self.widget_bundle(), raw=True)

    def snapshot_bundle(self) -> dict:
        """The snapshot output: the cortex and the time-course panel as one PNG."""
        return {
            "image/png": png_bytes(self.snapshot()),
            "text/plain": f"<BrainViewer snapshot: {self.state['overlay']} at t = "
            f"{self.prediction.times[self.state['time']]:g} s>",
        }

    def widget_bundle(self) -> dict:
        """The widgets' output, with a line for front ends that cannot draw them (the snapshot is above)."""
        bundle = self.widget._repr_mimebundle_()
        data = dict(bundle[0] if isinstance(bundle, tuple) else bundle)
        data["text/plain"] = "(the live viewer draws here in a running notebook; its snapshot is above)"
        return data

    def to_html(self, **options) -> str:
        """The brain as shown (overlay, colours, view, atlas regions) in one self-contained HTML page: WebGL
        3-D that rotates and zooms, a time slider, region names under the pointer; no kernel, no network.
        ``options`` go to :func:`tribev2.viz.standalone.view`."""
        from .standalone import view

        return view(self, **options).to_html()

    def close(self) -> None:
        self.widget.close()
        self.scene.close()


def _choose_backend(backend: str) -> str:
    if backend != "auto":
        return backend
    import importlib.util

    live = os.environ.get("JPY_SESSION_NAME") and importlib.util.find_spec("trame_vtk") is not None
    return "trame" if live else "static"


def _truth_maps(truth, mesh: str):
    from ..io import load_ground_truth

    return brain_maps(load_ground_truth(truth, mesh=mesh), mesh=mesh)


def _notebook_plotter(size):
    import pyvista as pv

    return pv.Plotter(notebook=True, window_size=size)


def _trame_widget(viewer, src: str, **kwargs):
    """PyVista's iframe widget, pointed through the Jupyter server's ``jupyter-server-proxy`` when it has one
    (the trame server listens on a local port the browser may not reach: JupyterHub, a tunnel, a container)."""
    from trame_pyvista.jupyter import Widget

    return Widget(viewer, _proxied(src) or src, **kwargs)


def _proxied(src: str) -> str | None:
    """``src`` (``http://localhost:PORT/index.html?...``) as a path through the Jupyter server that started this
    kernel, ``<base_url>proxy/PORT/index.html?...``, when that server runs ``jupyter-server-proxy``; else None."""
    server = _jupyter_server()
    if server is None:
        return None
    probe = urllib.request.Request(f"{server['url']}server-proxy/servers-info")  # an endpoint of the extension
    if server.get("token"):
        probe.add_header("Authorization", f"token {server['token']}")
    try:
        with urllib.request.build_opener(_NoRedirect).open(probe, timeout=5):
            pass
    except urllib.error.HTTPError as error:  # a login redirect or a refusal: the route exists, the browser has access
        if error.code == 404:
            return None
    except OSError:
        return None
    port, page = urllib.parse.urlsplit(src).port, src.split("/", 3)[3]
    return f"{server['base_url']}proxy/{port}/{page}"


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def _jupyter_server() -> dict | None:
    """The running Jupyter server whose kernel this is (its runtime file: ``url``, ``base_url``, ``token``)."""
    if not os.environ.get("JPY_SESSION_NAME"):
        return None
    try:
        from jupyter_server.serverapp import list_running_servers
    except ImportError:
        return None
    for server in list_running_servers():
        if server.get("pid") == os.getppid():
            return server
    return None


brain = BrainViewer  # tribev2.viz.brain(ds): the name the tutorials use
