"""The table of hostile and awkward inputs (issue 15): one row per input, each either a clear error (its type,
and a message naming the file or argument) or a correct result (asserted). Environment faults made for real
(full and read-only file systems in a private mount namespace) are in ``test_environment_faults.py``; the
property tests in ``test_properties.py``. RELIABILITY.md summarises the table."""

from __future__ import annotations

import dataclasses
import errno
import json
import re
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch
import xarray as xr
from geometry import SMALL

import tribev2
from tribev2 import cli
from tribev2.checks import MAX_STIMULUS_S, WriteError, real_number
from tribev2.dataset import CorruptDatasetError
from tribev2.demo import demo_model, synthetic_features
from tribev2.events import ModelUnavailableError, events_from
from tribev2.media import MediaError
from tribev2.model import TribeModel
from tribev2.model.pretrained import CheckpointError

VIDEO = str(resources.files("tribev2.data").joinpath("demo_stimulus.mp4"))
MEDIA_S = 5.0  # the test WAV's length
NOWHERE_MODEL = "/nonexistent/tribev2-weights"  # were it loaded first, the error would be about it


@dataclasses.dataclass
class Ctx:
    tmp: Path
    wav: Path
    model: TribeModel
    model_folder: Path

    def file(self, name: str, content: str | bytes) -> Path:
        path = self.tmp / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
        return path


@dataclasses.dataclass
class Case:
    id: str
    run: Callable[[Ctx], Any]
    error: type[BaseException] | tuple | None = None
    match: str = ""  # for errors: a regex of the message that names the file or argument
    check: Callable[[Any, Ctx], Any] | None = None  # for results: returns truthy when the result is right


CASES: list[Case] = []


def case(id: str, run, error=None, match: str = "", check=None) -> None:
    assert (error is None) == (not match), f"{id}: an error row names what is wrong; a result row has no match"
    assert error is not None or check is not None, f"{id}: a result row asserts its result"
    CASES.append(Case(id, run, error, match, check))


@pytest.fixture(scope="module")
def module_ctx(tmp_path_factory):
    import soundfile

    root = tmp_path_factory.mktemp("hostile")
    wav = root / "speech.wav"
    soundfile.write(wav, (0.1 * np.sin(np.arange(int(16000 * MEDIA_S)) / 7)).astype(np.float32), 16000)
    model = demo_model(**SMALL, device="cpu", cache_dir=root / "cache")
    folder = model.save_pretrained(root / "small-model")
    return wav, model, folder


@pytest.fixture
def ctx(module_ctx, tmp_path):
    return Ctx(tmp_path, *module_ctx)


# -- helpers -------------------------------------------------------------------------------------------------
def words(*rows) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["text", "start", "duration"])


def json_words(rows) -> str:
    return json.dumps([{"word": w, "start": s, "end": e} for w, s, e in rows])


def whisperx(rows) -> str:
    return json.dumps({"segments": [{"words": [{"word": w, "start": s, "end": e} for w, s, e in rows]}]})


def srt(cues) -> str:
    def stamp(t):
        h, rest = divmod(t, 3600)
        m, s = divmod(rest, 60)
        return f"{int(h):02d}:{int(m):02d}:{s:06.3f}".replace(".", ",")

    return "\n\n".join(f"{i + 1}\n{stamp(a)} --> {stamp(b)}\n{text}" for i, (a, b, text) in enumerate(cues))


def vtt(cues) -> str:
    return "WEBVTT\n\n" + srt(cues).replace(",", ".")


def with_wav(transcript_name: str, content: str | bytes):
    """events_from(the 5-s WAV, transcript=<file written from content>)."""
    return lambda c: events_from(c.wav, transcript=c.file(transcript_name, content), cache_dir=c.tmp / "cache")


def table_with_wav(table: pd.DataFrame):
    return lambda c: events_from(c.wav, transcript=table, cache_dir=c.tmp / "cache")


def word_rows(events: pd.DataFrame) -> pd.DataFrame:
    return events[events["type"] == "Word"]


def words_inside(n: int | None = None):
    """A result check: the Word rows lie inside the media (plus 1 s) and there are ``n`` of them."""

    def check(events, c):
        w = word_rows(events)
        inside = (w["start"] >= 0).all() and (w["stop"] <= MEDIA_S + 1.0).all()
        return inside and (n is None or len(w) == n)

    return check


def events_table(*rows, media: bool = True) -> pd.DataFrame:
    base = [{"type": "Audio", "start": 0.0, "duration": MEDIA_S, "filepath": "speech.wav"}] if media else []
    return pd.DataFrame(base + [dict(zip(("type", "start", "duration", "text"), r)) for r in rows])


# -- transcripts against the media (5 s) ---------------------------------------------------------------------
MS = [("hello", 500, 900), ("world", 1000, 1400)]  # milliseconds: an 11-s clip would become hours
OK = [("hello", 0.5, 0.9), ("world", 1.0, 1.4)]
for kind, write in (("json", json_words), ("whisperx.json", whisperx)):
    case(
        f"transcript-{kind}-in-ms",
        with_wav(f"ms.{kind}", write(MS)),
        ValueError,
        rf"ms\.{re.escape(kind)}.*ends after the media's end.*seconds",
    )
    case(f"transcript-{kind}-ok", with_wav(f"ok.{kind}", write(OK)), check=words_inside(2))
    case(
        f"transcript-{kind}-negative",
        with_wav(f"neg.{kind}", write([("a", -2.0, -1.5)])),
        ValueError,
        r"neg\..*word 0 \('a'\) starts before 0 s",
    )
    case(
        f"transcript-{kind}-backwards",
        with_wav(f"back.{kind}", write([("a", 2.0, 1.0)])),
        ValueError,
        r"back\..*ends before it starts",
    )
    case(
        f"transcript-{kind}-huge-time",
        with_wav(f"huge.{kind}", write(OK + [("late", 1e12, 1e12 + 1)])),
        ValueError,
        r"huge\..*word 2 \('late'\) ends after the media's end",
    )
    case(
        f"transcript-{kind}-overlapping",
        with_wav(f"over.{kind}", write([("a", 0.5, 2.0), ("b", 1.0, 1.5)])),
        check=words_inside(2),
    )
    case(
        f"transcript-{kind}-within-tolerance",
        with_wav(f"tol.{kind}", write([("end", 4.8, 5.9)])),
        check=words_inside(1),
    )
    case(
        f"transcript-{kind}-past-tolerance",
        with_wav(f"past.{kind}", write([("end", 4.8, 6.2)])),
        ValueError,
        r"past\..*ends after the media's end \(5\.000 s\)",
    )
for kind in ("tsv", "csv"):
    sep = "\t" if kind == "tsv" else ","
    header = sep.join(["text", "start", "duration"])
    case(
        f"transcript-{kind}-in-ms",
        with_wav(f"ms.{kind}", f"{header}\nhello{sep}500{sep}400\n"),
        ValueError,
        rf"ms\.{kind}.*ends after the media's end",
    )
    case(
        f"transcript-{kind}-ok",
        with_wav(f"ok.{kind}", f"{header}\nhello{sep}0.5{sep}0.4\nNaN{sep}1{sep}0.3\n"),
        check=lambda ev, c: word_rows(ev)["text"].tolist() == ["hello", "NaN"],
    )
    case(
        f"transcript-{kind}-negative-duration",
        with_wav(f"neg.{kind}", f"{header}\nhi{sep}1{sep}-0.5\n"),
        ValueError,
        rf"neg\.{kind}.*ends before it starts",
    )
    case(
        f"transcript-{kind}-missing-columns",
        with_wav(f"cols.{kind}", f"word{sep}when\nhi{sep}1\n"),
        ValueError,
        rf"cols\.{kind}.*needs the columns text",
    )
    case(
        f"transcript-{kind}-text-times",
        with_wav(f"txt.{kind}", f"{header}\nhi{sep}soon{sep}1\nyo{sep}1{sep}1\n"),
        check=lambda ev, c: word_rows(ev)["text"].tolist() == ["yo"],
    )  # an untimed word is dropped (reference)
    case(
        f"transcript-{kind}-binary",
        with_wav(f"bin.{kind}", b"\xff\xfe\x00\x01garbage\x00" * 20),
        ValueError,
        rf"bin\.{kind}",
    )
for kind, write in (("srt", srt), ("vtt", vtt)):
    case(f"transcript-{kind}-ok", with_wav(f"ok.{kind}", write([(0.5, 2.0, "two words")])), check=words_inside(2))
    case(
        f"transcript-{kind}-in-ms",
        with_wav(f"ms.{kind}", write([(500, 2000, "two words")])),
        ValueError,
        rf"ms\.{kind}.*ends after the media's end",
    )
    case(
        f"transcript-{kind}-backwards-cue",
        with_wav(f"back.{kind}", write([(3.0, 1.0, "late")])),
        ValueError,
        rf"back\.{kind}.*ends before it starts",
    )
    case(
        f"transcript-{kind}-no-cues",
        with_wav(f"none.{kind}", "just some text\n"),
        ValueError,
        rf"none\.{kind}: no subtitle cues",
    )
