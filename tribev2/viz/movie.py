"""The prediction over time as an MP4 (H.264 through PyAV, no ffmpeg program needed).

Each frame shows one time point in the chosen views side by side, above a colorbar and the time.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from fractions import Fraction
from pathlib import Path

import numpy as np

from ..cache import atomic_path
from ..checks import is_whole_number, real_number
from ..progress import bar
from .scene import BrainScene, ColorScale, brain_maps, figure_array, outline_painter, side_by_side

FPS_RANGE = (0.01, 240.0)  # a frame a TR: from one TR per 100 s of movie to 240 per second


def brain_frames(
    data,
    *,
    time=None,
    views: str | Sequence[str] = ("lateral",),
    hemi: str = "both",
    surface: str = "half-inflated",
    subject=None,
    mesh: str | None = None,
    cmap=None,
    vmin: float | None = None,
    vmax: float | None = None,
    symmetric: bool | str = "auto",
    percentile: float | None = None,
    threshold: float | None = None,
    outlines=None,
    sulcal: bool = True,
    size: tuple[int, int] = (480, 360),
    legend: bool = True,
) -> Iterator[tuple[float | None, np.ndarray]]:
    """Yield ``(time, image)`` per time point: the views side by side (a gap between views), under a strip
    that tags each hemisphere ``L`` or ``R`` above its middle, with a colorbar and the time below when
    ``legend``. Text is sized from the picture height (``size``: pixels of one hemisphere's picture). One
    colour scale for every frame (the range of all of them, or their ``percentile``); the other arguments
    are those of :func:`tribev2.viz.plot_surface`."""
    views = [views] if isinstance(views, str) else list(views)
    maps = brain_maps(data, time=time, subject=subject, mesh=mesh)
    scale = ColorScale.for_values(
        maps.values, cmap=cmap, vmin=vmin, vmax=vmax, symmetric=symmetric, percentile=percentile, threshold=threshold
    )
    with BrainScene(maps.mesh, surface=surface, hemi=hemi, size=size, sulcal=sulcal, smooth_edges=False) as scene:
        paint = outline_painter(scene, outlines)
        sides = [scene.hemi_order(view) for view in views]
        tags = strip = None
        gap = _view_gap(size)
        for index, values in enumerate(maps.values):
            scene.paint(paint(scale.colors(values, scene.background)))
            images = [scene.image(view) for view in views]
            if tags is None:
                tags = _tag_strip(images, sides, gap=gap)
            image = np.concatenate([tags, _with_gaps(images, gap)], axis=0)
            if legend:
                strip = strip if strip is not None else _colorbar_strip(scale, image.shape[1], maps, size[1])
                image = np.concatenate([image, _stamp(strip, maps.label(index))], axis=0)
            yield maps.times[index], image


def _view_gap(size: tuple[int, int]) -> int:
    """White pixels between two views of a frame."""
    return max(4, round(size[1] / 12))


def _tag_px(picture_height: int) -> int:
    """Pixel size of the hemisphere tags (and the frame's text) for pictures ``picture_height`` high."""
    return max(12, round(0.07 * picture_height))


def save_movie(
    data, path: str | os.PathLike, *, fps: float = 2.0, quality: int = 20, progress: bool = False, **frame_options
) -> Path:
    """Write the maps of ``data`` over time to an MP4 at ``path`` (one frame per time point, ``fps`` frames
    per second: 1.0 plays a 1-s-TR prediction in real time) and return the path.

    ``quality`` is x264's CRF (lower is better, 17..28 sensible). ``frame_options`` are those of
    :func:`brain_frames` (``views``, ``hemi``, ``surface``, ``cmap``, ``vmin``/``vmax``, ``threshold``,
    ``outlines``, ``time`` to keep some time points, ``size``...). The file is written atomically. ``progress``:
    a bar over the frames.
    """
    import av

    path = Path(path)
    if path.suffix.lower() != ".mp4":
        raise ValueError(f"{path}: expected a file name ending in .mp4")
    if not (real_number(fps, "fps", positive=True) and FPS_RANGE[0] <= fps <= FPS_RANGE[1]):
        raise ValueError(f"fps={fps!r}: expected frames per second from {FPS_RANGE[0]:g} to {FPS_RANGE[1]:g}")
    if not is_whole_number(quality, 0, 51):
        raise ValueError(f"quality={quality!r}: expected x264's CRF, a whole number from 0 (lossless) to 51")
    with atomic_path(path) as tmp, av.open(str(tmp), mode="w", format="mp4") as container:
        stream = None
        total = np.size(frame_options["time"]) if "time" in frame_options else getattr(data, "sizes", {}).get("time")
        for _, image in bar(
            brain_frames(data, **frame_options), enabled=progress, total=total, desc="frames", unit="frame"
        ):
            image = _even(image)
            if stream is None:
                stream = container.add_stream("libx264", rate=Fraction(fps).limit_denominator(1000))
                stream.width, stream.height = image.shape[1], image.shape[0]
                stream.pix_fmt = "yuv420p"
                stream.options = {"crf": str(quality)}
            container.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        container.mux(stream.encode(None))
    return path


def _even(image: np.ndarray) -> np.ndarray:
    """Pad to even width and height (4:2:0 video needs them) with white."""
    pad = ((0, image.shape[0] % 2), (0, image.shape[1] % 2), (0, 0))
    return np.pad(image, pad, constant_values=255) if any(p[1] for p in pad) else image


def _colorbar_strip(scale: ColorScale, width: int, maps, picture_height: int) -> np.ndarray:
    """A white strip with a horizontal colorbar on its right half, text sized for ``picture_height``."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    dpi, text_px = 100, _tag_px(picture_height) * 0.8
    height = round(4.2 * text_px)
    figure = Figure(figsize=(width / dpi, height / dpi), dpi=dpi, facecolor="white")
    cax = figure.add_axes((0.5, 0.42, 0.45, 0.2))
    bar = figure.colorbar(scale.mappable(), cax=cax, orientation="horizontal")
    bar.locator = MaxNLocator(5)  # labels apart at any width
    bar.ax.tick_params(labelsize=text_px * 72 / dpi, pad=1)
    if scale.threshold:
        bar.ax.axvspan(-scale.threshold, scale.threshold, color="0.7")
    if maps.caption:
        figure.text(0.5, 0.98, maps.caption, fontsize=text_px * 72 / dpi, va="top")
    return figure_array(figure)


def _with_gaps(images: Sequence[np.ndarray], gap: int) -> np.ndarray:
    """The views side by side, ``gap`` white pixels apart."""
    spacer = np.full((images[0].shape[0], gap, 3), 255, dtype=np.uint8)
    return side_by_side(*[part for image in images for part in (spacer, image)][1:])


def _tag_strip(images: Sequence[np.ndarray], sides: Sequence[Sequence[str]], gap: int) -> np.ndarray:
    """A white strip as wide as the views with gaps, ``L`` / ``R`` centred above each hemisphere (each view
    shows its hemispheres ``sides[i]`` from left to right, in equal shares of its width)."""
    from PIL import Image, ImageDraw, ImageFont

    size = _tag_px(images[0].shape[0])
    widths = [image.shape[1] for image in images]
    picture = Image.new("RGB", (sum(widths) + gap * (len(images) - 1), round(1.5 * size)), "white")
    draw, font = ImageDraw.Draw(picture), ImageFont.load_default(size=size)
    left = 0
    for width, order in zip(widths, sides):
        for index, hemi in enumerate(order):
            x = left + (index + 0.5) * width / len(order)
            draw.text((x, picture.height / 2), hemi[0].upper(), fill=(90, 90, 90), font=font, anchor="mm")
        left += width + gap
    return np.asarray(picture)


def _stamp(strip: np.ndarray, text: str) -> np.ndarray:
    """``strip`` with ``text`` written at its left."""
    from PIL import Image, ImageDraw, ImageFont

    picture = Image.fromarray(strip)
    ImageDraw.Draw(picture).text(
        (12, strip.shape[0] // 2),
        text,
        fill=(0, 0, 0),
        anchor="lm",
        font=ImageFont.load_default(size=max(12, strip.shape[0] // 3)),
    )
    return np.asarray(picture)
