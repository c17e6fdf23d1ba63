"""What a media file holds (duration, frame rate, sample rate) and its soundtrack as a WAV in the cache (PyAV).

Durations are what ffmpeg reports for the container, to the nearest 10 ms (the value the reference reads through
moviepy) for video, and the exact sample count over the rate for audio files that libsndfile reads.
"""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path

import numpy as np

from ..cache import atomic_path, cache_dir

VIDEO_SUFFIXES = (".mp4", ".avi", ".mkv", ".mov", ".webm", ".m4v")
AUDIO_SUFFIXES = (".wav", ".mp3", ".flac", ".ogg", ".m4a", ".aac", ".opus")
TEXT_SUFFIXES = (".txt",)
_SOUNDFILE_SUFFIXES = (".wav", ".mp3", ".flac", ".ogg")  # read as they are by the audio features


class MediaError(ValueError):
    """A media file that cannot be used: unsupported, unreadable, corrupt, or lacking what is needed."""


@dataclasses.dataclass(frozen=True)
class MediaInfo:
    path: Path
    duration_s: float
    has_video: bool
    frame_rate: float | None  # frames per second
    has_audio: bool
    sample_rate: int | None  # Hz


def file_sha256(path: str | Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def probe(path: str | Path) -> MediaInfo:
    """Read a media file's streams and duration, or raise :class:`MediaError` naming the file."""
    import av

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    if path.suffix.lower() in _SOUNDFILE_SUFFIXES:
        info = _soundfile_info(path)
        if info is not None:
            return info
    try:
        with av.open(str(path)) as container:
            video = container.streams.video[0] if container.streams.video else None
            audio = container.streams.audio[0] if container.streams.audio else None
            duration = _container_duration(container)
            rate = float(video.average_rate or video.guessed_rate or 0) if video is not None else None
            return MediaInfo(path, duration, video is not None, rate or None, audio is not None,
                             audio.rate if audio is not None else None)
    except (av.error.FFmpegError, IndexError) as err:
        raise MediaError(f"{path}: cannot be read as audio/video ({err}); is the file complete and a "
                         f"supported format?") from None


def _soundfile_info(path: Path) -> MediaInfo | None:
    import soundfile

    try:
        info = soundfile.info(str(path))
    except (RuntimeError, soundfile.LibsndfileError):
        return None  # let PyAV try (and report the error)
    if info.frames <= 0:
        raise MediaError(f"{path}: the audio file holds no samples")
    return MediaInfo(path, info.frames / info.samplerate, False, None, True, int(info.samplerate))


def _container_duration(container) -> float:
    """ffmpeg's container duration rounded to 10 ms (as ``ffmpeg -i`` prints it, and moviepy reads it)."""
    micros = container.duration
    if micros is None or micros <= 0:
        raise MediaError(f"{container.name}: the container does not say how long it is")
    return float((micros + 5000) // 10000) / 100


def soundtrack(info: MediaInfo) -> Path:
    """A WAV the audio features can read: the file itself when it is WAV/FLAC/MP3/OGG audio, else its audio track
    decoded once into the cache (16-bit PCM at the track's own rate and channels)."""
    if not info.has_audio:
        raise MediaError(f"{info.path}: has no audio track")
    if not info.has_video and info.path.suffix.lower() in _SOUNDFILE_SUFFIXES and _soundfile_info(info.path):
        return info.path
    target = cache_dir("audio") / file_sha256(info.path)[:24] / f"{info.path.stem}.wav"
    if target.is_file():
        return target
    with atomic_path(target) as tmp:
        _decode_to_wav(info.path, tmp)
    return target


def _decode_to_wav(source: Path, target: Path) -> None:
    import av
    import soundfile

    try:
        with av.open(str(source)) as container:
            stream = container.streams.audio[0]
            channels = stream.codec_context.channels or 1
            resampler = av.AudioResampler(format="s16", layout=stream.layout.name, rate=stream.rate)
            with soundfile.SoundFile(str(target), "w", samplerate=stream.rate, channels=channels,
                                     subtype="PCM_16", format="WAV") as out:
                for frame in container.decode(stream):
                    for converted in resampler.resample(frame):
                        out.write(converted.to_ndarray().reshape(-1, channels).astype(np.int16, copy=False))
                for converted in resampler.resample(None):
                    out.write(converted.to_ndarray().reshape(-1, channels).astype(np.int16, copy=False))
    except av.error.FFmpegError as err:
        raise MediaError(f"{source}: the audio track cannot be decoded ({err}); is the file complete?") from None
