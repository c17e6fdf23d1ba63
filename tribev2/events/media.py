"""Which files are stimuli, their content hash, and a video's soundtrack as a WAV in the cache.

Decoding and probing are :mod:`tribev2.media`'s (PyAV, soundfile); this module adds what the events need.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..cache import atomic_path, file_sha256
from ..cache import cache_dir as cache_folder
from ..media import SOUNDFILE_SUFFIXES, MediaError, MediaInfo, read_audio

VIDEO_SUFFIXES = (".mp4", ".avi", ".mkv", ".mov", ".webm", ".m4v")
AUDIO_SUFFIXES = (".wav", ".mp3", ".flac", ".ogg", ".m4a", ".aac", ".opus")
TEXT_SUFFIXES = (".txt",)
# The reference extracts a video's audio with moviepy, which asks ffmpeg for 16-bit PCM at 44.1 kHz in stereo.
# The audio model's input depends on these samples (a mono track upmixed to stereo is scaled, then rounded).
SOUNDTRACK_RATE = 44100
SOUNDTRACK_CHANNELS = 2


def cache_stem(path: str | Path, max_bytes: int = 96) -> str:
    """``path``'s stem, cut to ``max_bytes`` of UTF-8, to name a cache entry after it: the entry (plus a key and
    the temporary name of an atomic write) must stay within the 255-byte file-name limit, which a long
    non-ASCII name alone nearly reaches."""
    return Path(path).stem.encode("utf-8", "surrogateescape")[:max_bytes].decode("utf-8", "ignore") or "stimulus"


def soundtrack(info: MediaInfo, cache_dir: str | os.PathLike | None = None) -> Path:
    """A WAV the audio features can read: the file itself for WAV/FLAC/MP3/OGG audio, else its audio track
    decoded once into the cache exactly as the reference's extraction writes it: 16-bit PCM, 44.1 kHz, stereo,
    through FFmpeg's resampler (bit-identical to the reference's file on the end-to-end fixture). ``cache_dir``:
    the cache root (default ``$TRIBEV2_CACHE``)."""
    import soundfile

    if not info.has_audio:
        raise MediaError(f"{info.path}: has no audio track")
    if not info.has_video and info.path.suffix.lower() in SOUNDFILE_SUFFIXES:
        return info.path
    target = cache_folder("audio", cache_dir) / file_sha256(info.path, cache_dir)[:24] / f"{cache_stem(info.path)}.wav"
    if not target.is_file():
        samples, rate = read_audio(info.path, sample_rate=SOUNDTRACK_RATE, channels=SOUNDTRACK_CHANNELS, dtype="int16")
        samples = _padded_to(samples, info.duration, rate)
        with atomic_path(target) as tmp:
            soundfile.write(str(tmp), samples, rate, subtype="PCM_16", format="WAV")
    return target


SHORT_TRACK_TOLERANCE_S = 0.1  # above container-duration rounding and codec priming


def _padded_to(samples: np.ndarray, duration: float, rate: int) -> np.ndarray:
    """Silence appended to an audio track that ends well before its container (an Audio event lasts the
    whole video: a shorter track would be stretched over it by the audio features)."""
    missing = round(duration * rate) - len(samples)
    if missing <= SHORT_TRACK_TOLERANCE_S * rate:
        return samples
    return np.concatenate([samples, np.zeros((missing, samples.shape[1]), dtype=samples.dtype)])
