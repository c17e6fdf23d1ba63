"""``events_from``: a video, audio, text or transcript file (or an events table) -> the events table.

The steps follow the reference's demo pipeline, with its long-input timing bug fixed:

1. a Video row (video files) and an Audio row (the file itself, the video's soundtrack decoded into the cache,
   or speech synthesised from a text file), both starting at 0;
2. Audio/Video rows cut in 60-s chunks (:mod:`tribev2.events.chunks`);
3. words with timings, from ``transcript=`` or from speech recognition, added **once per file at their true
   time** (the reference adds them once per chunk, shifted; PR #29's proposed fix duplicates them instead);
4. the Text row, Sentence rows and per-word ``sentence``/``context`` (:mod:`tribev2.events.language`).
"""

from __future__ import annotations

import io
import os
import warnings
from pathlib import Path

import pandas as pd

from ..checks import user_path
from ..media import MediaError, check_finite_audio, probe
from .alignment import POOR_ALIGNMENT, align_to_text
from .asr import check_whisper_model, transcribe
from .chunks import chunk_media
from .language import add_text_events, language_code
from .media import AUDIO_SUFFIXES, TEXT_SUFFIXES, VIDEO_SUFFIXES, cache_stem, soundtrack
from .table import EVENT_COLUMNS, NUMERIC_COLUMNS, check_events, check_timeline, make_table, media_row
from .transcripts import TRANSCRIPT_SUFFIXES, read_text_file, read_transcript, words_from_table
from .tts import SpeechEngine, synthesize

EVENTS_SUFFIXES = (".parquet",)  # plus .tsv/.csv files with a 'type' column
RECOGNISED_SUFFIXES = VIDEO_SUFFIXES + AUDIO_SUFFIXES + TEXT_SUFFIXES  # their words come from speech recognition


