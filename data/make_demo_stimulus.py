"""Make ``demo_stimulus.mp4``: a few seconds of synthetic video with speech (espeak-ng), for ``make demo``.

Run once (``python data/make_demo_stimulus.py``, needs the espeak-ng program); the result is committed, so the
demo itself needs no system package. The picture is a slowly changing colour field with a moving disc and a
progress bar; the soundtrack is espeak-ng reading :data:`DEMO_TEXT`. :func:`write_mp4` is also what the tests
use to make small videos.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import numpy as np

DEMO_TEXT = (
    "A small red ball rolls across the screen. The light turns from blue to green. "
    "Then the ball stops, and the picture fades to yellow."
)
FPS = 10
SIZE = (160, 120)  # width, height


def write_mp4(
    path: str | Path,
    frame: Callable[[float], np.ndarray] | None,
    duration_s: float,
    *,
    audio: np.ndarray | None = None,
    sample_rate: int = 22050,
    fps: int = FPS,
    crf: int = 28,
) -> Path:
    """Encode ``frame(t) -> (H, W, 3) uint8`` at ``fps`` (H.264) and ``audio`` (mono float in [-1, 1], AAC; cut
    to ``duration_s``, never padded, so a track may end before the video) into an MP4. ``frame=None`` writes
    audio only (in an MP4 container); ``audio=None`` writes a silent-film MP4. ``crf=0``: lossless, so that the
    decoded pixels are the same on every run (the encoder's bytes may differ from run to run)."""
    import av

    path = Path(path)
    with av.open(str(path), "w") as container:
        video = None
        if frame is not None:
            first = frame(0.0)
            video = container.add_stream("libx264", rate=fps, options={"crf": str(crf)})
            video.height, video.width = first.shape[:2]
            video.pix_fmt = "yuv420p"
            video.codec_context.thread_count = 1  # one thread: the same bytes on every run (textbook runs are cached)
        sound = container.add_stream("aac", rate=sample_rate, layout="mono") if audio is not None else None
        if video is not None:
            for k in range(round(duration_s * fps)):
                picture = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame(k / fps)), format="rgb24")
                picture = picture.reformat(format="yuv420p", threads=1)
                container.mux(video.encode(picture))
            container.mux(video.encode(None))
        if sound is not None:
            samples = np.asarray(audio[: round(duration_s * sample_rate)], dtype=np.float32)  # as given, cut
            block = 1024
            for first_sample in range(0, len(samples), block):
                chunk = av.AudioFrame.from_ndarray(
                    samples[None, first_sample : first_sample + block], format="flt", layout="mono"
                )
                chunk.sample_rate = sample_rate
                chunk.pts = first_sample
                chunk.time_base = Fraction(1, sample_rate)
                container.mux(sound.encode(chunk))
            container.mux(sound.encode(None))
    return path


def demo_frame(t: float, duration_s: float) -> np.ndarray:
    """A colour field drifting from blue to green to yellow, a red disc rolling across, a progress bar."""
    width, height = SIZE
    phase = t / duration_s
    colour = (
        np.interp(phase, [0, 0.5, 1], [40, 60, 220]),
        np.interp(phase, [0, 0.5, 1], [60, 200, 200]),
        np.interp(phase, [0, 0.5, 1], [200, 80, 40]),
    )
    image = np.empty((height, width, 3), dtype=np.uint8)
    image[:] = np.array(colour, dtype=np.uint8)
    y, x = np.mgrid[:height, :width]
    cx, cy = 20 + (width - 40) * min(phase * 1.4, 1.0), height / 2 + 20 * np.sin(2 * np.pi * phase * 2)
    image[(x - cx) ** 2 + (y - cy) ** 2 < 12**2] = (220, 30, 30)
    image[height - 6 :, : int(width * phase)] = 255
    return image


def main(out: str | Path = Path(__file__).with_name("demo_stimulus.mp4")) -> Path:
    import soundfile

    from tribev2.events.tts import synthesize

    speech, rate = soundfile.read(synthesize(DEMO_TEXT, name="demo"), dtype="float32")
    lead = np.zeros(int(0.5 * rate), dtype=np.float32)
    duration = np.ceil((len(lead) + len(speech)) / rate + 1.0)
    audio = np.zeros(round(duration * rate), dtype=np.float32)  # the track lasts as long as the video
    audio[len(lead) : len(lead) + len(speech)] = speech
    return write_mp4(out, lambda t: demo_frame(t, duration), duration, audio=audio, sample_rate=rate)


if __name__ == "__main__":
    print(main(*sys.argv[1:]))