case("transcript-json-garbage", with_wav("bad.json", "{not json"), ValueError, r"bad\.json: cannot be parsed")
case("transcript-json-wrong-shape", with_wav("shape.json", '{"a": 1}'), ValueError, r"shape\.json: expected whisperX")
case("transcript-json-empty-list", with_wav("empty.json", "[]"), ValueError, r"empty\.json.*needs the columns")
case(
    "transcript-missing-file",
    lambda c: events_from(c.wav, transcript=c.tmp / "gone.json"),
    FileNotFoundError,
    r"gone\.json: no such file",
)
case("transcript-unsupported-suffix", with_wav("words.docx", "hello"), ValueError, r"words\.docx: unsupported")
case(
    "transcript-table-ms",
    table_with_wav(words(("a", 500.0, 400.0))),
    ValueError,
    "transcript table: word 0 .* ends after the media's end",
)
case(
    "transcript-table-negative",
    table_with_wav(words(("a", -0.5, 0.2))),
    ValueError,
    "transcript table: word 0 .* starts before 0 s",
)
case(
    "transcript-table-inf", table_with_wav(words(("a", 0.5, 0.2), ("b", np.inf, 1.0))), check=words_inside(1)
)  # an untimed (infinite) word is dropped, as the reference drops untimed words
case(
    "transcript-table-numpy-scalars",
    table_with_wav(words((np.str_("a"), np.float32(0.5), np.float16(0.2)))),
    check=words_inside(1),
)
case(
    "transcript-table-unicode",
    table_with_wav(words(("naïve", 0.5, 0.3), ("東京", 1.0, 0.3), ("🙂", 1.5, 0.2))),
    check=lambda ev, c: word_rows(ev)["text"].tolist() == ["naïve", "東京", "🙂"],
)
case(
    "transcript-table-quotes-removed",
    table_with_wav(words(('"quoted"', 0.5, 0.3))),
    check=lambda ev, c: word_rows(ev)["text"].tolist() == ["quoted"],
)
case(
    "transcript-only-negative",
    lambda c: events_from(None, transcript=words(("a", -1.0, 0.5))),
    ValueError,
    "transcript table: word 0 .* starts before 0 s",
)
case(
    "transcript-only-backwards",
    lambda c: events_from(c.file("t.json", json_words([("a", 3, 2)]))),
    ValueError,
    r"t\.json: word 0 .* ends before it starts",
)
case(
    "transcript-only-ok",
    lambda c: events_from(c.file("t.json", json_words(OK))),
    check=lambda ev, c: word_rows(ev)["start"].tolist() == [0.5, 1.0],
)
case(
    "transcript-with-events-table",
    lambda c: events_from(events_table(), transcript=words(("a", 1, 1))),
    ValueError,
    "transcript= .* has its words already",
)
case("no-stimulus-no-transcript", lambda c: events_from(None), ValueError, "give a stimulus file")


# -- events tables ---------------------------------------------------------------------------------------------
def from_table(table):
    return lambda c: events_from(table, cache_dir=c.tmp / "cache")


case(
    "events-word-past-media",
    from_table(events_table(("Word", 9.0, 0.5, "late"))),
    ValueError,
    r"events table: row 1 \('late'\) ends after the media's end",
)
case(
    "events-word-in-ms",
    from_table(events_table(("Word", 500.0, 300.0, "ms"))),
    ValueError,
    r"events table: row 1 .*\(are the times in seconds\?\)",
)
case(
    "events-negative-start",
    from_table(events_table(("Word", -1.0, 0.5, "early"))),
    ValueError,
    r"events table: row 1 \('early'\) starts before 0 s",
)
case(
    "events-negative-duration",
    from_table(events_table(("Word", 1.0, -0.5, "back"))),
    ValueError,
    "events table: row 1 .* ends before it starts",
)
case(
    "events-nan-start",
    from_table(events_table(("Word", np.nan, 0.5, "x"))),
    ValueError,
    "events table: row 1 .* has no finite start",
)
case(
    "events-inf-duration",
    from_table(events_table(("Word", 1.0, np.inf, "x"))),
    ValueError,
    "events table: row 1 .* has no finite start and duration",
)
case(
    "events-text-times",
    from_table(events_table(("Word", "soon", 0.5, "x"))),
    ValueError,
    "events table: start/duration/offset/frequency must be numbers",
)
case(
    "events-missing-columns",
    from_table(pd.DataFrame({"type": ["Word"], "start": [1.0]})),
    ValueError,
    "events table: .* missing duration",
)
case(
    "events-unknown-type",
    from_table(events_table(("Sound", 1.0, 0.5, "x"))),
    ValueError,
    r"events table: unknown event type\(s\) \['Sound'\]",
)
case(
    "events-no-type",
    from_table(events_table((None, 1.0, 0.5, "x"))),
    ValueError,
    r"events table: 1 row\(s\) have no type",
)
case(
    "events-word-no-text",
    from_table(events_table(("Word", 1.0, 0.5, None))),
    ValueError,
    "events table: Word rows need a text",
)
case(
    "events-media-no-filepath",
    from_table(pd.DataFrame({"type": ["Audio"], "start": [0.0], "duration": [5.0]})),
    ValueError,
    "events table: Video/Audio rows need a filepath",
)
case("events-not-a-table", lambda c: events_from({"type": "Word"}), TypeError, "stimulus={'type': 'Word'}")
case(
    "events-overlapping-words",
    from_table(events_table(("Word", 1.0, 2.0, "a"), ("Word", 1.5, 0.5, "b"))),
    check=lambda ev, c: sorted(word_rows(ev)["text"]) == ["a", "b"],
)
case(
    "events-words-no-media",
    from_table(events_table(("Word", 100.0, 0.5, "far"), media=False)),
    check=lambda ev, c: word_rows(ev)["start"].tolist() == [100.0],
)
case(
    "events-tsv-file-word-past-media",
    lambda c: events_from(c.file("ev.tsv", events_table(("Word", 9.0, 0.5, "late")).to_csv(sep="\t", index=False))),
    ValueError,
    r"ev\.tsv: row 1 \('late'\) ends after",
)
case(
    "events-parquet-garbage",
    lambda c: events_from(c.file("ev.parquet", b"PAR1 not really")),
    ValueError,
    r"ev\.parquet: cannot be read",
)

# -- media files ----------------------------------------------------------------------------------------------
case("media-missing", lambda c: events_from(c.tmp / "nope.mp4"), FileNotFoundError, r"nope\.mp4: no such file")
case("media-folder", lambda c: events_from(c.tmp), FileNotFoundError, "no such file")
case("media-empty-mp4", lambda c: events_from(c.file("empty.mp4", b"")), MediaError, r"empty\.mp4")
case("media-random-mp4", lambda c: events_from(c.file("noise.mp4", bytes(range(256)) * 40)), MediaError, r"noise\.mp4")
case(
    "media-text-as-wav",
    lambda c: events_from(c.file("words.wav", "not audio at all")),
    MediaError,
    r"words\.wav: cannot be read as audio",
)
case("media-text-as-mp3", lambda c: events_from(c.file("words.mp3", "not audio at all")), MediaError, r"words\.mp3")
case(
    "media-unknown-suffix",
    lambda c: events_from(c.file("clip.xyz", b"abc")),
    ValueError,
    r"clip\.xyz: unsupported file type '\.xyz'",
)
case("media-no-suffix", lambda c: events_from(c.file("clip", b"abc")), ValueError, r"clip: unsupported file type")
case(
    "media-empty-text",
    lambda c: events_from(c.file("empty.txt", "")),
    ValueError,
    r"empty\.txt: the text file "
    "is empty",
)
case("media-blank-text", lambda c: events_from(c.file("blank.txt", " \n\t\n")), ValueError, r"blank\.txt: the text")
case(
    "media-truncated-mp4",
    lambda c: events_from(c.file("cut.mp4", Path(VIDEO).read_bytes()[:3000])),
    MediaError,
    r"cut\.mp4",
)
case(
    "media-wav-with-transcript",
    lambda c: events_from(c.wav, transcript=words(("hi", 0.2, 0.3)), cache_dir=c.tmp / "cache"),
    check=lambda ev, c: ev[ev.type == "Audio"]["duration"].sum() == MEDIA_S and len(word_rows(ev)) == 1,
)
case(
    "media-bad-language",
    lambda c: events_from(c.wav, transcript=words(("hi", 0.2, 0.3)), language="klingon"),
    ValueError,
    "language='klingon' is not supported",
)