def events_from(
    stimulus: str | os.PathLike | pd.DataFrame | None,
    *,
    transcript: str | os.PathLike | pd.DataFrame | None = None,
    language: str = "english",
    asr_model: str | os.PathLike | None = None,
    tts: str | SpeechEngine = "espeak-ng",
    keep_text: bool = True,
    device: str = "auto",
    progress: bool = False,
    cache_dir: str | os.PathLike | None = None,
) -> pd.DataFrame:
    """Build the events table of a stimulus (see :mod:`tribev2.events.table` for its columns).

    ``stimulus``: a video (.mp4 .avi .mkv .mov .webm .m4v), an audio file (.wav .mp3 .flac .ogg .m4a .aac
    .opus), a text file (.txt: read aloud with ``tts``, then transcribed, as the reference does), a transcript
    (.json .tsv .csv .srt .vtt: words only), an events table (DataFrame, .parquet, or .tsv/.csv with a
    ``type`` column), or None with ``transcript=``. Text files are UTF-8, or UTF-16/32 with a byte-order mark
    (:func:`tribev2.events.transcripts.read_text_file`); a float WAV with NaN or infinite samples is refused.
    ``transcript``: words with timings for the stimulus' speech (a file, see
    :func:`tribev2.events.read_transcript`, or a words DataFrame); skips speech recognition.
    ``language``: the speech's language (English by default, as the reference); ``asr_model``: the Whisper
    model (see :mod:`tribev2.events.asr`); ``tts``: the text-to-speech engine for text files; ``keep_text``
    (text files): the words are the text's own, timed by aligning the recognised words to them
    (:mod:`tribev2.events.alignment`; a warning when they align poorly); ``False`` keeps the recognised words,
    as the reference does. Soundtracks,
    speech and transcripts are cached under ``cache_dir`` (the cache root; default ``$TRIBEV2_CACHE``).
    """
    if isinstance(stimulus, pd.DataFrame):
        _refuse_transcript(transcript, "an events table")
        return _complete(check_events(stimulus, source="events table"), language)
    language_code(language)  # a bad language fails before any decoding or recognition
    if not isinstance(stimulus, (str, os.PathLike, type(None))):
        raise TypeError(f"stimulus={stimulus!r}: expected a file path, an events table (DataFrame) or None")
    if stimulus is None:
        if transcript is None:
            raise ValueError("give a stimulus file, an events table, or transcript=")
        return _with_words([], _transcript_words(transcript), language, source=_name(transcript))
    path = user_path(stimulus)
    if not path.is_file():
        raise FileNotFoundError(f"stimulus {path}: no such file")
    check_recognition(path, transcript, asr_model)
    suffix = path.suffix.lower()
    if suffix in EVENTS_SUFFIXES or (suffix in (".tsv", ".csv") and _has_type_column(path)):
        _refuse_transcript(transcript, f"the events table {path}")
        return _complete(check_events(_read_table(path), source=str(path)), language)
    if suffix in TRANSCRIPT_SUFFIXES:
        _refuse_transcript(transcript, f"the transcript {path}")
        return _with_words([], _transcript_words(path), language, source=f"transcript {path}")
    if suffix in TEXT_SUFFIXES:
        text = read_text_file(path, "stimulus")
        if not text.strip():
            raise ValueError(f"stimulus {path}: the text file is empty; write the text to read aloud in it")
        audio = probe(synthesize(text, language=language, engine=tts, name=cache_stem(path), cache_dir=cache_dir))
        media = [media_row("Audio", audio.path, duration=audio.duration, frequency=audio.sample_rate)]
    elif suffix in VIDEO_SUFFIXES or suffix in AUDIO_SUFFIXES:
        text = None
        info = probe(path)
        check_finite_audio(path)  # NaN samples would make every feature NaN: refused before any decoding
        media = _media_rows(info, suffix in VIDEO_SUFFIXES, cache_dir)
    else:
        raise ValueError(
            f"stimulus {path}: unsupported file type {suffix or '(no suffix)'!r}; expected a video "
            f"({' '.join(VIDEO_SUFFIXES)}), audio ({' '.join(AUDIO_SUFFIXES)}), text (.txt), a "
            f"transcript ({' '.join(TRANSCRIPT_SUFFIXES)}) or an events table (.parquet)"
        )
    audio_rows = [row for row in media if row["type"] == "Audio"]
    if transcript is not None:
        words = _transcript_words(transcript, media_duration=max(row["duration"] for row in media))
        if words.empty:
            warnings.warn(
                f"{_name(transcript)} has no timed words: the events of {path} have no words, so text "
                f"features will be empty",
                stacklevel=2,
            )
    elif audio_rows:
        words = transcribe(
            audio_rows[0]["filepath"],
            language=language,
            model=asr_model,
            device=device,
            progress=progress,
            cache_dir=cache_dir,
        )
        if words.empty:
            warnings.warn(
                f"no speech was recognised in {path}: the events have no words, so text features "
                f"will be empty. If it has speech, pass transcript= (or another asr_model=).",
                stacklevel=2,
            )
        elif text is not None and keep_text:
            words = _text_words(text, words, path)
    else:
        words = pd.DataFrame()
    return _with_words(media, words, language)


def check_recognition(stimulus, transcript=None, asr_model: str | os.PathLike | None = None) -> None:
    """Before any slow work: where the words of ``stimulus`` will be recognised (a media or text file given with
    no transcript), that ``asr_model`` names a Whisper model that can be loaded (:func:`check_whisper_model`)."""
    path = user_path(stimulus)
    if transcript is None and isinstance(path, Path) and path.suffix.lower() in RECOGNISED_SUFFIXES:
        check_whisper_model(asr_model)


def _media_rows(info, is_video: bool, cache_dir) -> list[dict]:
    rows = []
    if is_video and not info.has_video and info.has_audio:  # a podcast saved as .mp4, say: heard, not seen
        warnings.warn(
            f"{info.path} has no video stream: only its sound will be used (audio features and words)", stacklevel=3
        )
        is_video = False
    if is_video:
        if not info.has_video:
            raise MediaError(f"{info.path}: has neither a video nor an audio stream")
        rows.append(media_row("Video", info.path, duration=info.duration, frequency=info.fps))
        if not info.has_audio:
            warnings.warn(
                f"{info.path} has no audio track: only video features will be computed (no audio, no words)",
                stacklevel=3,
            )
            return rows
    if info.audio_streams > 1:  # a film with several languages, say: one is heard
        warnings.warn(
            f"{info.path} has {info.audio_streams} audio tracks: the first is used (extract another to a .wav "
            f"to use it)",
            stacklevel=3,
        )
    if info.has_audio:
        wav = soundtrack(info, cache_dir)
        rate = probe(wav).sample_rate
        rows.insert(0, media_row("Audio", wav, duration=info.duration, frequency=rate))
    elif not is_video:
        raise MediaError(f"{info.path}: has no audio stream")
    return rows


