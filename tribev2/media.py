"""Decode and probe media files: PyAV for containers (video frames, audio tracks), soundfile for WAV/FLAC/MP3/OGG.

Functions, no state:

* :func:`probe` tells what a file holds (duration, video stream, audio stream) or raises a clear error;
* :func:`read_audio` returns a waveform ``(samples, channels)`` from an audio file or a container's audio track,
  optionally resampled and re-channelled by FFmpeg's resampler (what the ``ffmpeg`` command line does), and
  refuses samples that are not numbers; :func:`check_finite_audio` looks for them in a whole file first;
* :func:`iter_frames` streams RGB frames with their index, where frame ``k`` is shown at ``k / fps`` (the
  constant-rate convention of moviepy, which the reference used), upright as players show them (the stream's
  display rotation applied, as the ``ffmpeg`` command line under moviepy does); :func:`frame_index` maps times
  to indices the same way.

torchvision and torchaudio are not used: they do not import beside torch 2.13 here.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import math
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np

# soundfile reads these directly (libsndfile); anything else goes through PyAV (FFmpeg).
SOUNDFILE_SUFFIXES = (".wav", ".flac", ".mp3", ".ogg", ".aiff", ".aif")
FLOAT_SUBTYPES = ("FLOAT", "DOUBLE")  # the sample formats that can hold NaN or infinity


class MediaError(ValueError):
    """A media file that is missing, unreadable, or lacks the stream asked for."""


@dataclasses.dataclass(frozen=True)
class MediaInfo:
    """What :func:`probe` finds in a file. Durations are in seconds."""

    path: Path
    duration: float  # of the container as FFmpeg prints it (10-ms steps), or samples / rate for soundfile formats
    fps: float | None = None  # average frame rate of the first video stream
    n_frames: int | None = None  # as the container's header states it (may be absent or approximate)
    width: int | None = None  # as coded, before any display rotation (phone videos: see iter_frames)
    height: int | None = None
    sample_rate: int | None = None  # of the first audio stream
    channels: int | None = None
    audio_streams: int = 0  # how many the file holds (the first is the one read)

    @property
    def has_video(self) -> bool:
        return self.fps is not None

    @property
    def has_audio(self) -> bool:
        return self.sample_rate is not None


def _existing(path: str | os.PathLike) -> Path:
    path = Path(path).expanduser()
    if not path.is_file():
        raise MediaError(f"{path}: no such file")
    return path


def _open_container(path: Path):
    import av

    try:
        return av.open(str(path))
    except (av.error.FFmpegError, OSError) as err:  # InvalidDataError, ...
        raise MediaError(f"{path}: cannot be read as a media file ({err})") from err


def probe(path: str | os.PathLike) -> MediaInfo:
    """Duration and streams of a media file; raises :class:`MediaError` if it cannot be decoded."""
    path = _existing(path)
    if path.suffix.lower() in SOUNDFILE_SUFFIXES:
        import soundfile

        try:
            info = soundfile.info(str(path))
        except (soundfile.LibsndfileError, RuntimeError) as err:
            raise MediaError(f"{path}: cannot be read as audio ({err})") from err
        return MediaInfo(
            path=path,
            duration=info.frames / info.samplerate,
            sample_rate=info.samplerate,
            channels=info.channels,
            audio_streams=1,
        )
    with _open_container(path) as container:
        video = container.streams.video[0] if container.streams.video else None
        audio = container.streams.audio[0] if container.streams.audio else None
        if container.duration is not None:
            # as `ffmpeg -i` prints it (and moviepy reads it): rounded to 10 ms
            duration = (container.duration + 5000) // 10000 / 100
        else:
            duration = max((float(s.duration * s.time_base) for s in (video, audio) if s and s.duration), default=0.0)
        if duration <= 0:
            raise MediaError(f"{path}: the file does not say how long it is")
        fields = {}
        if video is not None:
            fields.update(
                fps=_frame_rate(video, path),
                n_frames=video.frames or None,
                width=video.codec_context.width,
                height=video.codec_context.height,
            )
        if audio is not None:
            fields.update(
                sample_rate=audio.codec_context.sample_rate,
                channels=audio.codec_context.channels,
                audio_streams=len(container.streams.audio),
            )
    return MediaInfo(path=path, duration=duration, **fields)


def check_finite_audio(path: str | os.PathLike, block_s: float = 60.0) -> None:
    """A :class:`MediaError` when an audio file of floating-point samples (a WAV, AIFF... read by soundfile) holds
    a NaN or an infinity, which would make its features NaN; read ``block_s`` seconds at a time. Files of
    integer or compressed samples cannot hold them and are not read."""
    import soundfile

    path = _existing(path)
    if path.suffix.lower() not in SOUNDFILE_SUFFIXES:
        return
    try:
        info = soundfile.info(str(path))
        if info.subtype not in FLOAT_SUBTYPES:
            return
        block = max(1, round(block_s * info.samplerate))
        for index, samples in enumerate(soundfile.blocks(str(path), blocksize=block, dtype="float64", always_2d=True)):
            _refuse_non_finite(path, samples, info.samplerate, first=index * block)
    except (soundfile.LibsndfileError, RuntimeError) as err:
        raise MediaError(f"{path}: cannot be read as audio ({err})") from err


def _refuse_non_finite(path: Path, wav: np.ndarray, rate: int, first: int = 0) -> np.ndarray:
    """``wav`` ``(samples, channels)`` (its first sample at index ``first`` of the file), or a :class:`MediaError`
    naming the time of the first sample that is NaN or infinite."""
    bad = ~np.isfinite(wav).all(axis=1)
    if bad.any():
        at = (first + int(np.argmax(bad))) / rate
        raise MediaError(
            f"{path}: holds audio samples that are not numbers (NaN or infinity), the first at {at:.3f} s; "
            f"repair or re-export the audio"
        )
    return wav


def _frame_rate(stream, path: Path) -> float:
    rate = stream.average_rate or stream.guessed_rate or stream.base_rate
    if not rate:
        raise MediaError(f"{path}: the video stream states no frame rate")
    return float(rate)


def read_audio(
    path: str | os.PathLike,
    *,
    offset: float = 0.0,
    duration: float | None = None,
    sample_rate: int | None = None,
    channels: int | None = None,
    dtype: str = "float32",
) -> tuple[np.ndarray, int]:
    """Waveform ``(samples, channels)`` and its sample rate, from ``offset`` for ``duration`` seconds.

    WAV/FLAC/MP3/OGG files at their own rate are read with soundfile (16-bit PCM as ``int / 32768``), only the
    span asked for. Other
    containers (MP4, MKV, ...), or a requested ``sample_rate``/``channels``, go through FFmpeg's resampler,
    as ``ffmpeg -ar RATE -ac CHANNELS`` would. ``dtype="int16"`` returns raw 16-bit PCM (what the ffmpeg command
    line writes into a WAV file); the default is float32 in [-1, 1).
    """
    path = _existing(path)
    if dtype not in ("float32", "int16"):
        raise ValueError(f"dtype must be 'float32' or 'int16', got {dtype!r}")
    if not (math.isfinite(offset) and offset >= 0):
        raise ValueError(f"{path}: offset must be a non-negative number of seconds, got {offset!r}")
    if duration is not None and not (math.isfinite(duration) and duration > 0):
        raise ValueError(f"{path}: duration must be a positive number of seconds, got {duration!r}")
    if path.suffix.lower() in SOUNDFILE_SUFFIXES and sample_rate is None and channels is None:
        wav, rate, first = _read_soundfile(path, offset, duration, dtype)
    elif offset == 0 and duration is None:  # the whole track
        wav, rate = _decode_audio(path, sample_rate, channels, dtype)
        first = _first_sample(path, offset, rate, len(wav))
    else:  # a span: chunks of one long track are read one after another
        stat = path.stat()
        track, rate = _decoded_track(
            str(path), (stat.st_ino, stat.st_size, stat.st_mtime_ns), sample_rate, channels, dtype
        )
        first = _first_sample(path, offset, rate, len(track))
        wav = track[first : None if duration is None else first + round(duration * rate)].copy()
    return _refuse_non_finite(path, wav, rate, first), rate


@functools.lru_cache(maxsize=1)
def _decoded_track(path: str, identity: tuple, sample_rate: int | None, channels: int | None, dtype: str):
    """The last container track decoded (read-only), kept for the next span of it: the audio features read a film
    in 60-s chunks, and decoding the whole track for each would cost the film's length times its chunk count.
    ``identity`` (inode, size, modification time) tells a rewritten file apart. Held until another track is read
    (an hour of 48-kHz stereo is 1.4 GB of float32); ``events_from`` decodes a film's track once into a WAV
    instead, read a span at a time, so this serves events tables that point Audio at the film itself."""
    wav, rate = _decode_audio(Path(path), sample_rate, channels, dtype)
    wav.setflags(write=False)
    return wav, rate


def _first_sample(path: Path, offset: float, rate: int, total: int) -> int:
    first = round(offset * rate)
    if first >= total:
        raise MediaError(f"{path}: offset {offset:g} s is past the end of the audio ({total / rate:g} s)")
    return first


def _read_soundfile(path: Path, offset: float, duration: float | None, dtype: str) -> tuple[np.ndarray, int, int]:
    """``(samples, rate, index of the first)``: only the span is read (a 60-s chunk of a 2-hour soundtrack reads
    60 s, not the whole file)."""
    import soundfile

    try:
        with soundfile.SoundFile(str(path)) as file:
            rate = int(file.samplerate)
            if file.frames == 0:
                raise MediaError(f"{path}: the audio file holds no samples")
            first = file.seek(_first_sample(path, offset, rate, file.frames))
            wav = file.read(-1 if duration is None else round(duration * rate), dtype=dtype, always_2d=True)
    except (soundfile.LibsndfileError, RuntimeError) as err:
        raise MediaError(f"{path}: cannot be read as audio ({err})") from err
    return wav, rate, first


def _decode_audio(path: Path, sample_rate: int | None, channels: int | None, dtype: str) -> tuple[np.ndarray, int]:
    import av

    with _open_container(path) as container:
        if not container.streams.audio:
            raise MediaError(f"{path}: no audio stream")
        stream = container.streams.audio[0]
        rate = sample_rate or stream.codec_context.sample_rate
        layout = {1: "mono", 2: "stereo"}.get(channels) if channels else stream.codec_context.layout.name
        if layout is None:
            raise ValueError(f"{path}: channels must be 1 or 2, got {channels!r}")
        resampler = av.AudioResampler(format="s16" if dtype == "int16" else "flt", layout=layout, rate=rate)
        chunks = []
        try:
            for frame in container.decode(stream):
                chunks += [f.to_ndarray() for f in resampler.resample(frame)]
            chunks += [f.to_ndarray() for f in resampler.resample(None)]  # flush
        except av.error.FFmpegError as err:
            raise MediaError(f"{path}: the audio stream cannot be decoded ({err})") from err
    n_channels = 1 if layout == "mono" else 2 if layout == "stereo" else None
    if not chunks:
        raise MediaError(f"{path}: the audio stream holds no samples")
    # packed formats come as (1, samples * channels), interleaved
    wav = np.concatenate([c.reshape(-1) for c in chunks]).reshape(-1, n_channels or stream.codec_context.channels)
    return wav, int(rate)


def frame_index(times: np.ndarray | float, fps: float) -> np.ndarray:
    """Index of the frame shown at each time: ``int(fps * t + 1e-5)``, moviepy's constant-rate convention."""
    return (np.asarray(times, dtype=np.float64) * fps + 1e-5).astype(np.int64)


