"""MP4 movies of a prediction: they decode back (PyAV) with one frame per time point, at the chosen rate."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
from geometry import FOR_PLOTS

import tribev2
from tribev2.demo import demo_model, synthetic_features
from tribev2.viz import brain_frames, save_movie


def demo_prediction(duration_s: float, cache_root):
    """A prediction of a small seeded demo model (fsaverage3) from synthetic features; the model is saved under
    ``cache_root`` (module-scoped fixtures run before conftest points each test at the test cache)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TRIBEV2_CACHE", str(cache_root))
        model = demo_model(
            **FOR_PLOTS,
        )
    return tribev2.predict_features(synthetic_features(model, duration_s), model=model, atlas=None)


@pytest.fixture(scope="module")
def prediction(tmp_path_factory):
    return demo_prediction(12, tmp_path_factory.getbasetemp() / "tribev2-cache")


def test_movie_decodes_with_one_frame_per_time_point(prediction, tmp_path):
    import av

    path = save_movie(
        prediction,
        tmp_path / "brain.mp4",
        fps=4,
        views=["lateral", "dorsal"],
        percentile=99,
        threshold=0.2,
        size=(161, 121),
    )
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames = [frame.to_ndarray(format="rgb24") for frame in container.decode(stream)]
        assert stream.average_rate == Fraction(4)
    assert len(frames) == prediction.sizes["time"] == 12
    # a 18-px tag strip, then lateral (left | right, 2 × 161), a 10-px gap and dorsal (161), over the
    # colorbar strip (4.2 × the 9.6-px text); padded to even sizes
    assert frames[0].shape == (18 + 121 + 40 + 1, 2 * 161 + 10 + 161 + 1, 3)
    changing = np.abs(frames[0].astype(int) - frames[6]).mean()
    assert changing > 1.0  # the prediction moves between TRs
    brain = frames[0][18 : 18 + 121]
    assert ((brain < 235).any(axis=-1)).mean() > 0.25  # the cortex fills a good part of the picture


def test_frames_share_one_colour_scale_and_stamp_the_time(prediction):
    frames = list(brain_frames(prediction, time=[0, 5], views="medial", hemi="left", size=(160, 120)))
    assert [t for t, _ in frames] == [0.0, 5.0]
    first, second = frames[0][1], frames[1][1]
    assert first.shape == second.shape == (18 + 120 + 40, 160, 3)
    assert not np.array_equal(first[138:, :60], second[138:, :60])  # "t = 0 s" vs "t = 5 s"
    assert np.array_equal(first[138:, 80:], second[138:, 80:])  # the same colorbar


def test_movie_checks_its_arguments(prediction, tmp_path):
    with pytest.raises(ValueError, match=r"\.mp4"):
        save_movie(prediction, tmp_path / "brain.gif")
    with pytest.raises(ValueError, match="fps"):
        save_movie(prediction, tmp_path / "brain.mp4", fps=0)
    assert not (tmp_path / "brain.mp4").exists()


def test_frames_mark_the_hemispheres_apart(prediction):
    # lateral: left | right; ventral (seen from below, anterior up): right, then left. One letter above the
    # middle of each hemisphere, in a strip over the views: never two letters side by side across views
    _, image = next(brain_frames(prediction, time=0, views=["lateral", "ventral"], size=(160, 120), legend=False))
    assert image.shape == (18 + 120, 2 * 160 + 10 + 160, 3)
    strip = (image[:18] < 160).all(axis=-1)
    columns = np.flatnonzero(strip.any(axis=0))
    letters = np.split(columns, np.flatnonzero(np.diff(columns) > 1) + 1)
    centres = [int(np.mean(letter)) for letter in letters]
    np.testing.assert_allclose(centres, [80, 240, 330 + 40, 330 + 120], atol=3)
    marks = [strip[:, c - 7 : c + 8] for c in centres]
    assert np.array_equal(marks[0], marks[3]) and np.array_equal(marks[1], marks[2])  # L, R; R, L
    assert not np.array_equal(marks[0], marks[1])
    assert min(np.diff(centres)) >= 80  # half a lateral picture apart at the least
    assert not (image[18:, 320:330] < 250).any()  # a white gap between the views