# -- encodings and sample values: text in any Unicode form with its byte-order mark, anything else refused; audio
# samples that are not numbers refused before recognition (they would make every feature NaN)
HELLO_SRT = srt([(0.5, 1.5, "hello there")])
for label, encoded in (
    ("utf8-bom", "\ufeff" + HELLO_SRT),
    ("utf16", HELLO_SRT.encode("utf-16")),
    ("utf16-be", b"\xfe\xff" + HELLO_SRT.encode("utf-16-be")),
    ("utf32", HELLO_SRT.encode("utf-32")),
):
    case(
        f"transcript-srt-{label}",
        with_wav(f"{label}.srt", encoded),
        check=lambda ev, c: word_rows(ev)["text"].tolist() == ["hello", "there"],
    )
case(
    "transcript-json-utf8-bom",
    with_wav("bom.json", "\ufeff" + whisperx([("hi", 0.5, 0.8)])),
    check=lambda ev, c: word_rows(ev)["text"].tolist() == ["hi"],
)
case(
    "transcript-tsv-utf16",
    with_wav("u16.tsv", "text\tstart\tduration\ncafé\t0.5\t0.3\n".encode("utf-16")),
    check=lambda ev, c: word_rows(ev)["text"].tolist() == ["café"],
)
case(
    "transcript-csv-latin1",
    with_wav("latin.csv", "text,start,duration\ncafé,0.5,0.3\n".encode("latin-1")),
    ValueError,
    r"transcript .*latin\.csv: not UTF-8 text \(byte 0xe9 at offset 23",
)
case(
    "media-text-latin1",
    lambda c: events_from(c.file("latin.txt", "Café crème".encode("latin-1"))),
    ValueError,
    r"stimulus .*latin\.txt: not UTF-8 text \(byte 0xe9 at offset 3.*save it as UTF-8",
)
case(
    "media-text-binary",
    lambda c: events_from(c.file("blob.txt", bytes(range(256)) * 4)),
    ValueError,
    r"blob\.txt: not UTF-8 text \(byte 0x80",
)
case(
    "media-text-nul", lambda c: events_from(c.file("nul.txt", "a\x00b")), ValueError, r"nul\.txt: holds NUL characters"
)
case(
    "events-tsv-utf16",
    lambda c: events_from(
        c.file("events.tsv", f"type\tstart\tduration\tfilepath\nAudio\t0\t{MEDIA_S}\t{c.wav}\n".encode("utf-16"))
    ),
    check=lambda ev, c: ev["type"].tolist() == ["Audio"],
)


def write_float_wav(c, name: str, bad=None, subtype: str = "FLOAT") -> Path:
    """A 3-s float WAV of a tone, ``bad`` (NaN, infinity) from 1 s on."""
    import soundfile

    t = np.arange(3 * 16000) / 16000
    tone = 0.3 * np.sin(2 * np.pi * 220 * t)
    soundfile.write(c.tmp / name, tone if bad is None else np.where(t >= 1.0, bad, tone), 16000, subtype=subtype)
    return c.tmp / name


def float_wav(name: str, bad=None, subtype: str = "FLOAT"):
    """``events_from`` of :func:`write_float_wav`'s file, with a transcript."""
    return lambda c: events_from(
        write_float_wav(c, name, bad, subtype), transcript=words(("hi", 0.2, 0.3)), cache_dir=c.tmp / "cache"
    )


for label, bad in (("nan", np.nan), ("inf", np.inf), ("minus-inf", -np.inf)):
    case(
        f"media-wav-{label}-samples",
        float_wav(f"{label}.wav", bad),
        MediaError,
        rf"{label}\.wav: holds audio samples that are not numbers \(NaN or infinity\), the first at 1\.000 s",
    )
case("media-wav-nan-in-doubles", float_wav("d.wav", np.nan, "DOUBLE"), MediaError, r"d\.wav: holds audio samples")
case(
    "media-wav-float-finite",
    float_wav("fine.wav"),
    check=lambda ev, c: "Audio" in set(ev["type"]) and len(word_rows(ev)) == 1,
)
case(  # read_audio refuses them too, in the span it reads (features of a WAV given without events_from)
    "read-audio-nan-span",
    lambda c: tribev2.media.read_audio(write_float_wav(c, "span.wav", np.nan), offset=1.5, duration=1.0),
    MediaError,
    r"span\.wav: holds audio samples that are not numbers .* the first at 1\.500 s",
)


# -- features -------------------------------------------------------------------------------------------------
def predict_with(make, **options):
    def run(c):
        return tribev2.predict_features(make(c), model=c.model, atlas=None, **options)

    return run


def feats(c, seconds=12.0, **changes):
    f = synthetic_features(c.model, seconds)
    return {**f, **{k: v(f[k]) if callable(v) else v for k, v in changes.items()}}


def same_as_float32(transform):
    def check(ds, c):
        expected = tribev2.predict_features(feats(c), model=c.model, atlas=None)
        return np.allclose(ds.prediction.values, expected.prediction.values, atol=1e-2 if transform else 1e-6)

    return check


case(
    "features-complex",
    predict_with(lambda c: feats(c, text=lambda x: x.astype(np.complex64))),
    ValueError,
    r"features\['text'\] has dtype complex64; expected real numbers",
)
case(
    "features-complex-tensor",
    predict_with(lambda c: feats(c, audio=lambda x: torch.from_numpy(x.astype(np.complex64)))),
    ValueError,
    r"features\['audio'\] has dtype torch.complex64",
)
case(
    "features-bool",
    predict_with(lambda c: feats(c, text=lambda x: x > 0)),
    ValueError,
    r"features\['text'\] has dtype bool",
)
case(
    "features-strings",
    predict_with(lambda c: feats(c, text=lambda x: x.astype(str))),
    ValueError,
    r"features\['text'\] has dtype <U",
)
case(
    "features-object",
    predict_with(lambda c: feats(c, text=lambda x: x.astype(object))),
    ValueError,
    r"features\['text'\] has dtype object",
)
case(
    "features-nan",
    predict_with(lambda c: feats(c, video=lambda x: np.where(x > 1, np.nan, x))),
    ValueError,
    r"features\['video'\] contains \d+ NaN or infinite",
)
case(
    "features-inf",
    predict_with(lambda c: feats(c, video=lambda x: np.where(x > 1, np.inf, x))),
    ValueError,
    r"features\['video'\] contains \d+ NaN or infinite",
)
case(
    "features-wrong-shape",
    predict_with(lambda c: feats(c, text=lambda x: x[:1])),
    ValueError,
    r"features\['text'\] has shape \(1, 8, 24\)",
)
case(
    "features-wrong-width",
    predict_with(lambda c: feats(c, text=lambda x: x[:, :5])),
    ValueError,
    r"features\['text'\] has shape \(2, 5, 24\); expected \(2, 8, T\)",
)
case(
    "features-unknown-modality",
    predict_with(lambda c: {**feats(c), "smell": np.zeros((2, 8, 24))}),
    ValueError,
    "unknown modality 'smell'",
)
case("features-empty-mapping", predict_with(lambda c: {}), ValueError, "features must map modality names")
case(
    "features-no-samples",
    predict_with(lambda c: feats(c, text=lambda x: x[..., :0], audio=lambda x: x[..., :0], video=lambda x: x[..., :0])),
    ValueError,
    r"no time samples|duration_s=0",
)
case(
    "features-lengths-differ",
    predict_with(lambda c: feats(c, text=lambda x: x[..., :10])),
    ValueError,
    "modalities have different lengths",
)
case("features-empty-window-list", predict_with(lambda c: []), ValueError, "features: an empty list of windows")
case(
    "features-window-wrong-shape",
    predict_with(lambda c: [{"text": np.zeros((2, 8, 3))}]),
    ValueError,
    r"features\[0\] \(a window\) has 3 time samples; a window holds 20",
)


def cast(dtype):
    """The features in another dtype (integers: rounded, so the float32 copy is the rounded values)."""

    def make(c):
        f = feats(c)
        return {k: (np.round(v * 4) if np.issubdtype(dtype, np.integer) else v).astype(dtype) for k, v in f.items()}

    return make


def same_as_float32_copy(dtype, atol):
    def check(ds, c):
        copy = {k: v.astype(np.float32) for k, v in cast(dtype)(c).items()}
        expected = tribev2.predict_features(copy, model=c.model, atlas=None).prediction.values
        return ds.prediction.dtype == np.float32 and np.allclose(ds.prediction.values, expected, atol=atol)

    return check


for dtype in (np.float16, np.float64, np.int8, np.int32, np.int64, np.uint8):
    case(f"features-{np.dtype(dtype).name}", predict_with(cast(dtype)), check=same_as_float32_copy(dtype, 1e-6))
