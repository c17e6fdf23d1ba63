"""Transcript readers: timed words from a file or from speech-recognition output, without running recognition.

Every reader returns a *words table*: a :class:`pandas.DataFrame` with ``text``, ``start``, ``duration`` (seconds,
file time) and ``sequence_id`` (the transcript segment each word came from), in transcript order. The rules
are the reference's whisperX parser's: a word without a ``start`` (whisperX leaves digits and symbols it
cannot align untimed) is dropped here, so it appears nowhere downstream (so is one without an ``end``, or whose
text is empty once quotes are removed, where the reference would fail); ASCII double quotes are deleted from
word texts; ``duration = end − start``; ``sequence_id`` is the 0-based segment index, counting segments whose
words were all dropped.

Formats (:func:`read_transcript` picks by suffix and content):

* whisperX / Whisper JSON: ``{"segments": [{"words": [{"word", "start", "end"}, ...]}, ...]}``
* a JSON word list: ``[{"word" or "text", "start", "end" or "duration"}, ...]`` (or ``{"words": [...]}``)
* TSV / CSV word lists with a header: ``text`` (or ``word``), ``start``, ``duration`` (or ``end``/``stop``),
  optionally ``sequence_id`` (the reference's transcript cache files are such TSVs)
* SRT / WebVTT subtitles: cues have no word timings, so each cue's time is shared among its words in
  proportion to their length (an approximation; prefer a word-level transcript when you have one)
* faster-whisper results (:func:`words_from_segments`): the segments that ``WhisperModel.transcribe`` yields
"""

from __future__ import annotations

import codecs
import html
import io
import json
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..checks import user_path

WORD_COLUMNS = ("text", "start", "duration", "sequence_id")
TRANSCRIPT_SUFFIXES = (".json", ".tsv", ".csv", ".srt", ".vtt")


_BYTE_ORDER_MARKS = (  # UTF-32's marks begin with UTF-16's, so they are tried first
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)


def read_text_file(path: str | Path, what: str = "text file") -> str:
    """The text of ``path``: UTF-8, or UTF-8/16/32 with a byte-order mark (as some Windows editors save it);
    else a ``ValueError`` naming ``what``, the file and the first byte that does not decode (another encoding,
    such as Latin-1, or not a text file at all)."""
    path = Path(path)
    data = path.read_bytes()
    encoding = next((name for mark, name in _BYTE_ORDER_MARKS if data.startswith(mark)), "utf-8")
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError as err:
        raise ValueError(
            f"{what} {path}: not {encoding.removesuffix('-sig').upper()} text (byte 0x{err.object[err.start]:02x} "
            f"at offset {err.start}: another encoding, or not a text file); save it as UTF-8"
        ) from None
    if "\x00" in text:
        raise ValueError(f"{what} {path}: holds NUL characters, so it is not a text file")
    return text


def read_transcript(path: str | Path) -> pd.DataFrame:
    """Read a transcript file (see the module docs for the formats) into a words table."""
    path = user_path(path)
    if not path.is_file():
        raise FileNotFoundError(f"transcript {path}: no such file")
    suffix = path.suffix.lower()
    if suffix not in TRANSCRIPT_SUFFIXES:
        raise ValueError(
            f"transcript {path}: unsupported format {suffix!r}; expected one of {', '.join(TRANSCRIPT_SUFFIXES)}"
        )
    text = read_text_file(path, "transcript")
    try:
        if suffix == ".json":
            return _words_from_json(json.loads(text), path)
        if suffix in (".tsv", ".csv"):
            # every cell as written: a word such as "007", "1999" or "NaN" stays that text (numbers are parsed
            # per cell below), and an empty text cell is an empty word, dropped
            return words_from_table(
                pd.read_csv(io.StringIO(text), sep="\t" if suffix == ".tsv" else ",", dtype=str, keep_default_na=False),
                source=f"transcript {path}",
            )
        return _words_from_cues(_read_cues(text), path)
    except (json.JSONDecodeError, pd.errors.ParserError) as err:
        raise ValueError(f"transcript {path}: cannot be parsed as {suffix[1:].upper()} ({err})") from None


def words_from_whisperx(segments: Iterable[Mapping[str, Any]], *, source: str = "transcript") -> pd.DataFrame:
    """Words of whisperX-style segments (``segments[i]["words"][j]`` with ``word``, ``start``, ``end``)."""
    rows = []
    for index, segment in enumerate(segments):
        if not isinstance(segment, Mapping):
            raise ValueError(f"{source}: segment {index} is not a JSON object")
        for word in segment.get("words") or []:
            rows.append(_word_row(word.get("word", word.get("text")), word.get("start"), word.get("end"), index))
    return _words_table(rows)


def words_from_segments(segments: Iterable[Any]) -> pd.DataFrame:
    """Words of faster-whisper segments (objects with ``.words``, each with ``.word``, ``.start``, ``.end``),
    e.g. the first value ``WhisperModel.transcribe(..., word_timestamps=True)`` returns."""
    rows = []
    for index, segment in enumerate(segments):
        for word in getattr(segment, "words", None) or []:
            rows.append(_word_row(word.word, word.start, word.end, index))
    return _words_table(rows)


