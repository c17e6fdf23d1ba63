"""The words of a text read aloud, timed by speech recognition: the text's own words, not what was heard.

Recognition of synthetic speech mishears ("quick groundhog stump" for "quick brown fox jumps"). The recognised
words are aligned to the given words (a sequence alignment on normalised spellings, :mod:`difflib`); each given
word takes the time of the recognised word it matches; a run of given words facing a run of other recognised
words shares that run's time span (in proportion to the words' lengths); given words the recognition missed
share the gap between their neighbours. Recognised words with no counterpart are dropped.
"""

from __future__ import annotations

import difflib
import re

import numpy as np
import pandas as pd

POOR_ALIGNMENT = 0.5  # below this share of given words matched exactly, a warning says the timings are rough


def normalised(word: str) -> str:
    return re.sub(r"\W", "", str(word).lower())


def align_to_text(recognised: pd.DataFrame, text: str) -> tuple[pd.DataFrame, float]:
    """``(words table of the text's words, share matched exactly)`` from a words table of recognised words
    (``text``, ``start``, ``duration``, ``sequence_id``, in spoken order) and the text that was read aloud."""
    given = text.split()
    if not given or recognised.empty:
        return recognised.iloc[:0].copy(), 0.0
    starts = recognised["start"].to_numpy(np.float64)
    stops = starts + recognised["duration"].to_numpy(np.float64)
    sequence = recognised["sequence_id"].to_numpy(np.float64)
    timed = np.full((len(given), 2), np.nan)  # (start, stop) per given word
    seq = np.full(len(given), np.nan)
    matcher = difflib.SequenceMatcher(
        None, [normalised(w) for w in recognised["text"]], [normalised(w) for w in given], autojunk=False
    )
    matched = 0
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            timed[j1:j2] = np.stack([starts[i1:i2], stops[i1:i2]], axis=1)
            seq[j1:j2] = sequence[i1:i2]
            matched += j2 - j1
        elif tag == "replace":
            timed[j1:j2] = _share(starts[i1], stops[i2 - 1], given[j1:j2])
            seq[j1:j2] = sequence[i1]
    _fill_gaps(timed, seq, given, end=float(stops.max()))
    words = pd.DataFrame(
        {"text": given, "start": timed[:, 0], "duration": timed[:, 1] - timed[:, 0], "sequence_id": seq}
    )
    return words, matched / len(given)


def _share(start: float, stop: float, words: list[str]) -> np.ndarray:
    """``(n, 2)`` consecutive spans splitting ``[start, stop]`` in proportion to the words' lengths."""
    weights = np.array([len(w) + 1 for w in words], dtype=np.float64)
    edges = start + (max(stop, start) - start) * np.concatenate([[0.0], np.cumsum(weights)]) / weights.sum()
    return np.stack([edges[:-1], edges[1:]], axis=1)


def _fill_gaps(timed: np.ndarray, seq: np.ndarray, given: list[str], *, end: float) -> None:
    """Given words without a time share the gap between the previous word's stop and the next one's start."""
    missing = np.isnan(timed[:, 0])
    index = 0
    while index < len(given):
        if not missing[index]:
            index += 1
            continue
        stop = index
        while stop < len(given) and missing[stop]:
            stop += 1
        before = timed[index - 1, 1] if index > 0 else (timed[stop, 0] if stop < len(given) else 0.0)
        after = timed[stop, 0] if stop < len(given) else max(end, before)
        timed[index:stop] = _share(before, max(after, before), given[index:stop])
        neighbour = seq[index - 1] if index > 0 else (seq[stop] if stop < len(given) else 0.0)
        seq[index:stop] = neighbour
        index = stop
