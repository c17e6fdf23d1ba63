"""Aligning recognised words to the text that was read aloud (tribev2.events.alignment)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tribev2.events.alignment import align_to_text


def recognised(*rows):
    return pd.DataFrame([(w, s, d, 0.0) for w, s, d in rows], columns=["text", "start", "duration", "sequence_id"])


def test_matches_take_the_recognised_times_and_mishearings_share_their_span():
    heard = recognised(
        ("the", 0.0, 0.2), ("quick", 0.3, 0.3), ("groundhog", 0.7, 0.5), ("stump", 1.3, 0.4), ("over", 1.8, 0.2)
    )
    words, matched = align_to_text(heard, "The quick brown fox jumps over")
    assert words["text"].tolist() == ["The", "quick", "brown", "fox", "jumps", "over"]
    assert words["start"].iloc[:2].tolist() == [0.0, 0.3] and words["start"].iloc[5] == 1.8
    inner = words.iloc[2:5]  # brown fox jumps share the span of "groundhog stump": 0.7 to 1.7 s
    assert inner["start"].iloc[0] == pytest.approx(0.7) and (inner["start"] + inner["duration"]).iloc[
        -1
    ] == pytest.approx(1.7)
    assert np.all(np.diff(inner["start"]) > 0)
    assert matched == pytest.approx(3 / 6)


def test_missed_words_are_interpolated_and_extra_words_dropped():
    heard = recognised(("one", 0.0, 0.3), ("um", 0.35, 0.1), ("four", 1.5, 0.3))
    words, matched = align_to_text(heard, "one two three four")
    assert words["text"].tolist() == ["one", "two", "three", "four"]
    assert words["start"].tolist()[0] == 0.0 and words["start"].tolist()[3] == 1.5
    assert 0.3 <= words["start"].iloc[1] < words["start"].iloc[2] < 1.5  # inside the gap, in order
    assert (words["duration"] >= 0).all() and matched == 0.5


def test_punctuation_and_case_do_not_break_matches():
    heard = recognised(("Hello,", 0.0, 0.4), ("world.", 0.5, 0.4))
    words, matched = align_to_text(heard, "hello World!")
    assert words["text"].tolist() == ["hello", "World!"] and matched == 1.0
    assert words["start"].tolist() == [0.0, 0.5]


def test_nothing_recognised_gives_no_words():
    words, matched = align_to_text(recognised(), "some text")
    assert words.empty and matched == 0.0
