"""Text to speech, for text stimuli: the reference reads text aloud (gTTS, online) and then transcribes the
speech to get word timings. Here the default engine is the local ``espeak-ng`` program; any other engine is a
function ``engine(text, wav_path, language)`` that writes a WAV, passed as ``tts=`` or registered in
:data:`TTS_ENGINES`. Results are cached under ``<cache root>/tts/``.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

from ..cache import atomic_path
from ..cache import cache_dir as cache_folder
from .asr import ModelUnavailableError
from .language import language_code

SpeechEngine = Callable[[str, Path, str], None]


def espeak_ng(text: str, wav_path: Path, language: str, *, words_per_minute: int = 160) -> None:
    """Speak ``text`` with espeak-ng into ``wav_path`` (22,050 Hz mono)."""
    program = shutil.which("espeak-ng")
    if program is None:
        raise ModelUnavailableError(
            "the text-to-speech program espeak-ng is not installed: install it "
            "(`apt-get install espeak-ng`, `brew install espeak-ng`) or pass tts=<engine>"
        )
    text_file = wav_path.with_suffix(".txt")
    text_file.write_text(text, encoding="utf-8")
    run = subprocess.run(
        [
            program,
            "-v",
            language_code(language),
            "-s",
            str(words_per_minute),
            "-w",
            str(wav_path),
            "-f",
            str(text_file),
        ],
        capture_output=True,
        text=True,
    )
    text_file.unlink()
    if run.returncode != 0 or not wav_path.is_file():
        raise RuntimeError(f"espeak-ng failed (exit {run.returncode}): {run.stderr.strip()}")


TTS_ENGINES: dict[str, SpeechEngine] = {"espeak-ng": espeak_ng}


def synthesize(
    text: str,
    *,
    language: str = "english",
    engine: str | SpeechEngine = "espeak-ng",
    name: str = "speech",
    cache_dir: str | os.PathLike | None = None,
) -> Path:
    """A WAV of ``text`` read aloud, made once per (text, engine, language) and cached under ``cache_dir``
    (the cache root; default ``$TRIBEV2_CACHE``)."""
    if not text.strip():
        raise ValueError("there is no text to read aloud")
    speak = TTS_ENGINES.get(engine) if isinstance(engine, str) else engine
    if speak is None:
        raise ValueError(
            f"unknown text-to-speech engine {engine!r}; known: {', '.join(TTS_ENGINES)} "
            f"(or pass a function engine(text, wav_path, language))"
        )
    label = engine if isinstance(engine, str) else f"{speak.__module__}.{getattr(speak, '__qualname__', speak)}"
    key = hashlib.sha256(json.dumps([text, label, language_code(language)]).encode()).hexdigest()[:24]
    target = cache_folder("tts", cache_dir) / key / f"{name}.wav"
    if not target.is_file():
        with atomic_path(target) as tmp:
            speak(text, tmp, language)
    return target
