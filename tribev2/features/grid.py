"""The 2 Hz grid of a time window, and which events of a table fall in it.

Features are sampled at ``frequency`` (2 Hz in the release) from a window's start; an event's own features
come on its own grid from its start (``place_on_event_grid``), a word's fill the samples it spans
(``place_words``).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence

import numpy as np
import pandas as pd

from ..checks import MAX_STIMULUS_S

COLUMNS_READ = ("type", "start", "duration", "offset", "filepath", "text", "context")  # what extractors read


def n_samples(duration: float, frequency: float) -> int:
    return round(duration * frequency)


def place_words(
    values: np.ndarray, starts: np.ndarray, durations: np.ndarray, *, start: float, duration: float, frequency: float
) -> np.ndarray:
    """Sum per-word features ``(W, G, D)`` into a window's grid ``(G, D, n)``, relative to the window start.

    A word fills ``max(1, round(overlap * f))`` samples from ``round((max(word start, start) - start) * f)``
    (Python's half-to-even rounding), shifted left if it would run past the window's end; words that share
    a sample are summed (the reference's "sum" aggregation).
    """
    n = n_samples(duration, frequency)
    out = np.zeros(values.shape[1:] + (n,), dtype=np.float32)
    end = start + duration
    for value, word_start, word_duration in zip(values, starts, durations):
        first = max(word_start, start)
        count = max(1, round((min(word_start + word_duration, end) - first) * frequency))
        index = min(round((first - start) * frequency), n - count)
        out[..., index : index + count] += value[..., None]
    return out


def place_on_event_grid(
    out: np.ndarray, values: np.ndarray, *, event_start: float, start: float, frequency: float
) -> None:
    """Add an event's features ``(G, D, n_event)`` (on its own grid from ``event_start``) into ``out``.

    As in the reference, the event's grid is not re-sampled: event sample ``j`` lands on window sample
    ``j + round((event_start - start) * f)``; samples outside the window are dropped.
    """
    shift = round((event_start - start) * frequency)
    first, last = max(0, shift), min(out.shape[-1], shift + values.shape[-1])
    if first < last:
        out[..., first:last] += values[..., first - shift : last - shift]


def event_rows(events: pd.DataFrame, event_type: str, columns: Sequence[str]) -> pd.DataFrame:
    """The rows of one type, checked: a clear error for missing columns and negative or non-finite times."""
    if not isinstance(events, pd.DataFrame):
        raise TypeError(
            f"events must be a pandas DataFrame with columns {list(COLUMNS_READ)}, got {type(events).__name__}"
        )
    if "type" not in events.columns:
        raise ValueError(f"events table has no 'type' column (expected columns {list(COLUMNS_READ)})")
    rows = events[events["type"] == event_type]
    if rows.empty:
        return rows
    missing = [c for c in ("start", "duration", *columns) if c not in rows.columns]
    if missing:
        raise ValueError(f"events table: {event_type} rows need the column(s) {missing}")
    for column in ("start", "duration", *(c for c in columns if c == "offset")):
        values = pd.to_numeric(rows[column], errors="coerce").to_numpy(dtype=np.float64)
        bad = ~np.isfinite(values) | (values < 0)
        if bad.any():
            shown = ", ".join(f"{i} ({v!r})" for i, v in zip(rows.index[bad][:5], rows[column][bad][:5]))
            raise ValueError(
                f"events table: {event_type} rows need finite, non-negative '{column}' values; bad at row(s) {shown}"
            )
    return rows


def overlapping(rows: pd.DataFrame, start: float, duration: float) -> pd.DataFrame:
    """Rows that overlap ``[start, start + duration)``; an event ending exactly at ``start`` does not."""
    starts, durations = rows["start"].to_numpy(float), rows["duration"].to_numpy(float)
    stops = starts + durations
    inside = (starts < start + duration) & ((stops > start) | ((durations == 0) & (starts >= start)))
    return rows[inside]


def check_window(start: float, duration: float) -> None:
    # numbers.Real: numpy scalars too (a window start taken from np.arange is an np.int64 or np.float32)
    if not (isinstance(start, numbers.Real) and math.isfinite(start)):
        raise ValueError(f"start must be a finite number of seconds, got {start!r}")
    if not (isinstance(duration, numbers.Real) and math.isfinite(duration) and duration > 0):
        raise ValueError(f"duration must be a positive number of seconds, got {duration!r}")
    if duration > MAX_STIMULUS_S:  # one window of features is allocated whole
        raise ValueError(
            f"duration={duration!r} s is more than the {MAX_STIMULUS_S:,.0f} s (6 h) that one prediction takes "
            f"(seconds, not ms?)"
        )