def rgb(frame) -> np.ndarray:
    """RGB uint8 ``(H, W, 3)`` of a decoded ``av.VideoFrame``, upright: a display rotation (portrait phone
    videos store landscape pixels and a rotation) is applied in quarter turns, as ``ffmpeg`` does by default."""
    image = frame.to_ndarray(format="rgb24")
    turns = round((frame.rotation or 0) / 90) % 4  # counter-clockwise quarter turns
    return np.ascontiguousarray(np.rot90(image, turns)) if turns else image


def iter_frames(
    path: str | os.PathLike, *, first: int = 0, last: int | None = None, as_array: bool = True
) -> Iterator[tuple[int, np.ndarray]]:
    """Stream ``(index, RGB uint8 (H, W, 3))`` for frames ``first..last`` (inclusive; ``None``: to the end).

    Frame ``k`` is the one shown at ``k / fps`` (its presentation time, from the stream start), turned upright
    by :func:`rgb`. Decoding seeks to the keyframe before ``first`` and runs forward, so only the requested
    span is decoded (from the start instead, should the seek land past ``first``). With ``as_array=False``
    the frames come as ``av.VideoFrame`` (:func:`rgb` converts one), so that frames a caller skips are never
    converted.
    """
    import av

    path = _existing(path)
    with _open_container(path) as container:
        if not container.streams.video:
            raise MediaError(f"{path}: no video stream")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        fps = _frame_rate(stream, path)
        origin = stream.start_time or 0

        def frames(seek: bool) -> Iterator[tuple[int, av.VideoFrame]]:
            container.seek(
                origin + int(first / fps / stream.time_base) if seek else origin, stream=stream, backward=True
            )
            for count, frame in enumerate(container.decode(stream)):
                if frame.pts is None and seek:
                    raise MediaError(f"{path}: frames without timestamps cannot be sought")
                yield (
                    count if frame.pts is None else round(float((frame.pts - origin) * stream.time_base) * fps),
                    frame,
                )

        try:
            decoded = frames(seek=first > 0)
            head = next(decoded, None)
            if head is None:
                raise MediaError(f"{path}: the video stream holds no frames")
            if first > 0 and head[0] > first:  # the seek overshot: decode from the start
                decoded = frames(seek=False)
                head = next(decoded)
            for index, frame in itertools.chain([head], decoded):
                if index < first:
                    continue
                if last is not None and index > last:
                    break
                yield index, rgb(frame) if as_array else frame
        except av.error.FFmpegError as err:
            raise MediaError(f"{path}: the video stream cannot be decoded ({err})") from err
