"""The notebook viewer, driven from code and through its widgets, rendered off-screen."""

from __future__ import annotations

import io

import numpy as np
import pytest
import xarray as xr
from test_viz_movie import demo_prediction
from test_viz_static import coloured, desikan, dilate, seen  # noqa: F401  (desikan: the atlas fixture)

from tribev2.atlas import attach_atlas, load_atlas
from tribev2.viz import brain
from tribev2.viz.viewer import HIGHLIGHT, VIEWER_CLASS, _choose_backend

N_TIMES = 8


@pytest.fixture(scope="module")
def region_dataset(desikan):
    """A 'prediction' that is non-zero only in the left superior temporal gyrus, rising over time."""
    values = np.zeros((N_TIMES, len(desikan.labels), 1), dtype=np.float32)
    values[:, desikan.vertices("superiortemporal", hemi="left"), 0] = np.linspace(0.2, 1.0, N_TIMES)[:, None]
    ds = xr.Dataset(
        {"prediction": (("time", "vertex", "subject"), values)},
        coords={
            "time": ("time", np.arange(float(N_TIMES)), {"hemodynamic_offset_s": 5.0}),
            "vertex": np.arange(len(desikan.labels)),
            "subject": ["average"],
        },
        attrs={"mesh": "fsaverage5"},
    )
    return attach_atlas(ds, desikan)


@pytest.fixture(scope="module")
def viewer(region_dataset):
    truth = region_dataset.prediction.sel(subject="average").assign_coords(time=np.arange(5.0, 5.0 + N_TIMES))
    viewer = brain(
        region_dataset,
        truth=2 * truth,
        view="left lateral",
        threshold=0.1,
        percentile=None,
        backend="static",
        size=(320, 240),
    )
    yield viewer
    viewer.close()


def png_pixels(data: bytes) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


def greenish(image):
    """Pixels where green dominates: the picked-region outline (and the test's region marker)."""
    image = image.astype(int)
    return image[..., 1] - np.maximum(image[..., 0], image[..., 2]) > 60


def test_viewer_colours_only_the_region(viewer, desikan):
    viewer.set_time(N_TIMES - 1)
    for preset, view, visible in (("left lateral", "lateral", 1000), ("left medial", "medial", 0)):
        viewer.set_view(preset)
        image = viewer.image()
        assert image.shape == (240, 320, 3)
        # where the region is seen in this view: its vertices painted a marker colour in the viewer's scene
        where_seen = seen(viewer.scene, desikan, "superiortemporal", view, hemis=("left",))
        colour = coloured(image)
        assert where_seen.sum() >= visible and colour.sum() >= 0.8 * where_seen.sum()
        assert not (colour & ~dilate(where_seen, 2)).any()
    assert where_seen.sum() < 100  # hardly any of the superior temporal gyrus is seen from the midline
    viewer.set_view("left lateral")


def test_widgets_drive_the_state(viewer):
    viewer._time.value = 2  # what the slider (or the play button) does
    assert viewer.state["time"] == 2
    early = viewer.image()
    viewer.set_time(7.2)
    assert viewer._time.value == 7 and viewer.state["time"] == 7
    assert viewer._time_label.value == "t = 7 s (BOLD at 12 s)"
    late = viewer.image()
    region = coloured(early) & coloured(late)
    assert region.sum() > 1000
    assert late[region].sum() < 0.9 * early[region].sum()  # higher values: a deeper red
    viewer._view.value = "dorsal"
    assert viewer.state["view"] == "dorsal"
    assert viewer.image().shape == (240, 320, 3)
    viewer.set_view("left lateral")
    before = viewer.image()
    viewer._cmap.value = "viridis"
    assert viewer.scales["prediction"].cmap == "viridis"
    assert not np.array_equal(before, viewer.image())
    viewer.set_time(6)  # values 0.886
    viewer._threshold.value = 0.95  # above every value now: no colour
    assert not coloured(viewer.image()).any()
    viewer.set_colors(cmap="RdBu_r", threshold=0.1)
    assert viewer._threshold.value == pytest.approx(0.1) and viewer._cmap.value == "RdBu_r"


