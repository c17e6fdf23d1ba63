"""Cutting long Audio/Video rows into chunks that the audio and video models encode one at a time.

As the reference: cuts every ``max_s`` (60 s) from the row's start, keeping a cut only if the piece after it
is at least ``min_s`` (30 s) long, so inputs of 90 s and more are cut (150 s → 60 + 60 + 30; 130 s → 60 + 70).
Each chunk keeps the file and moves ``start`` and ``offset`` together (file time = start time − start + offset).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .table import MEDIA_TYPES, standardize_events

CHUNK_MAX_S = 60.0
CHUNK_MIN_S = 30.0


def chunk_bounds(
    duration: float, *, max_s: float = CHUNK_MAX_S, min_s: float = CHUNK_MIN_S
) -> list[tuple[float, float]]:
    """``[(offset within the row, length), ...]`` of the chunks of a row lasting ``duration`` seconds."""
    cuts = [float(c) for c in np.arange(max_s, duration, max_s) if duration - c >= min_s]
    edges = [0.0] + cuts + [float(duration)]
    return [(a, b - a) for a, b in zip(edges[:-1], edges[1:])]


def chunk_media(events: pd.DataFrame, *, max_s: float = CHUNK_MAX_S, min_s: float = CHUNK_MIN_S) -> pd.DataFrame:
    """Replace each Audio/Video row by its chunks; other rows are unchanged."""
    rows = []
    for row in events.to_dict("records"):
        if row["type"] not in MEDIA_TYPES:
            rows.append(row)
            continue
        for shift, length in chunk_bounds(row["duration"], max_s=max_s, min_s=min_s):
            rows.append({**row, "start": row["start"] + shift, "offset": row["offset"] + shift, "duration": length})
    return standardize_events(pd.DataFrame(rows, columns=events.columns))
