"""The events table: one row per thing that happens in the stimulus, in the reference's columns and order.

An events table is a :class:`pandas.DataFrame` with these columns (the reference's, in its order):

============== =========================================================================================
column         meaning
============== =========================================================================================
type           ``Video``, ``Audio`` (media, possibly cut in chunks), ``Text`` (the whole transcript),
               ``Sentence``, ``Word``
start          seconds from the stimulus onset (timeline time)
duration       seconds
timeline       name of the timeline the row belongs to (``"default"``)
subject        ``"default"`` (kept for compatibility with the reference's study tables)
session, task, run  empty strings (same)
filepath       media file of a Video/Audio row; empty for the others
frequency      frame rate (Video, frames/s) or sample rate (Audio, Hz)
offset         where in the file a Video/Audio row starts, seconds: file time = start time − start + offset
stop           start + duration
text           the word (Word, as transcribed), the punctuated text (Text), the sentence (Sentence)
sequence_id    transcript segment of a Word (0-based); 0 for the Text row
sentence       the sentence a Word belongs to, as it appears in the Text row (with its trailing space)
language       transcript language (``"english"``) for Word and Text rows
sentence_char  offset of the Word in ``sentence``
text_char      offset of the Word in the Text row's text
context        what the text model reads for this Word: the Text from up to 1,024 words back through
               this word (see :mod:`tribev2.events.language`)
modality       always empty (a column of the reference's tables, unused at inference)
============== =========================================================================================

Missing values follow the reference exactly (``NaN`` in some cells, ``""`` in others) so that tables compare
equal to it cell by cell.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np
import pandas as pd

EVENT_COLUMNS = (
    "type",
    "start",
    "duration",
    "timeline",
    "subject",
    "session",
    "task",
    "run",
    "filepath",
    "frequency",
    "offset",
    "stop",
    "text",
    "sequence_id",
    "sentence",
    "language",
    "sentence_char",
    "text_char",
    "context",
    "modality",
)
EVENT_TYPES = ("Video", "Audio", "Text", "Sentence", "Word")
MEDIA_TYPES = ("Video", "Audio")
DEFAULT_TIMELINE = "default"
NUMERIC_COLUMNS = (
    "start",
    "duration",
    "frequency",
    "offset",
    "stop",
    "sequence_id",
    "sentence_char",
    "text_char",
    "modality",
)
_BOOKKEEPING = {"timeline": DEFAULT_TIMELINE, "subject": "default", "session": "", "task": "", "run": ""}


def media_row(
    kind: str,
    filepath: str,
    *,
    duration: float,
    frequency: float,
    start: float = 0.0,
    offset: float = 0.0,
    timeline: str = DEFAULT_TIMELINE,
) -> dict:
    """A Video or Audio row covering ``duration`` seconds of ``filepath`` from ``offset``."""
    return {
        **_BOOKKEEPING,
        "type": kind,
        "start": float(start),
        "duration": float(duration),
        "timeline": timeline,
        "filepath": str(filepath),
        "frequency": float(frequency),
        "offset": float(offset),
        "sentence": "",
        "context": "",
    }


def make_table(rows: Iterable[Mapping]) -> pd.DataFrame:
    """Rows (dicts with any subset of the columns) -> a standardized events table."""
    return standardize_events(pd.DataFrame(list(rows), columns=list(EVENT_COLUMNS)))


def standardize_events(events: pd.DataFrame) -> pd.DataFrame:
    """Every column present, ``stop`` recomputed, rows sorted by timeline, start (ascending) and duration
    (descending), stably, as the reference orders them."""
    table = events.reindex(columns=list(EVENT_COLUMNS) + [c for c in events.columns if c not in EVENT_COLUMNS])
    for column in NUMERIC_COLUMNS:
        table[column] = pd.to_numeric(table[column], errors="raise").astype(np.float64)
    for column, value in _BOOKKEEPING.items():
        if table[column].isna().any():
            table[column] = table[column].astype(object).fillna(value)
    table["stop"] = table["start"] + table["duration"]
    order = np.lexsort(
        (-table["duration"].to_numpy(), table["start"].to_numpy(), table["timeline"].astype(str).to_numpy())
    )
    return table.iloc[order].reset_index(drop=True)


def check_events(events: pd.DataFrame, *, source: str = "events") -> pd.DataFrame:
    """Validate a user-given events table (from a file or a DataFrame) and standardize it."""
    if not isinstance(events, pd.DataFrame):
        raise TypeError(f"{source}: expected a pandas.DataFrame events table, got {type(events).__name__}")
    missing = [c for c in ("type", "start", "duration") if c not in events.columns]
    if missing:
        raise ValueError(
            f"{source}: an events table needs the columns type, start, duration; missing {', '.join(missing)}"
        )
    untyped = int(events["type"].isna().sum())
    if untyped:
        raise ValueError(f"{source}: {untyped} row(s) have no type; expected one of {list(EVENT_TYPES)}")
    unknown = sorted(set(events["type"].astype(str)) - set(EVENT_TYPES))
    if unknown:
        raise ValueError(f"{source}: unknown event type(s) {unknown}; expected some of {list(EVENT_TYPES)}")
    try:
        table = standardize_events(events)
    except (ValueError, TypeError) as err:
        raise ValueError(f"{source}: start/duration/offset/frequency must be numbers ({err})") from None
    media = table[table["type"].isin(MEDIA_TYPES)]
    media_end = float(media["stop"].max()) if len(media) and np.isfinite(media["stop"]).all() else None
    check_timeline(events.reset_index(drop=True), source=source, media_duration=media_end)  # the user's row order
    if media["filepath"].isna().any() or (media["filepath"].astype(str) == "").any():
        raise ValueError(f"{source}: Video/Audio rows need a filepath")
    words = table[table["type"] == "Word"]
    if words["text"].isna().any():
        raise ValueError(f"{source}: Word rows need a text")
    return table


TIME_TOLERANCE_S = 1.0  # how far past the media's end a word or cue may run (rounding, trailing silence)
EARLY_START_S = 1e-3  # the reference's Text row starts a microsecond before its first word: tables we make pass


def check_timeline(
    table: pd.DataFrame, *, source: str, media_duration: float | None = None, what: str = "row"
) -> pd.DataFrame:
    """``table`` (a words table or an events table: ``start`` and ``duration`` in seconds) if every row starts
    at or after 0, ends at or after its start and, with ``media_duration``, ends at most
    :data:`TIME_TOLERANCE_S` after the media (which also catches times in milliseconds); else a ``ValueError``
    naming ``source`` and the first bad row. Overlapping rows are legal (people talk over each other)."""
    if table.empty:
        return table
    start = pd.to_numeric(table["start"], errors="coerce").to_numpy(np.float64)
    duration = pd.to_numeric(table["duration"], errors="coerce").to_numpy(np.float64)
    checks = [
        (~np.isfinite(start) | ~np.isfinite(duration), "has no finite start and duration"),
        (start < -EARLY_START_S, "starts before 0 s"),
        (duration < 0, "ends before it starts"),
    ]
    if media_duration is not None:
        checks.append(
            (
                start + duration > media_duration + TIME_TOLERANCE_S,
                f"ends after the media's end ({media_duration:.3f} s) by more than {TIME_TOLERANCE_S:g} s "
                f"(are the times in seconds?)",
            )
        )
    for bad, problem in checks:
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            text = table["text"].iloc[row] if "text" in table.columns else None
            label = f" ({text!r})" if isinstance(text, str) and text else ""
            raise ValueError(
                f"{source}: {what} {row}{label} {problem}: start {start[row]:g} s, duration "
                f"{duration[row]:g} s ({int(bad.sum())} such {what}(s))"
            )
    return table


def timeline_stop(events: pd.DataFrame) -> float:
    """End of the stimulus: the latest stop of any event (the reference's timeline span ends there)."""
    if events.empty:
        raise ValueError("the events table is empty: nothing to predict")
    return float((events["start"] + events["duration"]).max())