def test_outlines_and_region_picker(viewer, desikan):
    plain = viewer.image()
    viewer._outlines.value = True
    outlined = viewer.image()
    assert (outlined.sum(axis=-1) < plain.sum(axis=-1) - 60).mean() > 0.01  # dark borders drawn
    viewer.show_outlines(False)

    # a click on the cortex lands on a 3-D point: the region there is selected and outlined
    vertex = desikan.vertices("precentral", hemi="left")[0]
    assert viewer.pick(viewer.scene.polydata["left"].points[vertex]) == "precentral"
    assert viewer._region.value == "precentral"
    assert HIGHLIGHT[1] > 2 * max(HIGHLIGHT[0], HIGHLIGHT[2])
    highlight = greenish(viewer.image())
    where_seen = seen(viewer.scene, desikan, "precentral", "lateral", hemis=("left",))
    assert highlight.sum() > 100
    assert (highlight & dilate(where_seen, 4)).sum() > 0.9 * highlight.sum()  # around the region only

    viewer._region.value = "superiortemporal"
    courses = viewer.region_timecourse()
    inside = desikan.vertices("superiortemporal")
    left = desikan.vertices("superiortemporal", hemi="left")
    expected = np.linspace(0.2, 1.0, N_TIMES) * len(left) / len(inside)  # both hemispheres averaged
    np.testing.assert_allclose(courses["prediction"][1], expected, rtol=1e-5)
    np.testing.assert_allclose(courses["prediction"][0], np.arange(N_TIMES) + 5.0)  # BOLD time
    np.testing.assert_allclose(courses["truth"][1], 2 * expected, rtol=1e-5)
    np.testing.assert_allclose(courses["truth"][0], np.arange(N_TIMES) + 5.0)
    plot = png_pixels(viewer._plot.value)
    assert plot.shape == (260, 420, 3) and (plot < 200).any(axis=-1).mean() > 0.01
    viewer.select_region(None)
    with pytest.raises(ValueError, match="not in the atlas"):
        viewer.select_region("Broca")


def test_overlays(region_dataset, desikan):
    correlation = xr.DataArray(
        np.where(np.isin(np.arange(len(desikan.labels)), desikan.vertices("lateraloccipital")), 0.9, 0.0), dims="vertex"
    )
    channels = np.zeros((3, len(desikan.labels)))
    channels[1, desikan.vertices("superiortemporal")] = 1.0  # audio only, in the superior temporal gyrus
    contributions = xr.DataArray(channels, dims=("modality", "vertex"), coords={"modality": ["text", "audio", "video"]})
    viewer = brain(
        region_dataset,
        correlation=correlation,
        contributions=contributions,
        threshold=0.1,
        backend="static",
        size=(320, 240),
    )
    try:
        assert list(viewer._overlay.options) == ["prediction", "correlation", "contributions"]
        prediction = coloured(viewer.image())
        viewer._overlay.value = "correlation"
        correlation_pixels = coloured(viewer.image())
        assert viewer._timecourse_figure().axes[1].get_xlabel() == "cortex: correlation"
        assert correlation_pixels.sum() > 300 and (correlation_pixels & prediction).sum() < 0.05 * prediction.sum()
        viewer.set_overlay("contributions")
        green = greenish(viewer.image())
        assert (green & dilate(prediction, 2)).sum() > 0.8 * green.sum() > 100
        assert viewer._cmap.disabled and viewer._limits.disabled
        assert 'green">audio' in viewer._legend.value
        assert [t.get_text() for t in viewer._timecourse_figure().axes[1].texts] == ["text", "audio", "video"]
        with pytest.raises(ValueError, match="RGB"):
            viewer.set_colors(cmap="viridis")
        with pytest.raises(ValueError, match="not available"):
            viewer.set_overlay("surprise")
    finally:
        viewer.close()