case(
    "features-torch-tensor",
    predict_with(lambda c: {k: torch.from_numpy(v) for k, v in feats(c).items()}),
    check=same_as_float32(False),
)
case(
    "features-flat-layers",
    predict_with(lambda c: {k: v.reshape(-1, v.shape[-1]) for k, v in feats(c).items()}),
    check=same_as_float32(False),
)
case(
    "features-non-contiguous",
    predict_with(lambda c: {k: np.asfortranarray(v) for k, v in feats(c).items()}),
    check=same_as_float32(False),
)
case(
    "duration-np-float32", predict_with(feats, duration_s=np.float32(12.0)), check=lambda ds, c: ds.sizes["time"] == 12
)
case("duration-np-int64", predict_with(feats, duration_s=np.int64(7)), check=lambda ds, c: ds.sizes["time"] == 7)
case(
    "duration-np-float64-array-0d",
    predict_with(feats, duration_s=np.float64(3.5)),
    check=lambda ds, c: ds.sizes["time"] == 4,
)
case("duration-bool", predict_with(feats, duration_s=True), ValueError, "duration_s=True")
case("duration-string", predict_with(feats, duration_s="12"), ValueError, "duration_s='12'")
case("duration-zero", predict_with(feats, duration_s=0), ValueError, "duration_s=0")
case("duration-negative", predict_with(feats, duration_s=-5.0), ValueError, "duration_s=-5.0")
case("duration-nan", predict_with(feats, duration_s=float("nan")), ValueError, "duration_s=nan")
case("duration-inf", predict_with(feats, duration_s=float("inf")), ValueError, "duration_s=inf")
case(
    "duration-50x-features",
    predict_with(feats, duration_s=600.0),
    ValueError,
    "duration_s=600 s but the features cover 12 s",
)
case(
    "duration-beyond-ceiling",
    predict_with(lambda c: [feats(c, 10.0)] * 3, duration_s=MAX_STIMULUS_S * 2),
    ValueError,
    "more than the 21,600 s",
)
case("duration-a-bit-long", predict_with(feats, duration_s=12.5), check=lambda ds, c: ds.sizes["time"] == 13)
case("hop-not-whole-trs", predict_with(feats, hop_s=0.3), ValueError, "hop_s=0.3")
case("hop-longer-than-window", predict_with(feats, hop_s=20.0), ValueError, "hop_s=20.0")
case("hop-negative", predict_with(feats, hop_s=-1.0), ValueError, "hop_s=-1.0")
case("hop-np-int", predict_with(feats, hop_s=np.int64(5)), check=lambda ds, c: ds.attrs["hop_s"] == 5.0)
case("batch-size-zero", predict_with(feats, batch_size=0), ValueError, "batch_size=0")
case("batch-size-float", predict_with(feats, batch_size=2.0), ValueError, "batch_size=2.0")
case("batch-size-bool", predict_with(feats, batch_size=True), ValueError, "batch_size=True")
case("batch-size-np-int", predict_with(feats, batch_size=np.int64(1)), check=same_as_float32(False))
case("subjects-out-of-range", predict_with(feats, subjects=[7]), ValueError, "subject=7 is out of range")
case("subjects-unknown-name", predict_with(feats, subjects=["nobody"]), ValueError, "nobody")
case("features-not-a-mapping", predict_with(lambda c: 42), TypeError, "features: expected .* got int")


# -- checkpoints --------------------------------------------------------------------------------------------------
def damaged_copy(c, edit) -> Path:
    """A copy of the small model folder with its safetensors weights edited."""
    import shutil

    from safetensors.torch import load_file, save_file

    folder = c.tmp / "damaged"
    shutil.copytree(c.model_folder, folder)
    weights = load_file(str(folder / "model.safetensors"))
    edit(weights)
    save_file(weights, str(folder / "model.safetensors"))
    return folder


def poison(key_part: str, value: float):
    def edit(weights):
        key = next(k for k in weights if key_part in k)
        weights[key].view(-1)[0] = value

    return edit


def load(source_of, **options):
    return lambda c: tribev2.load_model(source_of(c), **options)


case(
    "checkpoint-nan-weight",
    load(lambda c: damaged_copy(c, poison("predictor", float("nan")))),
    CheckpointError,
    r"model\.safetensors: key 'predictor\..*' holds 1 NaN or infinite",
)
case(
    "checkpoint-inf-weight",
    load(lambda c: damaged_copy(c, poison("encoder", float("inf")))),
    CheckpointError,
    r"model\.safetensors: key '.*encoder.*' holds 1 NaN or infinite",
)
case(
    "checkpoint-wrong-shape",
    load(lambda c: damaged_copy(c, lambda w: w.update({k: torch.zeros(3) for k in list(w)[:1]}))),
    CheckpointError,
    r"model\.safetensors: key '.*' has shape \(3,\)",
)
case(
    "checkpoint-extra-key",
    load(lambda c: damaged_copy(c, lambda w: w.update(extra=torch.zeros(1)))),
    CheckpointError,
    r"unexpected key\(s\) 'extra'",
)
case(
    "checkpoint-int-weights",
    load(lambda c: damaged_copy(c, lambda w: w.update({k: w[k].to(torch.int64) for k in list(w)[:1]}))),
    CheckpointError,
    "has dtype torch.int64",
)
case(
    "checkpoint-truncated",
    lambda c: tribev2.load_model(_truncated(c)),
    CheckpointError,
    r"model\.safetensors: cannot be read as safetensors",
)
case(
    "checkpoint-bad-build-args",
    lambda c: tribev2.load_model(_edited(c, "build_args.json", "{oops")),
    CheckpointError,
    r"build_args\.json: not valid JSON",
)
case(
    "checkpoint-no-config",
    lambda c: tribev2.load_model(_without(c, "config.yaml")),
    FileNotFoundError,
    r"no config\.yaml",
)
case(
    "checkpoint-no-weights",
    lambda c: tribev2.load_model(_without(c, "model.safetensors")),
    FileNotFoundError,
    "no weights",
)
case(
    "checkpoint-garbage-ckpt",
    lambda c: tribev2.load_model(_ckpt(c, b"not a pickle")),
    CheckpointError,
    r"best\.ckpt: cannot be read as a PyTorch checkpoint",
)
case(
    "checkpoint-ckpt-no-state",
    lambda c: tribev2.load_model(_ckpt(c, {"weights": {}})),
    CheckpointError,
    r"best\.ckpt: expected a Lightning checkpoint",
)


def _config_text(c, text: str):
    folder = damaged_copy(c, lambda w: None)
    (folder / "config.yaml").write_text(text)
    return folder


case(
    "checkpoint-config-not-yaml",
    lambda c: tribev2.load_model(_config_text(c, "a: [unclosed\n  b: : :")),
    ValueError,
    r"config\.yaml: not valid YAML \(line 2, column 4\)",
)
case("checkpoint-empty-source", lambda c: tribev2.load_model(""), ValueError, "model source is empty")


def _revision_of_a_folder(c):
    with pytest.warns(UserWarning, match="revision='v2' names a hub revision; the folder .* is used as it is"):
        return tribev2.load_model(c.model_folder, revision="v2")


case("checkpoint-folder-with-revision", _revision_of_a_folder, check=lambda m, c: isinstance(m, TribeModel))
case(
    "checkpoint-missing-folder",
    lambda c: tribev2.load_model(c.tmp / "nothing-here"),
    FileNotFoundError,
    "nothing-here: not a folder",
)
case(
    "checkpoint-hub-id-offline",
    lambda c: tribev2.load_model("someone/not-cached"),
    FileNotFoundError,
    "someone/not-cached: config.yaml is not in the Hugging Face cache",
)
if not torch.cuda.is_available():
    case(
        "load-device-cuda-on-cpu",
        load(lambda c: NOWHERE_MODEL, device="cuda"),
        ValueError,
        "device='cuda': CUDA is not available",
    )
case(
    "load-device-is-a-dtype", load(lambda c: NOWHERE_MODEL, device="float16"), ValueError, "device='float16' is a dtype"
)
case("load-device-misspelt", load(lambda c: NOWHERE_MODEL, device="gpu"), ValueError, "device='gpu': not a device")
case("load-dtype-unknown", load(lambda c: NOWHERE_MODEL, dtype="float64"), ValueError, "dtype must be one of")
case("load-dtype-not-a-name", load(lambda c: NOWHERE_MODEL, dtype=32), ValueError, "got 32")
case(
    "load-dtype-float16",
    load(lambda c: c.model_folder, dtype="float16"),
    check=lambda m, c: next(m.parameters()).dtype == torch.float16,
)
case(
    "load-ok-numbers-finite",
    load(lambda c: c.model_folder),
    check=lambda m, c: m.weights_sha256 and all(torch.isfinite(p).all() for p in m.parameters()),
)


