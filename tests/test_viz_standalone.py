"""The kernel-free page of ``tribev2.viz.view``: what it carries (mesh, colours per time point, regions), checked
by unpacking its data as the page's script does. The page itself is driven in Chromium by ``test_browser.py``."""

from __future__ import annotations

import base64
import gzip
import html
import json
import re

import numpy as np
import pytest
import xarray as xr
from test_viz_static import desikan  # noqa: F401  (the atlas fixture)

from tribev2.atlas import attach_atlas
from tribev2.viz import brain, view
from tribev2.viz.scene import ColorScale, load_sulcal_depth, sulcal_background

N_TIMES = 4


@pytest.fixture(scope="module")
def dataset(desikan):  # noqa: F811
    values = np.zeros((N_TIMES, len(desikan.labels), 1), dtype=np.float32)
    values[:, desikan.vertices("superiortemporal"), 0] = np.linspace(-1.0, 1.0, N_TIMES)[:, None]
    values[:, desikan.vertices("lateraloccipital", hemi="left"), 0] = np.nan
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


def page_data(page: str) -> dict:
    match = re.search(r'<script type="application/json" id="data">(.*?)</script>', page, re.S)
    return json.loads(match.group(1))


def unpack(packed: dict) -> np.ndarray:
    return np.frombuffer(gzip.decompress(base64.b64decode(packed["gz"])), dtype=packed["type"]).reshape(packed["shape"])


def test_page_carries_the_colours_of_every_time_point(dataset):
    scale = ColorScale.for_values(dataset.prediction.values, percentile=None, threshold=0.2)
    data = page_data(view(dataset, percentile=None, threshold=0.2).to_html())
    assert data["times"] == list(range(N_TIMES)) and data["offset"] == 5.0
    assert data["limits"] == pytest.approx([-1.0, 1.0]) and data["threshold"] == 0.2
    frames, palette = unpack(data["frames"]), np.asarray(data["palette"], dtype=np.uint8)
    background = unpack(data["background"])
    assert frames.shape == (N_TIMES, 20484) and palette.shape == (255, 3)
    depth = np.concatenate([load_sulcal_depth("fsaverage5", h) for h in ("left", "right")])
    np.testing.assert_array_equal(background, (sulcal_background(depth) * 255).round())
    for t in range(N_TIMES):  # what the page paints = what the off-screen figures paint, to palette rounding
        shown = np.vstack([palette, [[0, 0, 0]]])[frames[t]]  # index 255: the background
        painted = np.where(frames[t][:, None] == 255, np.repeat(background[:, None], 3, axis=1), shown)
        expected = scale.colors(dataset.prediction.values[t, :, 0], background / 255)
        assert np.abs(painted.astype(int) - expected).max() <= 6
    assert (frames[:, np.isnan(dataset.prediction.values[0, :, 0])] == 255).all()  # NaN: the cortex shows


def test_page_carries_the_mesh_and_regions(dataset):
    data = page_data(view(dataset).to_html())
    positions = unpack(data["positions"]) * data["positionStep"]
    assert positions.shape == (20484, 3) and data["sharedFaces"] and unpack(data["faces"]).shape == (20480, 3)
    assert positions[:10242, 0].max() < 0 < positions[10242:, 0].min()  # the hemispheres side by side
    names = data["regionNames"]
    code = data["regionCodes"].index("superiortemporal")
    assert names[code] == "superiortemporal · superior temporal gyrus"
    np.testing.assert_allclose(data["courses"][str(code)], np.linspace(-1.0, 1.0, N_TIMES), atol=1e-6)
    assert data["courseTimes"] == [5.0, 6.0, 7.0, 8.0]
    assert set(data["presets"]) >= {"left lateral", "right medial", "dorsal"}


def test_one_hemisphere_and_a_map_without_time(dataset):
    correlation = dataset.prediction.isel(time=-1, subject=0, vertex=slice(10242, None))  # the right hemisphere
    data = page_data(view(correlation, hemi="right", initial_view="right medial").to_html())
    assert data["hemis"] == ["right"] and data["times"] == [None] and unpack(data["frames"]).shape == (1, 10242)
    assert set(data["presets"]) == {"right lateral", "right medial", "dorsal", "ventral", "anterior", "posterior"}
    with pytest.raises(ValueError, match="initial_view="):
        view(dataset, initial_view="sideways")


def test_viewer_hands_its_state_to_the_page(dataset, tmp_path):
    viewer = brain(dataset, backend="static", size=(320, 240), percentile=None)
    try:
        viewer.set_time(2)
        viewer.set_view("right medial")
        viewer.select_region("superiortemporal")
        data = page_data(viewer.to_html())
        assert data["initialTime"] == 2 and data["initialView"] == "right medial"
        assert data["regionNames"][data["region"]].startswith("superiortemporal")
        assert data["limits"] == pytest.approx(list(viewer.scales["prediction"].limits))
        page = view(viewer).save(tmp_path / "viewer.html")
        assert page_data(page.read_text()) == data
        frame = view(dataset)._repr_html_()  # inline in a notebook: the page in its own document
        assert frame.startswith('<iframe class="tribev2-view" srcdoc="')
        assert page_data(html.unescape(frame.split('srcdoc="')[1].split('" style=')[0]))["times"] == list(range(4))
        with pytest.raises(ValueError, match=".html"):
            view(dataset).save(tmp_path / "brain.png")
    finally:
        viewer.close()