def test_time_course_panel_carries_the_colour_key(viewer):
    # the snapshot a saved notebook keeps (and the live panel) says what the cortex colours mean
    key = viewer._timecourse_figure().axes[1]
    assert key.get_xlim() == pytest.approx(viewer.scales["prediction"].limits)
    assert key.get_xlabel().startswith("cortex: ")
    viewer.set_colors(vmin=-0.5, vmax=0.5)
    assert viewer._timecourse_figure().axes[1].get_xlim() == pytest.approx((-0.5, 0.5))
    viewer.set_colors(vmin=0.0, vmax=1.0)


def test_display_writes_a_snapshot_then_the_widgets(viewer):
    # a front end without the widgets (nbconvert HTML, GitHub, the docs site) shows the snapshot output
    snapshot = png_pixels(viewer.snapshot_bundle()["image/png"])  # the cortex, and the time-course panel beside it
    assert snapshot.shape == (260, 320 + 420, 3)
    np.testing.assert_array_equal(snapshot[:240, :320], viewer.image())
    widgets = viewer.widget_bundle()
    assert "application/vnd.jupyter.widget-view+json" in widgets and "image/png" not in widgets
    assert "snapshot is above" in widgets["text/plain"]
    # the widgets carry the rule that hides the snapshot where they draw
    assert VIEWER_CLASS in viewer.widget._dom_classes
    assert f".{VIEWER_CLASS}" in viewer.widget.children[0].value and "display: none" in viewer.widget.children[0].value


def test_readable_controls(viewer):
    viewer.set_colors(vmin=-3.14159, vmax=3.14159)
    assert viewer._limits_label.value == "-3.14 to 3.14" and not viewer._limits.readout
    viewer.set_colors(vmin=0.0, vmax=1.0)
    assert viewer._cortex.layout.width == "320px" and viewer._cortex.layout.height == "240px"  # size=


def test_region_picker_names_hcp_regions_in_full(region_dataset, shared_dir):
    hcp = load_atlas("HCP-MMP1", path=shared_dir / "atlases")
    viewer = brain(region_dataset, atlas=hcp, backend="static", size=(320, 240))
    try:
        labels = {value: label for label, value in viewer._region.options}
        assert labels["V1"] == "V1 · Primary Visual Cortex"
        assert labels["p9-46v"] == "p9-46v · Area posterior 9-46v" and labels["10pp"] == "10pp · Polar 10p"
        assert all(" · " in label for value, label in labels.items() if value)  # every one of the 360 areas
        viewer._region.value = "A1"
        assert viewer._title.value.startswith("<b>A1 · Primary Auditory Cortex</b>: <br>mean over ")
    finally:
        viewer.close()


def test_backend_choice(monkeypatch):
    monkeypatch.delenv("JPY_SESSION_NAME", raising=False)
    assert _choose_backend("auto") == "static"  # a script or nbconvert: no browser to talk to
    monkeypatch.setenv("JPY_SESSION_NAME", "/home/user/notebook.ipynb")
    assert _choose_backend("auto") == "trame"  # a Jupyter server session with trame installed
    assert _choose_backend("static") == "static"


def test_viewer_checks_its_arguments(region_dataset):
    with pytest.raises(ValueError, match="backend="):
        brain(region_dataset, backend="vtk")
    with pytest.raises(ValueError, match="view="):
        brain(region_dataset, view="sideways", backend="static")
    with pytest.raises(ValueError, match="no 'time' dimension"):
        brain(region_dataset.isel(time=0), backend="static")


@pytest.mark.slow
def test_live_trame_viewer_on_a_prediction(tmp_path_factory):
    ds = demo_prediction(6, tmp_path_factory.getbasetemp() / "tribev2-cache")
    viewer = brain(ds, backend="trame", size=(300, 200))
    try:
        assert type(viewer._cortex).__module__.startswith("trame_pyvista")
        viewer.set_time(3)
        viewer.set_view("dorsal")
        image = viewer.image()
        assert image.shape == (200, 300, 3)
        assert (image < 235).any(axis=-1).mean() > 0.3 and coloured(image).mean() > 0.02
        assert viewer._region.disabled  # no atlas attached
    finally:
        viewer.close()