def words_from_table(table: pd.DataFrame, *, source: str = "transcript") -> pd.DataFrame:
    """A words table from a DataFrame with ``text``/``word``, ``start`` and ``duration``/``end``/``stop``."""
    columns = {c.lower(): c for c in table.columns}
    text = columns.get("text", columns.get("word"))
    end = columns.get("end", columns.get("stop"))
    if text is None or "start" not in columns or ("duration" not in columns and end is None):
        raise ValueError(
            f"{source}: a word list needs the columns text (or word), start and duration (or end); "
            f"found {list(table.columns)}"
        )
    if "duration" in columns:
        duration = table[columns["duration"]]
    else:
        duration = pd.to_numeric(table[end], errors="coerce") - pd.to_numeric(table[columns["start"]], errors="coerce")
    sequence = table[columns["sequence_id"]] if "sequence_id" in columns else np.zeros(len(table))
    rows = []
    for word, start, dur, seq in zip(table[text], table[columns["start"]], duration, sequence):
        start = _number(start)
        dur = _number(dur)
        rows.append(_word_row(word, start, None if start is None or dur is None else start + dur, seq, duration=dur))
    return _words_table(rows)


# -- formats -----------------------------------------------------------------------------------------------
def _words_from_json(data: Any, path: Path) -> pd.DataFrame:
    if isinstance(data, Mapping) and "segments" in data:
        return words_from_whisperx(data["segments"], source=f"transcript {path}")
    if isinstance(data, Mapping) and "words" in data:
        data = data["words"]
    if isinstance(data, list) and all(isinstance(x, Mapping) for x in data):
        return words_from_table(pd.DataFrame(data), source=f"transcript {path}")
    raise ValueError(
        f"transcript {path}: expected whisperX JSON ({{'segments': [{{'words': [...]}}]}}) or a "
        f"list of {{'word', 'start', 'end'}} objects"
    )


_CUE_TIME = re.compile(r"(?:(\d+):)?(\d{1,2}):(\d{2})[.,](\d{1,3})")


def _read_cues(text: str) -> list[tuple[float, float, str]]:
    """SRT or WebVTT -> [(start, end, text)]."""
    cues = []
    for block in re.split(r"\n\s*\n", text.replace("\r\n", "\n").strip()):
        lines = block.strip().split("\n")
        timing = next((i for i, line in enumerate(lines) if "-->" in line), None)
        if timing is None:
            continue  # the WEBVTT header, NOTE and STYLE blocks, or stray text
        left, right = lines[timing].split("-->", 1)
        start, end = _cue_seconds(left), _cue_seconds(right)
        if start is None or end is None:
            continue
        body = " ".join(html.unescape(re.sub(r"<[^>]+>", "", line)).strip() for line in lines[timing + 1 :])
        cues.append((start, end, body))
    return cues


def _cue_seconds(text: str) -> float | None:
    match = _CUE_TIME.search(text)
    if match is None:
        return None
    hours, minutes, seconds, fraction = match.groups()
    return int(hours or 0) * 3600 + int(minutes) * 60 + int(seconds) + int(fraction.ljust(3, "0")) / 1000


def _words_from_cues(cues: list[tuple[float, float, str]], path: Path) -> pd.DataFrame:
    if not cues:
        raise ValueError(f"transcript {path}: no subtitle cues found (expected SRT/WebVTT 'start --> end' lines)")
    rows = []
    for index, (start, end, body) in enumerate(cues):
        words = body.split()
        weights = np.array([len(w) + 1 for w in words], dtype=float)
        edges = start + (end - start) * np.concatenate([[0.0], np.cumsum(weights)]) / max(weights.sum(), 1.0)
        rows += [_word_row(w, a, b, index) for w, a, b in zip(words, edges[:-1], edges[1:])]
    return _words_table(rows)


# -- rows --------------------------------------------------------------------------------------------------
def _number(value: Any) -> float | None:
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return value if np.isfinite(value) else None


def _word_row(word: Any, start: Any, end: Any, sequence_id: Any, *, duration: float | None = None) -> dict | None:
    """One word, or None when it has no timing or no text (dropped, as the reference's parser does)."""
    start, end = _number(start), _number(end)
    if start is None or end is None or word is None or (not isinstance(word, str) and pd.isna(word)):
        return None
    text = str(word).replace('"', "").strip()
    if not text:
        return None
    return {
        "text": text,
        "start": start,
        "duration": end - start if duration is None else duration,
        "sequence_id": _number(sequence_id),
    }


def _words_table(rows: list[dict | None]) -> pd.DataFrame:
    table = pd.DataFrame([r for r in rows if r is not None], columns=list(WORD_COLUMNS))
    return table.astype({"start": np.float64, "duration": np.float64, "sequence_id": np.float64})