def _text_words(text: str, recognised: pd.DataFrame, path: Path) -> pd.DataFrame:
    """The words of ``text`` (the file ``path``) timed by the ``recognised`` words of it read aloud."""
    words, matched = align_to_text(recognised, text)
    if matched < POOR_ALIGNMENT:
        warnings.warn(
            f"{path}: only {matched:.0%} of its words were recognised in the speech read aloud, so their "
            f"times are rough (interpolated); check the language= or pass keep_text=False to see what "
            f"was recognised",
            stacklevel=3,
        )
    return words_from_table(words, source=str(path))  # the normalisation of any words table (quotes, empty words)


def _transcript_words(transcript, media_duration: float | None = None) -> pd.DataFrame:
    """The words of a transcript file or table, each at or after 0 s, ending after it starts and, with
    ``media_duration``, not after the media's end (:func:`check_timeline`)."""
    if isinstance(transcript, pd.DataFrame):
        words = words_from_table(transcript, source="transcript table")
    else:
        words = read_transcript(transcript)
    return check_timeline(words, source=_name(transcript), what="word", media_duration=media_duration)


def _with_words(
    media: list[dict], words: pd.DataFrame, language: str, *, source: str = "the transcript"
) -> pd.DataFrame:
    """Media rows (chunked) + the words at their file time (every media row starts at 0, file time 0) with
    their Text/Sentence rows."""
    if not media and words.empty:
        raise ValueError(f"{source} has no timed words (each word needs a start and an end)")
    events = chunk_media(make_table(media)) if media else make_table([])
    if words.empty:
        return events
    text_events = add_text_events(make_table(words.assign(type="Word").to_dict("records")), language=language)
    return make_table(events.to_dict("records") + text_events.to_dict("records"))


def _complete(events: pd.DataFrame, language: str) -> pd.DataFrame:
    """An events table given by the user: add Text/Sentence rows and contexts when its words lack them."""
    words = events[events["type"] == "Word"]
    if words.empty or words["context"].notna().all() and (words["context"].astype(str) != "").all():
        return events
    rest = events[~events["type"].isin(["Word", "Text", "Sentence"])]
    return make_table(rest.to_dict("records") + add_text_events(words, language=language).to_dict("records"))


def _refuse_transcript(transcript, stimulus: str) -> None:
    """``transcript=`` is the words of a media file: with a stimulus that has its words already, it would be
    silently ignored."""
    if transcript is not None:
        raise ValueError(
            f"transcript= ({_name(transcript)}) gives the words of a video, audio or text file; the "
            f"stimulus, {stimulus}, has its words already (pass one or the other)"
        )


def _name(transcript) -> str:
    return "the transcript table" if isinstance(transcript, pd.DataFrame) else f"transcript {transcript}"


def _has_type_column(path: Path) -> bool:
    try:
        header = read_text_file(path, "stimulus").partition("\n")[0]
    except ValueError:  # undecodable: the reader of its kind (events table or transcript) says so
        header = path.read_bytes().partition(b"\n")[0].decode("utf-8", errors="replace")
    return "type" in [c.strip().strip('"').lower() for c in header.replace("\t", ",").split(",")]


def _read_table(path: Path) -> pd.DataFrame:
    parquet = path.suffix.lower() == ".parquet"
    text = None if parquet else read_text_file(path, "events table")
    try:
        if parquet:
            return pd.read_parquet(path)
        # only empty cells are missing: words such as "None", "NA" or "null" stay words, and text columns stay
        # text ("0" or "1999" is a word, not a number)
        text_columns = {c: str for c in EVENT_COLUMNS if c not in NUMERIC_COLUMNS}
        return pd.read_csv(
            io.StringIO(text),
            sep="\t" if path.suffix.lower() == ".tsv" else ",",
            keep_default_na=False,
            na_values=[""],
            dtype=text_columns,
        )
    except (ValueError, OSError) as err:  # pyarrow's and pandas' parse errors
        raise ValueError(f"events table {path}: cannot be read ({type(err).__name__}: {err})") from None
