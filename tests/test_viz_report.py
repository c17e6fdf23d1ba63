"""The HTML report: frames, words and brains line up per TR; the page opens in headless Chromium and shows
the stimulus frame and the brain."""

from __future__ import annotations

import base64
import io
import json
import re
import subprocess

import numpy as np
import pytest
from test_viz_movie import demo_prediction

from tribev2.data.make_demo_stimulus import write_mp4
from tribev2.events import events_from
from tribev2.events.table import make_table, media_row
from tribev2.viz import save_report

MAGENTA, CYAN = (255, 0, 255), (0, 255, 255)
WORDS = [
    ("hello", 0.5, 0.4),
    ("brain", 1.2, 0.5),
    ("how", 2.1, 0.3),
    ("are", 2.5, 0.2),
    ("you", 2.8, 0.3),
    ("today", 4.2, 0.5),
    ("friend", 6.1, 0.6),
]


def stimulus_frame(t: float) -> np.ndarray:
    """A 160 x 120 picture, magenta until 4 s, cyan after."""
    image = np.empty((120, 160, 3), np.uint8)
    image[:] = MAGENTA if t < 4.0 else CYAN
    return image


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    folder = tmp_path_factory.mktemp("report")
    video = write_mp4(folder / "stimulus.mp4", stimulus_frame, 8.0)
    events = events_from(
        make_table(
            [media_row("Video", video, duration=8.0, frequency=10.0)]
            + [{"type": "Word", "text": w, "start": s, "duration": d} for w, s, d in WORDS]
        )
    )
    ds = demo_prediction(8, tmp_path_factory.getbasetemp() / "tribev2-cache")
    path = save_report(
        ds,
        folder / "report.html",
        events=events,
        views=["lateral", "dorsal"],
        percentile=99,
        size=(160, 120),
        frame_width=240,
    )
    return path, ds, events


def page_data(path):
    text = path.read_text(encoding="utf-8")
    return json.loads(re.search(r'<script id="data" type="application/json">(.*?)</script>', text, re.S).group(1))


def decode(data_url):
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(base64.b64decode(data_url.split(",", 1)[1]))).convert("RGB"))


def near(image, colour, tolerance=40):
    return np.abs(image.astype(int) - colour).sum(axis=-1) < tolerance


def test_frames_words_and_brains_line_up_per_tr(report):
    path, ds, _ = report
    data = page_data(path)
    assert data["times"] == list(range(8)) and data["tr"] == 1.0 and data["offset"] == 5.0
    assert len(data["brain"]) == len(data["frames"]) == 8
    # the frame at the middle of each TR: magenta for TRs 0-3 (until 4 s), cyan after
    for index, url in enumerate(data["frames"]):
        frame = decode(url)
        assert frame.shape == (180, 240, 3)
        assert near(frame, MAGENTA if index < 4 else CYAN).mean() > 0.95
    # words heard during each TR [t, t + 1)
    assert data["trWords"] == ["hello", "brain", "how are you", "you", "today", "", "friend", ""]
    assert [w[0] for w in data["words"]] == [w for w, _, _ in WORDS]
    # one brain picture per TR (tag strip; lateral left | right, a gap, dorsal; colorbar strip), each a
    # different prediction
    brains = [decode(url) for url in data["brain"]]
    assert brains[0].shape == (18 + 120 + 40, 3 * 160 + 10, 3)
    assert np.abs(brains[0].astype(int) - brains[5]).mean() > 1.0
    np.testing.assert_allclose(data["mean"], ds.prediction.isel(subject=0).mean("vertex"), atol=1e-5)


def test_report_opens_in_chromium_and_shows_frame_and_brain(report, require_program, tmp_path):
    from PIL import Image

    chromium = require_program("chromium")
    path, _, _ = report
    brain = decode(page_data(path)["brain"][6])
    for hash_time, colour, absent in (("#t=2", MAGENTA, CYAN), ("#t=6", CYAN, MAGENTA)):
        shot = tmp_path / f"shot{hash_time[3:]}.png"
        subprocess.run(
            [
                chromium,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--no-first-run",
                "--disable-sync",
                f"--user-data-dir={tmp_path / 'profile'}",
                "--window-size=1000,700",
                "--virtual-time-budget=3000",
                f"--screenshot={shot}",
                path.as_uri() + hash_time,
            ],
            check=True,
            timeout=120,
            capture_output=True,
        )
        image = np.asarray(Image.open(shot).convert("RGB"))
        assert image.shape == (700, 1000, 3)
        # the stimulus frame of that TR: a 240 x 180 block of its colour, none of the other one
        rows, columns = np.nonzero(near(image, colour))
        assert len(rows) > 0.9 * 240 * 180 and not near(image, absent).sum() > 100
        assert rows.max() - rows.min() + 1 == pytest.approx(180, abs=3)
        assert columns.max() - columns.min() + 1 == pytest.approx(240, abs=3)
        # the brain picture, right of the frame: find its centre patch near there
        if hash_time == "#t=6":
            patch = brain[40:100, 120:200].astype(int)
            best = min(
                (np.abs(image[y : y + 60, x : x + 80].astype(int) - patch).mean(), y, x)
                for y in range(rows.min() - 20, rows.min() + 80)
                for x in range(columns.max() + 100, columns.max() + 200)
            )
            assert best[0] < 12, f"the brain picture is not on the page (closest patch differs by {best[0]:.1f})"


def test_report_without_events_shows_the_brain_alone(report, tmp_path):
    _, ds, events = report
    path = save_report(ds, tmp_path / "plain.html", size=(120, 90))  # a predict_features Dataset: no events
    data = page_data(path)
    assert data["frames"] == [None] * 8 and data["words"] == [] and len(data["brain"]) == 8
    with pytest.raises(ValueError, match=r"\.html"):
        save_report(ds, tmp_path / "report.pdf")
    moved = events.assign(filepath=events["filepath"].where(events["type"] != "Video", "/nowhere/clip.mp4"))
    with pytest.raises(FileNotFoundError, match="pass video="):
        save_report(ds, tmp_path / "moved.html", events=moved)


def test_timeline_follows_the_subject_shown(report, tmp_path):
    import xarray as xr

    _, ds, _ = report
    one = ds.isel(subject=0, drop=True)
    two = xr.concat([one * 0 + 1.0, one], dim=xr.DataArray(["sub-01", "average"], dims="subject"))
    two = two.assign_attrs(ds.attrs)
    expected = np.round(one.prediction.mean("vertex").values.astype(float), 6)
    # the brains show "average" by default (the model's row for a new person): so does the timeline
    np.testing.assert_allclose(page_data(save_report(two, tmp_path / "a.html", size=(80, 60)))["mean"], expected)
    chosen = page_data(save_report(two, tmp_path / "b.html", subject="sub-01", size=(80, 60)))["mean"]
    np.testing.assert_allclose(chosen, 1.0)
    with pytest.raises(ValueError, match="select them first"):
        save_report(ds, tmp_path / "c.html", time=[0, 1])
