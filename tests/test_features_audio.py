"""Audio features against the reference fixtures (../shared/features: tiny Wav2Vec2-BERT, 12.3-s stereo WAV)
and the 60-s chunks of the end-to-end fixture; silence and bad files."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import soundfile
import torch
from safetensors.numpy import load_file
from test_features_base import SEGMENTS, assert_features_match

from tribev2.features import AudioExtractor, extract_features
from tribev2.media import MediaError, read_audio


@pytest.fixture(scope="module")
def fixture(shared_dir):
    root = shared_dir / "features"
    extractor = AudioExtractor(root / "models" / "audio", device="cpu", progress=False)
    wav = str(root / "stimuli" / "stimulus.wav")
    events = pd.DataFrame([{"type": "Audio", "start": 0.0, "duration": 12.3, "offset": 0.0, "filepath": wav}])
    return extractor, events, load_file(str(root / "expected" / "audio.safetensors"))


def test_intermediates_match_the_reference(fixture):
    extractor, events, expected = fixture
    waveform = extractor.waveform(events.filepath[0], 0.0, 12.3)
    assert_features_match(waveform, expected["wav_16k_mono_norm"])
    assert np.std(waveform, ddof=1) == pytest.approx(1.0, abs=1e-6)  # the unbiased std, as the reference
    features = extractor.input_features(waveform)
    assert_features_match(features.numpy(), expected["input_features"])
    states = extractor.hidden_states(features)[0]
    assert_features_match(states.numpy(), expected["hidden_states_model_rate"])
    assert_features_match(extractor.to_rate(states, 25).numpy(), expected["event_all_layers_2hz"])


@pytest.mark.parametrize("segment", SEGMENTS)
def test_windows_match_the_reference(fixture, segment):
    extractor, events, expected = fixture
    start, duration = SEGMENTS[segment]
    out = extract_features(events, extractors=[extractor], start=start, duration=duration)["audio"]
    assert_features_match(out, expected[segment])


@pytest.mark.slow
def test_chunked_soundtrack_matches_the_end_to_end_fixture(shared_dir, tmp_path):
    """The second Audio chunk ([60, 130), read from offset 60 of the ffmpeg-decoded soundtrack) gives the
    features the reference's brain model received: all of window 1 and samples 120.. of window 0."""
    e2e = shared_dir / "e2e"
    pcm, rate = read_audio(e2e / "stimulus" / "stimulus.mp4", sample_rate=44100, channels=2, dtype="int16")
    wav = tmp_path / "stimulus.wav"
    soundfile.write(str(wav), pcm, rate, subtype="PCM_16")
    events = pd.read_parquet(e2e / "events" / "pr29_dedup.parquet")
    chunks = events[events["type"] == "Audio"].assign(filepath=str(wav))
    assert chunks[["start", "duration", "offset"]].values.tolist() == [[0, 60, 0], [60, 70, 60]]
    expected = load_file(str(e2e / "expected" / "pr29_dedup.safetensors"))["features_audio"]
    extractor = AudioExtractor(shared_dir / "features" / "models" / "audio", device="cpu", progress=False)
    second = chunks.iloc[1:]
    assert_features_match(extractor.extract(second, 100.0, 100.0), expected[1])
    window0 = extractor.extract(second, 0.0, 100.0)  # the same chunk, now 120 samples into the window
    assert not window0[..., :120].any()
    assert_features_match(window0[..., 120:], expected[0][..., 120:])


@pytest.fixture(scope="module")
def demo_audio():
    from tribev2.demo import demo_extractors

    return demo_extractors(device="cpu", progress=False)["audio"]


def _write(path, samples, rate=16000):
    soundfile.write(str(path), samples, rate, subtype="PCM_16")
    return str(path)


def test_silence_yields_the_models_response(demo_audio, tmp_path):
    """A silent file (and a constant one, which z-scores to silence) gives finite features: the model's
    response to an all-zero input, as in the reference."""
    silent = _write(tmp_path / "silent.wav", np.zeros(32000, np.int16))
    constant = _write(tmp_path / "constant.wav", np.full(32000, 1200, np.int16))
    assert not demo_audio.waveform(silent, 0.0, 2.0).any()
    quiet = demo_audio.event_features(silent, 0.0, 2.0)
    assert quiet.shape == (2, 24, 4) and np.isfinite(quiet).all() and np.abs(quiet).max() > 0
    np.testing.assert_array_equal(demo_audio.event_features(constant, 0.0, 2.0), quiet)
    zeros = torch.zeros_like(demo_audio.input_features(np.zeros(32000, np.float32)))
    response = demo_audio.to_rate(demo_audio.group_mean(demo_audio.hidden_states(zeros)[0]), 4).numpy()
    np.testing.assert_allclose(quiet, response, atol=1e-5)


def test_batched_events_match_single_events(demo_audio, tmp_path):
    rng = np.random.default_rng(0)
    paths = [_write(tmp_path / f"{i}.wav", (rng.standard_normal(24000) * 3000).astype(np.int16)) for i in range(3)]
    events = [(paths[0], 0.0, 1.5), (paths[1], 0.0, 1.5), (paths[2], 0.5, 1.0)]  # two lengths
    batched = list(demo_audio.compute_events(events))
    for event, value in zip(events, batched):
        np.testing.assert_allclose(value, demo_audio.event_features(*event), atol=1e-5)


def test_bad_audio(demo_audio, tmp_path):
    short = _write(tmp_path / "short.wav", np.ones(3000, np.int16))
    with pytest.raises(ValueError, match="shorter than one 2 Hz feature sample"):
        demo_audio.waveform(short, 0.0, 0.2)
    text = tmp_path / "speech.wav"
    text.write_text("this is not audio")
    with pytest.raises(MediaError, match="cannot be read as audio"):
        demo_audio.waveform(str(text), 0.0, 1.0)
    events = pd.DataFrame(
        [{"type": "Audio", "start": 0.0, "duration": 1.0, "offset": 0.0, "filepath": str(tmp_path / "missing.wav")}]
    )
    with pytest.raises(FileNotFoundError, match="missing.wav"):
        demo_audio.extract(events, 0.0, 10.0)
    with pytest.raises(ValueError, match="'offset'"):
        demo_audio.extract(events.assign(offset=np.nan), 0.0, 10.0)
