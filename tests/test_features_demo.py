"""tribev2.demo.demo_extractors: tiny models saved once, loaded with from_pretrained, run on the demo clip."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile

from tribev2.demo import demo_extractors, demo_model
from tribev2.features import check_compatible, extract_features, feature_dims
from tribev2.media import probe, read_audio

DEMO_CLIP = Path(__file__).resolve().parents[1] / "data" / "demo_stimulus.mp4"
ONE_WORD = [{"type": "Word", "start": 1.0, "duration": 0.4, "text": "hi", "context": "hi"}]


def _weights_digest(folder: Path) -> str:
    return hashlib.sha256(
        b"".join((folder / m / "model.safetensors").read_bytes() for m in ("text", "audio", "video"))
    ).hexdigest()


def _clip_events(tmp_path, words: list[dict]) -> pd.DataFrame:
    """The demo clip's Video and Audio events (its soundtrack as a WAV under ``tmp_path``), then ``words``."""
    info = probe(DEMO_CLIP)
    pcm, rate = read_audio(DEMO_CLIP, dtype="int16")
    wav = tmp_path / "demo.wav"
    soundfile.write(str(wav), pcm, rate, subtype="PCM_16")
    media = [
        {"type": "Video", "start": 0.0, "duration": info.duration, "offset": 0.0, "filepath": str(DEMO_CLIP)},
        {"type": "Audio", "start": 0.0, "duration": info.duration, "offset": 0.0, "filepath": str(wav)},
    ]
    return pd.DataFrame(media + words)


def test_saved_once_and_seeded():
    extractors = demo_extractors(device="cpu")
    assert feature_dims(extractors) == {"text": (2, 32), "audio": (2, 24), "video": (2, 16)}
    folder = Path(extractors["text"].source).parent
    assert {p.name for p in (folder / "text").iterdir()} >= {"config.json", "model.safetensors", "tokenizer.json"}
    assert Path(demo_extractors()["video"].source).parent == folder  # reused, not rebuilt
    digest = _weights_digest(folder)
    shutil.rmtree(folder)
    assert Path(demo_extractors()["audio"].source).parent == folder and _weights_digest(folder) == digest
    tokenizer = extractors["text"].tokenizer
    ids = tokenizer("The keeper's lamp", add_special_tokens=False)["input_ids"]
    assert tokenizer.decode(ids) == "The keeper's lamp" and tokenizer.bos_token_id not in ids


def test_demo_path_on_the_demo_clip(tmp_path):
    """Video, its soundtrack and a few words through the three demo extractors and a fitting brain model."""
    info = probe(DEMO_CLIP)
    texts = ["The", "brain", "hears", "these", "words"]
    words = [
        {"type": "Word", "start": 1.0 + 0.6 * i, "duration": 0.4, "text": t, "context": " ".join(texts[: i + 1])}
        for i, t in enumerate(texts)
    ]
    extractors = demo_extractors(device="cpu", progress=False)
    features = extract_features(_clip_events(tmp_path, words), extractors=extractors, start=0.0, duration=100.0)
    assert {m: v.shape for m, v in features.items()} == {
        "text": (2, 32, 200),
        "audio": (2, 24, 200),
        "video": (2, 16, 200),
    }
    n = round(info.duration * 2)
    for name in ("audio", "video"):  # the media cover the clip, nothing after it
        assert np.abs(features[name][..., :n]).min(axis=(0, 1)).max() > 0 and not features[name][..., n:].any()
    # words at 1.0, 1.6, 2.2, 2.8, 3.4 s (0.4 s each) fill samples round(2 * start), one each
    assert np.flatnonzero(np.abs(features["text"]).sum((0, 1))).tolist() == [2, 3, 4, 6, 7]
    model = demo_model(
        feature_dims=feature_dims(extractors),
        n_outputs=1284,
        hidden=96,
        depth=1,
        heads=2,
        low_rank_head=16,
        device="cpu",
    )
    check_compatible(extractors, model)


def test_extractors_on_threads_give_the_same_features(tmp_path):
    """``concurrent=True`` (the default when an extractor runs on a GPU): each extractor on a thread of its own,
    in a copy of the caller's context (inside ``progress_bars(False)`` every bar stays hidden), the features the
    same as one after the other; an extractor's error is raised once the others are done."""
    import threading

    from tribev2.progress import progress_bars, quiet

    events = _clip_events(tmp_path, ONE_WORD)
    extractors = demo_extractors(device="cpu", cache=False, progress=False)
    one_by_one = extract_features(events, extractors=extractors, start=0.0, duration=20.0)
    seen: dict = {}
    for name, extractor in extractors.items():

        def extract(*args, name=name, run=extractor.extract):
            seen[name] = (threading.current_thread().name, quiet())
            return run(*args)

        extractor.extract = extract
    with progress_bars(False):
        together = extract_features(events, extractors=extractors, start=0.0, duration=20.0, concurrent=True)
    assert list(together) == list(one_by_one)
    for name in one_by_one:
        np.testing.assert_array_equal(together[name], one_by_one[name])
    assert all(thread.startswith("tribev2-extract") and hidden for thread, hidden in seen.values()), seen

    finished = []

    def fails(*args):
        raise ValueError("text went wrong")

    extractors["text"].extract = fails
    extractors["video"].extract = lambda *args, run=extractors["video"].extract: finished.append(run(*args))
    with pytest.raises(ValueError, match="text went wrong"):
        extract_features(events, extractors=extractors, start=0.0, duration=20.0, concurrent=True)
    assert len(finished) == 1  # the video's work was not abandoned


def test_models_load_one_at_a_time_on_threads(tmp_path):
    """Extractors on threads of their own load their models one at a time (loading sets process-wide state: torch's
    default dtype while transformers builds a model, the progress switches)."""
    import threading
    import time

    events = _clip_events(tmp_path, ONE_WORD)
    extractors = demo_extractors(device="cpu", cache=False, progress=False)
    spans, lock = [], threading.Lock()
    for extractor in extractors.values():

        def load(run=extractor._load_model):
            start = time.perf_counter()
            time.sleep(0.2)  # long enough for the others to start theirs, were they allowed to
            model = run()
            with lock:
                spans.append((start, time.perf_counter()))
            return model

        extractor._load_model = load
    extract_features(events, extractors=extractors, start=0.0, duration=20.0, concurrent=True)
    spans.sort()
    assert len(spans) == 3 and all(end <= later for (_, end), (later, _) in zip(spans, spans[1:])), spans