def _truncated(c):
    folder = damaged_copy(c, lambda w: None)
    data = (folder / "model.safetensors").read_bytes()
    (folder / "model.safetensors").write_bytes(data[: len(data) // 2])
    return folder


def _edited(c, name, text):
    folder = damaged_copy(c, lambda w: None)
    (folder / name).write_text(text)
    return folder


def _without(c, name):
    folder = damaged_copy(c, lambda w: None)
    (folder / name).unlink()
    return folder


def _ckpt(c, content):
    folder = _without(c, "model.safetensors")
    target = folder / "best.ckpt"
    if isinstance(content, bytes):
        target.write_bytes(content)
    else:
        torch.save(content, target)
    return folder


def prediction(c) -> xr.Dataset:
    return tribev2.predict_features(feats(c), model=c.model, atlas=None)


# -- saved files ------------------------------------------------------------------------------------------------
def saved(c, suffix=".nc") -> tuple[xr.Dataset, Path]:
    ds = prediction(c)
    return ds, tribev2.save_dataset(ds, c.tmp / f"pred{suffix}")


def flip_data_byte(c, suffix=".nc") -> Path:
    ds, path = saved(c, suffix)
    if suffix == ".zarr":
        chunk = max(
            (
                p
                for p in (path / "prediction").rglob("*")
                if p.is_file() and not p.name.startswith(".") and p.name != "zarr.json"
            ),
            key=lambda p: p.stat().st_size,
        )
        _flip(chunk, chunk.stat().st_size // 2)
        return path
    raw = path.read_bytes()
    values = ds.prediction.values.astype("<f4").tobytes()
    offset = raw.find(values[4096:4160])  # inside the prediction's stored bytes
    assert offset > 0
    _flip(path, offset + 5)
    return path


def _flip(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x5A
    path.write_bytes(bytes(data))


case(
    "saved-corrupt-byte-nc",
    lambda c: tribev2.open_dataset(flip_data_byte(c)),
    CorruptDatasetError,
    r"pred\.nc: the variable 'prediction' is corrupt",
)
case(
    "saved-corrupt-byte-unverified",
    lambda c: tribev2.open_dataset(flip_data_byte(c), verify=False),
    check=lambda ds, c: "checksum_sha256" not in ds.prediction.attrs,
)
case(
    "saved-corrupt-chunk-zarr",
    lambda c: tribev2.open_dataset(flip_data_byte(c, ".zarr")),
    (CorruptDatasetError, ValueError),
    r"pred\.zarr",
)
case(
    "saved-round-trip-nc",
    lambda c: (saved(c)[0], tribev2.open_dataset(saved(c)[1])),
    check=lambda pair, c: (
        pair[0].prediction.equals(pair[1].prediction) and not pair[1].prediction.attrs.get("checksum_sha256")
    ),
)
case(
    "saved-round-trip-zarr",
    lambda c: (saved(c, ".zarr")[0], tribev2.open_dataset(saved(c, ".zarr")[1])),
    check=lambda pair, c: pair[0].prediction.equals(pair[1].prediction),
)
case(
    "saved-checksum-in-file",
    lambda c: xr.open_dataset(saved(c)[1], engine="h5netcdf"),
    check=lambda ds, c: re.fullmatch("[0-9a-f]{64}", ds.prediction.attrs["checksum_sha256"]),
)
case(
    "saved-truncated-nc",
    lambda c: tribev2.open_dataset(_cut_file(saved(c)[1])),
    ValueError,
    r"pred\.nc: cannot be read as a NetCDF file",
)
case(
    "saved-text-as-nc",
    lambda c: tribev2.open_dataset(c.file("notes.nc", "hello")),
    ValueError,
    r"notes\.nc: cannot be read",
)
case("saved-empty-nc", lambda c: tribev2.open_dataset(c.file("empty.nc", b"")), ValueError, r"empty\.nc: cannot")
case("saved-missing", lambda c: tribev2.open_dataset(c.tmp / "gone.nc"), FileNotFoundError, r"gone\.nc: no such")
case(
    "saved-folder-not-zarr",
    lambda c: tribev2.open_dataset(c.file("junk/readme.txt", "x").parent),
    ValueError,
    "junk: cannot be read as a Zarr store",
)
case(
    "save-bad-suffix",
    lambda c: tribev2.save_dataset(saved(c)[0], c.tmp / "out.txt"),
    ValueError,
    r"out\.txt: expected a \.nc",
)
case(
    "save-not-a-dataset",
    lambda c: tribev2.save_dataset(np.zeros(3), c.tmp / "out.nc"),
    TypeError,
    "expected an xarray.Dataset, got ndarray",
)
case(
    "save-onto-a-file-as-folder",
    lambda c: tribev2.save_dataset(saved(c)[0], c.file("plain", "x") / "out.nc"),
    (WriteError, NotADirectoryError, FileExistsError),
    r"plain",
)


def _save_over(c, name: str, make):
    """``save_dataset`` onto ``name`` after ``make(path)`` put something there; that something must survive."""
    target = c.tmp / name
    make(target)
    try:
        return tribev2.save_dataset(prediction(c), target)
    finally:
        assert target.exists() and (target.is_file() or any(target.iterdir()))


def _folder_with_a_file(path):
    path.mkdir()
    (path / "mine.txt").write_text("keep me")


case(  # the folder was replaced: the user's files in it were lost
    "save-zarr-onto-a-folder-of-files",
    lambda c: _save_over(c, "mine.zarr", _folder_with_a_file),
    ValueError,
    r"mine\.zarr: a folder of other files, not a Zarr store; saving would replace them",
)
case(
    "save-netcdf-onto-a-folder",
    lambda c: _save_over(c, "dir.nc", _folder_with_a_file),
    ValueError,
    r"dir\.nc: a folder is there; a NetCDF Dataset is one file",
)
case(
    "save-zarr-onto-a-file",
    lambda c: _save_over(c, "file.zarr", lambda p: p.write_text("keep me")),
    ValueError,
    r"file\.zarr: a file is there; a Zarr Dataset is a folder",
)


def _model_into(c, make):
    target = c.tmp / "outputs"
    make(target)
    try:
        return c.model.save_pretrained(target)
    finally:
        assert (target / "mine.txt").read_text() == "keep me" if target.is_dir() else target.read_text() == "keep me"


case(  # the folder was replaced as a whole: every other file in it was lost
    "save-pretrained-into-a-folder-of-files",
    lambda c: _model_into(c, _folder_with_a_file),
    ValueError,
    r"outputs: holds 'mine\.txt': saving replaces the folder as a whole",
)
case(
    "save-pretrained-onto-a-file",
    lambda c: _model_into(c, lambda p: p.write_text("keep me")),
    ValueError,
    r"outputs: is a file; a model is saved as a folder",
)
case(
    "save-pretrained-over-a-saved-model",
    lambda c: c.model.save_pretrained(c.model.save_pretrained(c.tmp / "again")),
    check=lambda folder, c: (
        sorted(p.name for p in folder.iterdir()) == ["build_args.json", "config.yaml", "model.safetensors"]
    ),
)


def _report_onto_a_folder(c):
    target = c.tmp / "report.html"
    _folder_with_a_file(target)
    try:
        return tribev2.viz.save_report(prediction(c), target)
    finally:
        assert (target / "mine.txt").read_text() == "keep me"


case(  # any file written atomically onto a folder replaced the folder, and all it held
    "report-onto-a-folder",
    _report_onto_a_folder,
    WriteError,
    r"cannot write the file .*report\.html: a folder is in the way of the file",
)
case("save-old-file-kept-on-failure", lambda c: _failed_overwrite(c), check=lambda pair, c: pair[0] == pair[1])
case(
    "load-ground-truth-wrong-vertices",
    lambda c: tribev2.evaluate(saved(c)[0], np.zeros((12, 10))),
    ValueError,
    r"ground truth has shape \(12, 10\)",
)
case(
    "load-ground-truth-missing",
    lambda c: tribev2.evaluate(saved(c)[0], c.tmp / "bold.nii.gz"),
    FileNotFoundError,
    r"bold\.nii\.gz: no such file",
)
case(
    "load-ground-truth-infinite",
    lambda c: tribev2.evaluate(saved(c)[0], np.where(np.arange(12)[:, None] == 3, np.inf, np.ones((12, 1284)))),
    ValueError,
    r"ground truth holds 1,284 infinite value\(s\), the first at volume 3, vertex 0",
)
case(
    "load-ground-truth-complex",
    lambda c: tribev2.evaluate(saved(c)[0], np.ones((12, 1284)) * (1 + 1j)),
    ValueError,
    r"ground truth has dtype complex128; expected real numbers",
)


def _evaluate_with_missing(c):
    """Ground truth with one vertex missing (NaN) at one volume: that vertex's r is NaN, with a warning."""
    ds = saved(c)[0]
    truth = np.random.default_rng(0).standard_normal((ds.sizes["time"] + 5, 1284))
    truth[7, 11] = np.nan
    with pytest.warns(RuntimeWarning, match="Pearson r is undefined at 1 of 1,284 .* not finite"):
        return tribev2.evaluate(ds, truth)


case(
    "evaluate-ground-truth-with-nan",
    _evaluate_with_missing,
    check=lambda ev, c: (
        np.isnan(ev.pearson_r.values[11]).all() and np.isfinite(np.delete(ev.pearson_r.values, 11)).all()
    ),
)
case(
    "evaluate-not-a-dataset",
    lambda c: tribev2.evaluate("pred.nc", np.zeros((12, 1284))),
    (TypeError, ValueError),
    "Dataset|DataArray",
)


def _cut_file(path: Path) -> Path:
    path.write_bytes(path.read_bytes()[:2000])
    return path


def _failed_overwrite(c):
    ds, path = saved(c)
    before = path.read_bytes()
    original = Path.write_bytes

    def full(self, data):
        raise OSError(errno.ENOSPC, "No space left on device")

    Path.write_bytes = full
    try:
        with pytest.raises(WriteError, match=r"pred\.nc: the disk is full"):
            tribev2.save_dataset(ds, path)
    finally:
        Path.write_bytes = original
    leftovers = sorted(p.name for p in c.tmp.iterdir() if p.name.startswith(".pred"))
    assert not leftovers, leftovers
    return before, path.read_bytes()


# -- atlases ---------------------------------------------------------------------------------------------------
case(
    "atlas-unknown-name",
    lambda c: tribev2.predict_features(feats(c), model=c.model, atlas="bogus"),
    ValueError,
    "unknown atlas 'bogus'",
)
case(
    "atlas-unknown-before-model",
    lambda c: tribev2.predict(c.wav, model=NOWHERE_MODEL, atlas="bogus"),
    ValueError,
    "unknown atlas 'bogus'",
)
case("atlas-wrong-type", lambda c: tribev2.predict(c.wav, model=NOWHERE_MODEL, atlas=3), TypeError, "atlas=3")
case(
    "atlas-empty-name", lambda c: tribev2.predict(c.wav, model=NOWHERE_MODEL, atlas=""), ValueError, "unknown atlas ''"
)
case("atlas-alias", lambda c: tribev2.atlas.check_atlas("glasser"), check=lambda a, c: a == "glasser")


def with_regions(c):
    return tribev2.predict_features(feats(c), model=c.model, atlas="Desikan-Killiany")


for label, roi in (("number", 3), ("numbers-in-a-list", ["lingual", 2])):
    case(
        f"roi-select-{label}",
        lambda c, roi=roi: with_regions(c).tribe.sel(roi=roi),
        TypeError,
        r"roi=.*: expected a region name, a shell-style pattern \(V\*\), or a list of them",
    )
case("roi-select-unknown", lambda c: with_regions(c).tribe.sel(roi="nowhere"), KeyError, "'nowhere' matches no region")
case(
    "roi-select-pattern",
    lambda c: with_regions(c).tribe.sel(roi="lat*"),
    check=lambda ds, c: set(np.unique(ds["roi"].values)) == {"lateraloccipital", "lateralorbitofrontal"},
)
for label, size in (("huge", (100_000, 100_000)), ("zero", (0, 0)), ("one-number", 480)):
    case(  # a huge picture aborted the process inside VTK (std::bad_alloc)
        f"picture-size-{label}",
        lambda c, size=size: tribev2.viz.render(prediction(c), time=0, size=size),
        ValueError,
        r"size=.*: expected \(width, height\) in pixels, each from 16 to 4096",
    )
for label, options in (("frame-width-huge", {"frame_width": 10**6}), ("jpeg-quality-0", {"jpeg_quality": 0})):
    case(
        f"report-{label}",
        lambda c, options=options: tribev2.viz.save_report(prediction(c), c.tmp / "r.html", **options),
        ValueError,
        r"(frame_width=1000000|jpeg_quality=0): expected a whole number from",
    )
for label, options, expected in (
    ("dpi-zero", {"dpi": 0}, r"dpi=0: expected a positive number"),
    ("figsize-zero", {"figsize": (0, 0)}, r"figsize=\(0, 0\): expected \(width, height\) in inches"),
    ("figsize-huge", {"figsize": (1000, 1000)}, r"figsize=\(1000, 1000\) at dpi=100 makes 100000x100000 pixels"),
):
    case(
        f"plot-{label}",
        lambda c, options=options: tribev2.viz.plot_surface(prediction(c), time=0, **options),
        ValueError,
        expected,
    )
case(
    "movie-quality-1000",
    lambda c: tribev2.viz.save_movie(prediction(c), c.tmp / "m.mp4", quality=1000),
    ValueError,
    r"quality=1000: expected x264's CRF, a whole number from 0 \(lossless\) to 51",
)
case(
    "save-gifti-named-gii",
    lambda c: tribev2.io.save_gifti(prediction(c).prediction.isel(subject=0, time=0), c.tmp / "map.func.gii"),
    check=lambda paths, c: [p.name for p in paths] == ["map_hemi-L.func.gii", "map_hemi-R.func.gii"],
)
case(
    "save-gifti-under-a-file",
    lambda c: tribev2.io.save_gifti(prediction(c).prediction.isel(subject=0, time=0), c.wav / "map"),
    WriteError,
    r"cannot write the GIFTI file .*speech\.wav/map: a file is in the way",
)
case(
    "save-nifti-bad-suffix",
    lambda c: tribev2.io.save_nifti(prediction(c).prediction.isel(subject=0, time=0), c.tmp / "map.mgz"),
    ValueError,
    r"map\.mgz: expected a file name ending in \.nii or \.nii\.gz",
)


def _extract(c, **window):
    from tribev2.demo import demo_extractors

    events = events_from(None, transcript=words(("a", 0.5, 0.3)))
    return tribev2.extract_features(events, extractors=demo_extractors(device="cpu", progress=False), **window)


case(  # one window of features is allocated whole: 1e9 s asked for 477 GiB
    "extract-features-huge-window",
    lambda c: _extract(c, start=0.0, duration=1e9),
    ValueError,
    r"duration=1000000000\.0 s is more than the 21,600 s \(6 h\)",
)
case(
    "extract-features-untyped-table",
    lambda c: tribev2.extract_features(pd.DataFrame({"a": [1]}), extractors=[], start=0.0, duration=2.0),
    ValueError,
    r"events must be a pandas DataFrame with a 'type' column \(got \['a'\]",
)
case(
    "resample-an-array",
    lambda c: tribev2.io.resample(np.zeros((3, 1284)), "fsaverage4"),
    TypeError,
    r"resample: expected a DataArray or Dataset with a 'vertex' dimension, got ndarray",
)
case(  # it showed the last TR without a word
    "viewer-time-outside",
    lambda c: tribev2.viz.brain(prediction(c), backend="static").set_time(999),
    ValueError,
    r"time=\[999\.0\] s is outside the data's time points",
)
case(
    "viewer-size-huge",
    lambda c: tribev2.viz.brain(prediction(c), size=(100_000, 100_000), backend="static"),
    ValueError,
    r"size=\(100000, 100000\): expected \(width, height\)",
)
for label, time in (("empty", []), ("nan", float("nan"))):
    case(
        f"plot-time-{label}",
        lambda c, time=time: tribev2.viz.plot_surface(prediction(c), time=time),
        ValueError,
        r"time=.*: expected one or more finite times in seconds",
    )
case(
    "atlas-none",
    lambda c: tribev2.predict_features(feats(c), model=c.model, atlas=None),
    check=lambda ds, c: "roi" not in ds.coords,
)


# -- predict: validated before any model is loaded ------------------------------------------------------------------
def early(**options):
    return lambda c: tribev2.predict(options.pop("stimulus", c.wav), model=NOWHERE_MODEL, **options)


case("predict-missing-stimulus", early(stimulus="/no/such/clip.mp4"), FileNotFoundError, r"clip\.mp4: no such file")
case(
    "predict-missing-transcript",
    early(transcript="/no/such/words.json"),
    FileNotFoundError,
    r"words\.json: no such file",
)
case("predict-empty-modalities", early(modalities=[]), ValueError, r"modalities=\[\]")
case("predict-modalities-numbers", early(modalities=[1, 2]), ValueError, r"modalities=\[1, 2\]")
case("predict-bad-device", early(device="cuda:7"), ValueError, "device='cuda:7'")
case("predict-dtype-as-device", early(device="bfloat16"), ValueError, "device='bfloat16' is a dtype")
case("predict-bad-language", early(language="elvish"), ValueError, "language='elvish'")
case(
    "predict-unknown-asr-model", early(asr_model="large-v9"), ValueError, r"asr_model='large-v9': not a faster-whisper"
)
case(
    "predict-asr-folder-missing",
    early(asr_model="/no/such/whisper"),
    ModelUnavailableError,
    r"Whisper model folder /no/such/whisper: no such folder",
)
case(
    "predict-asr-folder-not-a-model",
    lambda c: early(asr_model=str(c.tmp))(c),
    ModelUnavailableError,
    r"Whisper model folder .* has no model\.bin",
)
case(  # no recognition with a transcript given: the model name is not looked at (the models' error comes first)
    "predict-asr-model-unused",
    early(asr_model="large-v9", transcript=words(("hi", 0.2, 0.3))),
    Exception,
    "nonexistent/tribev2-weights",
)


def in_home(run):
    """``run(c)`` with ``$HOME`` set to the case's folder, so that ``~/name`` names a file there."""

    def wrapped(c):
        import os

        old = os.environ.get("HOME")
        os.environ["HOME"] = str(c.tmp)
        try:
            return run(c)
        finally:
            os.environ["HOME"] = old

    return wrapped


def from_home(c):
    c.file("home.wav", c.wav.read_bytes())
    c.file("words.srt", srt([(0.5, 1.0, "hi")]))
    return events_from("~/home.wav", transcript="~/words.srt", cache_dir=c.tmp / "cache")


case(
    "events-tilde-paths",
    in_home(from_home),
    check=lambda ev, c: (
        word_rows(ev)["text"].tolist() == ["hi"] and not ev["filepath"].dropna().str.contains("~").any()
    ),
)
case("predict-bad-hop", early(hop_s=float("nan")), ValueError, "hop_s=nan")
case("predict-bad-batch", early(batch_size=-1), ValueError, "batch_size=-1")
case("predict-stimulus-wrong-type", early(stimulus=3.5), TypeError, "stimulus=3.5")
case("predict-then-model-error", early(), Exception, "nonexistent/tribev2-weights")


# -- the command line ----------------------------------------------------------------------------------------------
def cli_run(*args, expect_code: int):
    def run(c):
        argv = [a.format(tmp=c.tmp, wav=c.wav, model=c.model_folder, ckpt=c.model.source) for a in args]
        try:
            code = cli.main(argv)
        except SystemExit as exit:  # argparse
            code = exit.code
        assert code == expect_code, f"exit {code}, expected {expect_code}"
        return code

    return run


def cli_case(id, *args, code, match):
    CLI_CASES.append((id, args, code, match))


CLI_CASES: list[tuple] = []
cli_case(
    "cli-missing-stimulus",
    "predict",
    "{tmp}/none.mp4",
    "--model",
    NOWHERE_MODEL,
    code=2,
    match=r"none\.mp4: no such file",
)
cli_case(
    "cli-bad-output-suffix",
    "predict",
    "{wav}",
    "-o",
    "{tmp}/out.csv",
    "--model",
    NOWHERE_MODEL,
    code=2,
    match=r"--output .*out\.csv: expected a \.nc",
)
cli_case(
    "cli-bad-atlas-before-model",
    "predict",
    "{wav}",
    "-o",
    "{tmp}/o.nc",
    "--model",
    NOWHERE_MODEL,
    "--atlas",
    "bogus",
    code=2,
    match="unknown atlas 'bogus'",
)
cli_case(
    "cli-output-under-a-file",
    "predict",
    "{wav}",
    "-o",
    "{wav}/o.nc",
    "--model",
    NOWHERE_MODEL,
    code=4,
    match=r"--output .*speech\.wav/o\.nc",
)
cli_case(
    "cli-events-under-a-file",
    "predict",
    "{wav}",
    "-o",
    "{tmp}/o.nc",
    "--events",
    "{wav}/e.tsv",
    "--model",
    NOWHERE_MODEL,
    code=4,
    match=r"--events .*e\.tsv",
)
for label, events, expected in (  # each would have overwritten a file: the user's input, or the predictions
    ("same-as-output", "{tmp}/o.nc", r"--events .*o\.nc: expected a \.tsv path"),
    ("is-the-stimulus", "{tmp}/words.tsv", r"--events .*words\.tsv is the stimulus: it would be overwritten"),
):
    cli_case(
        f"cli-events-{label}",
        "predict",
        "{tmp}/words.tsv",
        "-o",
        "{tmp}/o.nc",
        "--events",
        events,
        "--model",
        NOWHERE_MODEL,
        code=2,
        match=expected,
    )
cli_case(
    "cli-missing-transcript",
    "predict",
    "{wav}",
    "--transcript",
    "{tmp}/none.json",
    "-o",
    "{tmp}/o.nc",
    "--model",
    NOWHERE_MODEL,
    code=2,
    match=r"--transcript .*none\.json: no such file",
)
cli_case(
    "cli-bad-device",
    "predict",
    "{wav}",
    "-o",
    "{tmp}/o.nc",
    "--model",
    NOWHERE_MODEL,
    "--device",
    "tpu",
    code=2,
    match="device='tpu'",
)
cli_case(
    "cli-bad-subjects",
    "predict",
    "{wav}",
    "-o",
    "{tmp}/o.nc",
    "--model",
    NOWHERE_MODEL,
    "--subjects",
    "x,y",
    code=2,
    match="--subjects 'x,y'",
)
cli_case(
    "cli-bad-language",
    "predict",
    "{wav}",
    "-o",
    "{tmp}/o.nc",
    "--model",
    NOWHERE_MODEL,
    "--language",
    "xx",
    code=2,
    match="language='xx'",
)
cli_case(
    "cli-empty-modalities",
    "predict",
    "{wav}",
    "-o",
    "{tmp}/o.nc",
    "--model",
    NOWHERE_MODEL,
    "--modalities",
    ",",
    code=2,
    match="modalities=",
)
cli_case("cli-batch-size-zero", "predict", "{wav}", "--batch-size", "0", code=2, match="--batch-size")
cli_case("cli-batch-size-text", "predict", "{wav}", "--batch-size", "many", code=2, match="--batch-size")
cli_case("cli-unknown-flag", "predict", "{wav}", "--frobnicate", code=2, match="--frobnicate")
cli_case("cli-no-command", code=2, match="command")
cli_case(
    "cli-model-missing",
    "predict",
    "{wav}",
    "-o",
    "{tmp}/o.nc",
    "--model",
    NOWHERE_MODEL,
    "--atlas",
    "none",
    code=3,
    match=r"brain model: .*tribev2-weights",
)
cli_case(
    "cli-model-nan",
    "predict",
    "{wav}",
    "-o",
    "{tmp}/o.nc",
    "--model",
    "{tmp}/nan-model",
    "--atlas",
    "none",
    code=2,
    match=r"model\.safetensors: key .* NaN",
)
cli_case("cli-convert-missing", "convert", "{tmp}/none", "{tmp}/out", code=2, match="none: not a folder")
cli_case(
    "cli-convert-into-a-file", "convert", "{ckpt}", "{wav}/sub", code=4, match=r"speech\.wav/sub: a file is in the way"
)
for command, name in (("report", "r.html"), ("movie", "m.mp4"), ("plot", "p.png")):  # checked before the results
    cli_case(
        f"cli-{command}-into-a-file",
        command,
        "{tmp}/results.nc",
        "-o",
        f"{{wav}}/sub/{name}",
        code=4,
        match=r"cannot write the --output .*speech\.wav/sub/" + re.escape(name) + ": a part of the path is a file",
    )
for option, value, expected in (
    ("--time", "1,abc", r"argument --time: expected comma-separated times in seconds .* got '1,abc'"),
    ("--time", "nan", r"argument --time: .* got 'nan'"),
    ("--dpi", "100000", r"argument --dpi: expected a whole number of at least 1 and at most 600"),
    ("--width", "100000", r"argument --width: .* at most 10000"),
):
    cli_case(f"cli-plot-{option[2:]}-{value}", "plot", "{tmp}/results.nc", option, value, code=2, match=expected)
cli_case(
    "cli-movie-size-99999x300",
    "movie",
    "{tmp}/results.nc",
    "--size",
    "99999x300",
    code=2,
    match=r"argument --size: expected WIDTHxHEIGHT in pixels, from 16x16 to 4096x4096",
)
cli_case(
    "cli-plot-width-alone",
    "plot",
    "{tmp}/results.nc",
    "--width",
    "800",
    code=2,
    match="--width and --height: give both",
)
cli_case("cli-convert-converted", "convert", "{model}", "{tmp}/out", code=2, match="already in the converted form")


@pytest.mark.parametrize("id,args,code,match", CLI_CASES, ids=[c[0] for c in CLI_CASES])
def test_cli_case(ctx, capsys, id, args, code, match):
    if id == "cli-model-nan":
        damaged_copy(ctx, poison("predictor", float("nan"))).rename(ctx.tmp / "nan-model")
    words = ctx.file("words.tsv", "text\tstart\tduration\nhi\t0.2\t0.3\n")
    before = words.read_bytes()
    cli_run(*args, expect_code=code)(ctx)
    captured = capsys.readouterr()
    assert re.search(match, captured.err), captured.err
    assert "Traceback" not in captured.err
    assert words.read_bytes() == before  # no input is ever written over


# -- the environment (injected faults; real ones: test_environment_faults.py) ----------------------------------------
def inject(monkeypatch_target: str, error: int):
    """Replace ``module.attr`` by a function raising OSError(errno) for the duration of the call."""

    def decorate(run):
        def wrapped(c):
            module_name, attr = monkeypatch_target.rsplit(".", 1)
            owner = _resolve(module_name)
            original = getattr(owner, attr)

            def fail(*a, **k):
                raise OSError(error, os_strerror(error))

            setattr(owner, attr, fail)
            try:
                return run(c)
            finally:
                setattr(owner, attr, original)

        return wrapped

    return decorate


def _resolve(dotted: str):
    import importlib

    parts = dotted.split(".")
    for i in range(len(parts), 0, -1):
        try:
            owner = importlib.import_module(".".join(parts[:i]))
        except ImportError:
            continue
        for name in parts[i:]:
            owner = getattr(owner, name)
        return owner
    raise ImportError(dotted)


def os_strerror(code: int) -> str:
    import os

    return os.strerror(code)


def features_cache_write(c):
    from tribev2.features.cache import cached_array

    return cached_array("text", {"k": str(c.tmp)}, lambda: np.ones(3), root=c.tmp / "cache")


case(
    "env-enospc-netcdf",
    inject("pathlib.Path.write_bytes", errno.ENOSPC)(lambda c: tribev2.save_dataset(prediction(c), c.tmp / "full.nc")),
    WriteError,
    r"full\.nc: the disk is full",
)
case(
    "env-erofs-zarr",
    inject("xarray.Dataset.to_zarr", errno.EROFS)(lambda c: tribev2.save_dataset(prediction(c), c.tmp / "ro.zarr")),
    WriteError,
    r"ro\.zarr: the file system is read-only",
)
case(
    "env-eacces-netcdf",
    inject("pathlib.Path.write_bytes", errno.EACCES)(
        lambda c: tribev2.save_dataset(prediction(c), c.tmp / "denied.nc")
    ),
    WriteError,
    r"denied\.nc: permission denied",
)
case(
    "env-edquot-netcdf",
    inject("pathlib.Path.write_bytes", errno.EDQUOT)(lambda c: tribev2.save_dataset(prediction(c), c.tmp / "quota.nc")),
    WriteError,
    r"quota\.nc: the disk quota",
)
case(
    "env-enospc-features-cache",
    inject("pathlib.Path.write_bytes", errno.ENOSPC)(features_cache_write),
    WriteError,
    r"features/text/.*\.npy.*the disk is full",
)
case(
    "env-erofs-features-cache",
    inject("tempfile.mkdtemp", errno.EROFS)(features_cache_write),
    WriteError,
    r"features/text/.*read-only",
)
case(
    "env-enospc-save-pretrained",
    inject("safetensors.torch.save_file", errno.ENOSPC)(lambda c: c.model.save_pretrained(c.tmp / "saved-model")),
    WriteError,
    r"saved-model: the disk is full",
)
case(
    "env-enospc-tts-cache",
    lambda c: tribev2.events.synthesize("hi", engine=_full_engine, cache_dir=c.tmp / "cache"),
    WriteError,
    r"speech\.wav.*the disk is full",
)
case(
    "env-digest-memo-read-only",
    inject("tempfile.mkdtemp", errno.EROFS)(
        lambda c: tribev2.cache.file_sha256(c.file("data.bin", b"abc"), c.tmp / "ro-cache")
    ),
    check=lambda digest, c: digest == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
)
case(
    "env-other-oserror-is-not-disguised",
    inject("pathlib.Path.write_bytes", errno.EIO)(lambda c: tribev2.save_dataset(prediction(c), c.tmp / "io.nc")),
    OSError,
    "Input/output error",
)


def _full_engine(text, wav_path, language):
    raise OSError(errno.ENOSPC, "No space left on device")


# -- the file-digest memo: content, not names ---------------------------------------------------------------------
def rewritten_in_place(c):
    import os

    from tribev2.cache import file_sha256

    path = c.file("clip.bin", b"A" * 1000)
    first = file_sha256(path, c.tmp / "cache")
    stat = path.stat()
    path.write_bytes(b"B" * 1000)  # same size
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # same mtime, as cp -p / rsync -t leave it
    return first, file_sha256(path, c.tmp / "cache")


def replaced_by_rename(c):
    import os

    from tribev2.cache import file_sha256

    path = c.file("clip.bin", b"A" * 1000)
    first = file_sha256(path, c.tmp / "cache")
    stat = path.stat()
    other = c.file("new.bin", b"C" * 1000)
    os.utime(other, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    os.replace(other, path)  # unpacking an archive: a new inode at the same path, same size and mtime
    return first, file_sha256(path, c.tmp / "cache")


case("memo-rewritten-same-size-mtime", rewritten_in_place, check=lambda pair, c: pair[0] != pair[1])
case("memo-replaced-same-size-mtime", replaced_by_rename, check=lambda pair, c: pair[0] != pair[1])
case(
    "memo-unchanged-file",
    lambda c: (
        tribev2.cache.file_sha256(c.file("a.bin", b"x"), c.tmp),
        tribev2.cache.file_sha256(c.tmp / "a.bin", c.tmp),
    ),
    check=lambda pair, c: pair[0] == pair[1],
)

# -- numbers -------------------------------------------------------------------------------------------------------
for value, ok in (
    (np.float32(2.5), True),
    (np.int8(3), True),
    (2, True),
    (True, False),
    ("2", False),
    (float("nan"), False),
    (None, False),
    (np.array(2.0), False),
    (complex(1, 1), False),
):
    label = f"number-{type(value).__name__}-{value!r}".replace(" ", "")
    if ok:
        case(label, lambda c, v=value: real_number(v, "x", positive=True), check=lambda r, c, v=value: r == float(v))
    else:
        case(label, lambda c, v=value: real_number(v, "x", positive=True), ValueError, r"x=")


# -- the network: any exception class of the hub client is one clear message ---------------------------------------
def _hub_raising(error: BaseException, *, serving: tuple[str, ...] = ()):
    """``load_model`` from a hub whose downloads raise ``error``, but for the files named in ``serving``."""

    def run(c):
        import huggingface_hub

        original = huggingface_hub.hf_hub_download

        def broken(repo_id, filename, **kwargs):
            if filename in serving:
                path = c.tmp / "hub" / filename
                path.parent.mkdir(exist_ok=True)
                path.write_text("{}")
                return str(path)
            raise error

        huggingface_hub.hf_hub_download = broken
        try:
            return tribev2.load_model("someone/some-model")
        finally:
            huggingface_hub.hf_hub_download = original

    return run


def _httpx_errors():
    import httpx

    return [
        ("connect", httpx.ConnectError("[Errno 111] Connection refused")),
        ("proxy", httpx.ProxyError("407 Proxy Authentication Required")),
        ("timeout", httpx.ReadTimeout("timed out")),
        ("protocol", httpx.RemoteProtocolError("peer closed connection")),
    ]


for label, network_error in _httpx_errors() + [
    ("ssl", __import__("ssl").SSLError("certificate verify failed")),
    ("socket", TimeoutError("timed out")),
]:
    case(
        f"hub-{label}-error",
        _hub_raising(network_error),
        FileNotFoundError,
        r"someone/some-model: the Hugging Face Hub cannot be reached",
    )
case(
    "hub-drops-after-the-config",
    _hub_raising(__import__("httpx").ReadTimeout("timed out"), serving=("config.yaml",)),
    FileNotFoundError,
    r"someone/some-model: the Hugging Face Hub cannot be reached \(ReadTimeout: timed out\) and best.ckpt is not",
)
case("hub-bug-is-not-disguised", _hub_raising(KeyError("a bug")), KeyError, "a bug")


@pytest.mark.parametrize("row", CASES, ids=[c.id for c in CASES])
def test_case(ctx, row: Case):
    if row.error is None:
        result = row.run(ctx)
        assert row.check(result, ctx), f"{row.id}: wrong result {result!r}"
        return
    with pytest.raises(row.error) as caught:
        row.run(ctx)
    assert re.search(row.match, str(caught.value)), f"{row.id}: {type(caught.value).__name__}: {caught.value}"
    assert "Traceback" not in str(caught.value)


def test_the_table_is_large_enough():
    assert len(CASES) + len(CLI_CASES) >= 150, len(CASES) + len(CLI_CASES)
    assert len({c.id for c in CASES} | {c[0] for c in CLI_CASES}) == len(CASES) + len(CLI_CASES)


def test_doctor_survives_any_hub_exception(monkeypatch, capsys):
    import huggingface_hub

    class ProxyError(Exception):  # not an OSError, not an HfHubHTTPError: what httpx/requests may raise
        pass

    def broken(repo):
        raise ProxyError("tunnel connection failed")

    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(huggingface_hub, "auth_check", broken)
    code = cli.main(["doctor"])
    out = capsys.readouterr().out
    assert code in (0, 1) and "not reachable (ProxyError: tunnel connection failed)" in out


def test_doctor_survives_a_crashing_check(monkeypatch, capsys):
    def boom():
        raise RuntimeError("broken install")
        yield

    monkeypatch.setattr(cli, "_check_chromium", boom)
    code = cli.main(["doctor"])
    out = capsys.readouterr().out
    assert code == 1 and "boom: the check failed: RuntimeError: broken install" in out
    assert "Hugging Face" in out  # the checks after it still ran
