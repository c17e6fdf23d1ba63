"""Events tables equal the reference's, cell by cell, for every case of ../shared/events/ and for ../shared/e2e/.

Each case's whisperX JSON goes through our transcript reader next to a silent WAV of the case's length (only
the length matters to the reference). The long case is compared with ``pr29_dedup`` (the corrected table),
never with the buggy ``reference`` one; the sentence splits come from whichever English spaCy pipeline is
installed (the fixture's README: sm and md give identical tables for these cases).
"""

from __future__ import annotations

import hashlib
import json
import math

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from tribev2.events import EVENT_COLUMNS, events_from, read_transcript
from tribev2.events.language import MAX_CONTEXT_WORDS

CASES = ("case1_short", "case2_missing_start", "case3_long_chunked", "case4_context_cap")


def assert_same_table(got: pd.DataFrame, expected: pd.DataFrame) -> None:
    """Same columns, rows and cells (NaN where the reference has NaN, '' where it has ''); file paths are
    compared by name since ours live in the cache."""
    assert list(got.columns) == list(expected.columns) == list(EVENT_COLUMNS)
    assert len(got) == len(expected)
    for column in expected.columns:
        for i, (mine, theirs) in enumerate(zip(got[column], expected[column])):
            if isinstance(theirs, float) and math.isnan(theirs):
                same = isinstance(mine, float) and math.isnan(mine)
            elif column == "filepath":
                same = isinstance(mine, str) and mine.rsplit("/", 1)[-1] == theirs
            else:
                same = mine == theirs
            assert same, f"row {i} ({expected['type'][i]}), column {column!r}: {mine!r} != {theirs!r}"


@pytest.fixture(scope="module")
def manifest(shared_dir):
    return json.loads((shared_dir / "events" / "manifest.json").read_text())


@pytest.mark.parametrize("case", CASES)
def test_events_match_reference(case, shared_dir, manifest, tmp_path):
    folder = shared_dir / "events" / case
    seconds = manifest["cases"][case]["audio_seconds"]
    wav = tmp_path / f"{case}.wav"
    sf.write(wav, np.zeros(int(seconds * 16000), dtype=np.int16), 16000)
    events = events_from(wav, transcript=folder / "whisperx.json")
    target = folder / "pr29_dedup" if case == "case3_long_chunked" else folder
    assert_same_table(events, pd.read_parquet(target / "events.parquet"))


def test_long_case_has_every_word_once_at_its_true_time(shared_dir, tmp_path):
    folder = shared_dir / "events" / "case3_long_chunked"
    wav = tmp_path / "long.wav"
    sf.write(wav, np.zeros(150 * 16000, dtype=np.int16), 16000)
    events = events_from(wav, transcript=folder / "whisperx.json")
    audio = events[events["type"] == "Audio"]
    assert audio[["start", "duration", "offset"]].to_numpy().tolist() == [[0, 60, 0], [60, 60, 60], [120, 30, 120]]
    words = events[events["type"] == "Word"].reset_index(drop=True)
    parsed = read_transcript(folder / "whisperx.json")
    np.testing.assert_array_equal(words["start"], parsed["start"])  # file times, once, in order
    assert words["text"].tolist() == parsed["text"].tolist()
    assert words["stop"].max() <= 150


def test_context_cap_is_1024_previous_words_plus_the_word(shared_dir, tmp_path):
    folder = shared_dir / "events" / "case4_context_cap"
    wav = tmp_path / "cap.wav"
    sf.write(wav, np.zeros(85 * 16000, dtype=np.int16), 16000)
    words = events_from(wav, transcript=folder / "whisperx.json").query("type == 'Word'")
    lengths = words["context"].str.split().str.len().to_numpy()
    assert lengths.max() == MAX_CONTEXT_WORDS + 1
    assert np.argmax(lengths == MAX_CONTEXT_WORDS + 1) == MAX_CONTEXT_WORDS  # first reached at word 1,025


def test_untimed_tokens_are_dropped_everywhere(shared_dir, tmp_path):
    folder = shared_dir / "events" / "case2_missing_start"
    wav = tmp_path / "gaps.wav"
    sf.write(wav, np.zeros(15 * 16000, dtype=np.int16), 16000)
    events = events_from(wav, transcript=folder / "whisperx.json")
    text = events.loc[events["type"] == "Text", "text"].item()
    for token in ("1999", "$5", "30%"):
        assert token not in text
        assert not events["context"].fillna("").str.contains(token, regex=False).any()


def test_video_events_match_reference(shared_dir):
    """The e2e stimulus (130-s MP4): Video and Audio chunks [0, 60] [60, 70], the soundtrack identical to the
    WAV the reference wrote (44.1 kHz stereo 16-bit), and the corrected words."""
    folder = shared_dir / "e2e"
    events = events_from(folder / "stimulus" / "stimulus.mp4", transcript=folder / "stimulus" / "whisperx.json")
    assert_same_table(events, pd.read_parquet(folder / "events" / "pr29_dedup.parquet"))
    meta = json.loads((folder / "expected" / "meta.json").read_text())
    wav = events.loc[events["type"] == "Audio", "filepath"].iloc[0]
    samples, rate = sf.read(wav, dtype="int16")
    assert rate == meta["extracted_wav"]["sample_rate"] and list(samples.shape) == meta["extracted_wav"]["shape"]
    assert hashlib.sha256(samples.tobytes()).hexdigest() == meta["extracted_wav"]["pcm16_interleaved_sha256"]
