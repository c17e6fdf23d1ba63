"""Video features: a video encoder's token-averaged hidden states per 0.5-s bin (release: V-JEPA2 ViT-g).

What the reference does per Video event (``upstream.md`` §4.6, ``../shared/features/README.md`` items 1, 5-7):

* the event is cut into ``round(2 * duration)`` bins; bin ``k`` ends at ``t_k = linspace(0, d, n + 1)[k]``,
  where ``d`` is the clip's duration (the event's, capped by what the file holds after ``offset``);
* each bin sees ``frames_per_clip`` frames (the model config's, 64) at 16 fps over the ``clip_duration``
  (4 s) ending at ``t_k``: times ``max(0, t_k - (F - 1 - j) / F * clip_duration)``, clamped at the clip
  start; the frame at time ``t`` is ``int(fps * (offset + t) + 1e-5)`` (moviepy's convention);
* frames are resized (shortest edge 292, bilinear with antialiasing on uint8, as the reference's processor),
  centre-cropped to the model's crop size (256), rescaled and normalised with the ImageNet mean and std;
* the encoder's hidden states (embedding output first, then every layer's output; the predictor is not
  run) are averaged over all tokens; 20 are kept and averaged into layer groups.

**The last-frame quirk.** The reference reads frames with moviepy, which answers a request past the last frame
with the frame it read before. So the final request of the last bin (at the clip's end) repeats the previous
request's frame: frame 142 of a 144-frame clip, not frame 143. This is reproduced, since the released model was
trained on features made this way.

**The last hidden state.** transformers 5 records V-JEPA2's last hidden state *before* the encoder's final
LayerNorm; transformers 4 recorded it after. The states are taken here with forward hooks on the encoder's
layers, independent of the installed version: by default the pre-norm output (transformers 5, which the
parity fixtures were made with); ``final_norm=True`` applies the LayerNorm to it (the transformers 4 behaviour).
"""

from __future__ import annotations

import collections
import concurrent.futures
import contextlib
import json
import math
import os
import queue
import threading
import warnings
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from ..media import frame_index, iter_frames, probe, rgb
from .base import EventExtractor, layer_norms_in_input_dtype
from .vjepa2 import patch_embedding_as_matmul, precompute_rotary

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
AUTO_COMPILE_S = 600.0  # seconds of video from which compile="auto" compiles the layers


class VideoExtractor(EventExtractor):
    """Video features from a V-JEPA2 encoder (``facebook/vjepa2-vitg-fpc64-256``).

    Frames per clip, crop size and resize come from the model's config and video-processor config, so small
    models stay cheap. ``batch_size`` is the number of bins (clips) per forward pass.
    """

    modality = "video"
    event_type = "Video"

    def __init__(
        self,
        source="facebook/vjepa2-vitg-fpc64-256",
        *,
        clip_duration: float = 4.0,
        final_norm: bool = False,
        pixels: str = "auto",
        compile: bool | str = "auto",
        **options,
    ):
        """``pixels``: where frames are resized, cropped and normalised: ``"cpu"`` (the reference's uint8
        resize, bit for bit), ``"device"`` (on the model's device: each decoded frame crosses once through pinned
        memory and clips are gathered there; on a GPU the resize differs from the CPU's by rounding, at most one
        grey level) or ``"auto"`` (device when the model runs on CUDA below float32, i.e. ``precision="fast"``).
        ``compile``: ``torch.compile`` each encoder layer (static shapes: fused element-wise work), ``True``,
        ``False`` or ``"auto"``: compiled when the model runs on CUDA below float32 (``precision="fast"``) and
        the events table handed to :meth:`extract` holds at least ``AUTO_COMPILE_S`` (10 minutes) of video,
        where the compilation (10-15 s the first time, a few seconds once torch's compile cache holds it) pays
        off: on an H100 the frame pipeline runs 73 ms a clip compiled against 80 eager (``benchmarks/README.md``).
        If the automatic compilation fails (no C compiler for Triton, say), a warning says so and the layers
        stay eager."""
        options.setdefault("batch_size", 4)
        super().__init__(source, **options)
        if not (math.isfinite(clip_duration) and clip_duration > 0):
            raise ValueError(f"clip_duration must be a positive number of seconds, got {clip_duration!r}")
        if pixels not in ("auto", "cpu", "device"):
            raise ValueError(f"pixels must be 'auto', 'cpu' or 'device', got {pixels!r}")
        if pixels == "auto":
            pixels = "device" if self.device.type == "cuda" and self.dtype != torch.float32 else "cpu"
        self.pixels = pixels
        if compile not in (True, False, "auto"):
            raise ValueError(f"compile must be True, False or 'auto', got {compile!r}")
        self.compile = compile
        self._compiled = compile is True  # whether the layers are (or, once loaded, will be) compiled
        self._auto_compile_tried = False  # compile="auto" compiles (or fails to) once
        self._pixel_stream = None  # made by the first event_state_means on a GPU (see _on_pixel_stream)
        self.clip_duration = float(clip_duration)
        self.final_norm = final_norm
        self.frames_per_clip = int(self.config.frames_per_clip)
        self.crop_size = int(self.config.crop_size)
        processor = self._processor_config()
        crop = processor.get("crop_size") or {}
        if crop and (crop.get("height"), crop.get("width")) != (self.crop_size, self.crop_size):
            raise ValueError(
                f"{self.source}: the video processor crops to {crop}, the model expects "
                f"{self.crop_size}x{self.crop_size}"
            )
        # the processor's default: shortest edge int(crop * 256 / 224) (292 for 256)
        self.shortest_edge = int((processor.get("size") or {}).get("shortest_edge") or int(self.crop_size * 256 / 224))
        self.mean = tuple(processor.get("image_mean") or IMAGENET_MEAN)
        self.std = tuple(processor.get("image_std") or IMAGENET_STD)

    @property
    def own_attention(self) -> bool:
        """Whether the encoder runs :mod:`.vjepa2`'s attention and norms: below float32, where transformers' code
        rounds the rotary angles to the activations' dtype and rebuilds them in every layer, and autocast runs
        the layer norms in float32 between bfloat16 layers. Then the rotary tables are computed once in float32
        and held in the activations' dtype, the layer norms compute in it (on CUDA, their weights rounded), and
        the tubelets are embedded by one matrix product instead of cuDNN's slow 3-D convolution. float32 runs
        transformers' own code (which the tables reproduce to the bit)."""
        return self.dtype != torch.float32

    def adapt(self, model: torch.nn.Module) -> torch.nn.Module:
        if self.own_attention:
            precompute_rotary(model, self.dtype)
            layer_norms_in_input_dtype(model)
            patch_embedding_as_matmul(model)
        return compile_layers(model) if self.compile is True else model

    def auto_compiles(self, events) -> bool:
        """Whether ``compile="auto"`` compiles the layers for ``events`` (not tried yet, on CUDA below float32,
        ``AUTO_COMPILE_S`` of video or more)."""
        if self.compile != "auto" or self._auto_compile_tried or self.device.type != "cuda" or not self.own_attention:
            return False
        if not {"type", "duration"} <= set(getattr(events, "columns", ())):  # extract's own checks will say so
            return False
        durations = pd.to_numeric(events.loc[events["type"] == self.event_type, "duration"], errors="coerce")
        return float(durations.sum()) >= AUTO_COMPILE_S  # bad durations (NaN) are extract's checks' to name

    def extract(self, events, start: float, duration: float) -> np.ndarray:
        if self.auto_compiles(events):
            self._compile_or_warn()
        return super().extract(events, start, duration)

    def _compile_or_warn(self) -> None:
        """The layers compiled and run once on a batch of blank clips (the compilation happens there); if that
        fails, the layers put back as they were, with a warning (and short batches no longer filled)."""
        self._auto_compile_tried = self._compiled = True
        model = compile_layers(self.model)
        blank = torch.zeros(
            self.batch_size, self.frames_per_clip, 3, self.crop_size, self.crop_size, device=self.device
        )
        try:
            self.clip_state_means(blank)
        except Exception as err:  # noqa: BLE001 - whatever stops the compiler, the eager layers still work
            eager_layers(model)
            self._compiled = False
            warnings.warn(f"{self.source}: compiling the video layers failed ({err!r}); they run eagerly", stacklevel=3)

    def _processor_config(self) -> dict:
        from transformers.utils import cached_file

        for name in ("video_preprocessor_config.json", "preprocessor_config.json"):
            path = cached_file(self.source, name, revision=self.revision, _raise_exceptions_for_missing_entries=False)
            if path:
                return json.loads(Path(path).read_text())
        return {}

    @classmethod
    def options_from_config(cls, data: Mapping[str, Any]) -> dict:
        section = data.get("video_feature") or {}
        options = super().options_from_config({**data, "video_feature": section.get("image") or {}})
        if section.get("frequency") is not None:
            options["frequency"] = section["frequency"]
        if section.get("clip_duration") is not None:
            options["clip_duration"] = section["clip_duration"]
        return options

    def fingerprint(self) -> dict:
        # "upright": frames turned by the display rotation (entries made before that was done are not reused)
        resize = (
            {"resize": self.shortest_edge}
            if self.pixels == "cpu"
            else {"resize": self.shortest_edge, "resize_on": self.device.type}
        )  # the CPU's entries stay valid
        return {
            **super().fingerprint(),
            "upright": True,
            "clip_duration": self.clip_duration,
            "final_norm": self.final_norm,
            **(
                {"rotary": f"tables in {self.dtype}", "norms": f"in {self.dtype}", "patches": "matrix product"}
                if self.own_attention
                else {}
            ),
            "frames": self.frames_per_clip,
            "crop": self.crop_size,
            **resize,
            "mean": self.mean,
            "std": self.std,
        }

    @property
    def conversion_workers(self) -> int:
        """Threads that convert decoded frames to RGB and hand them to the resize: with the GPU resize, half the
        machine's cores, at most 8; one with the CPU resize, itself multi-threaded. On an H100 machine (16 cores),
        8 threads took decoding with the GPU resize from 74 to 13 ms a clip of 720p, and the CPU resize from 53 to
        62 ms (``benchmarks/README.md``)."""
        return max(1, min(8, (os.cpu_count() or 2) // 2)) if self.pixels == "device" else 1

    # -- timing ------------------------------------------------------------------------------------------------
    def request_times(self, clip_duration: float, n_bins: int) -> np.ndarray:
        """``(n_bins, frames_per_clip)`` times (s, from the clip start) at which each bin asks for a frame."""
        ends = np.linspace(0, clip_duration, n_bins + 1)[1:]
        back = (self.frames_per_clip - 1 - np.arange(self.frames_per_clip)) / self.frames_per_clip
        return np.maximum(0.0, ends[:, None] - back[None, :] * self.clip_duration)

    # -- pixels ------------------------------------------------------------------------------------------------
    def resize_crop(self, frame: np.ndarray) -> torch.Tensor:
        """RGB uint8 ``(H, W, 3)`` -> uint8 ``(3, crop, crop)``: shortest edge to ``shortest_edge`` (bilinear,
        antialiased, computed on uint8 as the reference's processor does), then a centre crop. With
        ``pixels="device"`` the frame goes to the device first (through pinned memory, without waiting) and is
        resized there in float, rounded back to uint8."""
        image = torch.from_numpy(frame)
        if self.pixels == "device":  # (H, W, 3) copied as it is: the permute happens on the device
            image = (image.pin_memory() if self.device.type == "cuda" else image).to(self.device, non_blocking=True)
        image = image.permute(2, 0, 1)[None]  # (1, 3, H, W)
        if self.pixels == "device":
            image = image.float()
        height, width = image.shape[-2:]
        short, long = min(height, width), max(height, width)
        long = int(self.shortest_edge * long / short)
        size = (self.shortest_edge, long) if height <= width else (long, self.shortest_edge)
        image = torch.nn.functional.interpolate(image, size=size, mode="bilinear", antialias=True, align_corners=False)[
            0
        ]
        top = int(round((size[0] - self.crop_size) / 2))
        left = int(round((size[1] - self.crop_size) / 2))
        image = image[:, top : top + self.crop_size, left : left + self.crop_size]
        return image if image.dtype == torch.uint8 else image.round_().clamp_(0, 255).to(torch.uint8)

    def _on_pixel_stream(self):
        """The context the decoding threads move, resize and gather frames in: on a GPU, a CUDA stream of their
        own (made by :meth:`event_state_means` before the threads start), so that they do not queue behind the
        model's work (nor wait for it to drain before a pinned buffer is reused); elsewhere, nothing to change."""
        if self._pixel_stream is None:
            return contextlib.nullcontext()
        return torch.cuda.stream(self._pixel_stream)

    def _resize_crop_on_pixel_stream(self, frame: np.ndarray) -> torch.Tensor:
        with self._on_pixel_stream():
            return self.resize_crop(frame)

    def _handed_over(self, clips: list[torch.Tensor]) -> list[torch.Tensor]:
        """``clips`` made on the pixel stream, ready for the model's: its work so far waited for, and their
        memory kept until the model's stream is done with them."""
        if self._pixel_stream is not None:
            current = torch.cuda.current_stream(self.device)
            current.wait_stream(self._pixel_stream)
            for clip in clips:
                clip.record_stream(current)
        return clips

    def normalize(self, frames: torch.Tensor) -> torch.Tensor:
        """uint8 ``(..., 3, H, W)`` -> float: rescaled to [0, 1] and normalised per channel."""
        mean = torch.tensor(self.mean, device=frames.device).view(3, 1, 1)
        std = torch.tensor(self.std, device=frames.device).view(3, 1, 1)
        return torch.nan_to_num((frames.float() / 255 - mean) / std)

    # -- model -------------------------------------------------------------------------------------------------
    def clip_state_means(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """``(B, frames, 3, crop, crop)`` -> ``(B, n_states, width)`` float32: every hidden state (embedding
        output first, then each layer's output), averaged over all tokens."""
        encoder = self.model.encoder
        means: list[torch.Tensor] = []

        def keep(tensor: torch.Tensor) -> None:
            means.append(tensor.mean(1, dtype=torch.float32))  # no float32 copy of the states in half precision

        hooks = [encoder.layer[0].register_forward_pre_hook(lambda module, args: keep(args[0]))]
        hooks += [
            layer.register_forward_hook(lambda module, args, out: keep(out[0] if isinstance(out, tuple) else out))
            for layer in encoder.layer
        ]
        if self.final_norm:
            hooks.append(
                encoder.layernorm.register_forward_hook(
                    lambda module, args, out: means.__setitem__(-1, out.mean(1, dtype=torch.float32))
                )
            )
        try:
            with torch.inference_mode(), self.arithmetic():
                self.model(pixel_values_videos=pixel_values.to(self.device, self.weights_dtype), skip_predictor=True)
        finally:
            for hook in hooks:
                hook.remove()
        return torch.stack(means, dim=1)

    # -- per event ---------------------------------------------------------------------------------------------
    def event_features(self, filepath: str, offset: float, duration: float) -> np.ndarray:
        return (
            self.group_mean(self.event_state_means(filepath, offset, duration)[:, self.layer_indices].transpose(0, 1))
            .permute(0, 2, 1)
            .numpy()
        )

    def frame_requests(self, filepath: str, offset: float, duration: float) -> np.ndarray:
        """``(n_bins, frames_per_clip)`` indices of the frames each bin asks for (before the last-frame quirk)."""
        info = probe(filepath)
        if not info.has_video:
            raise ValueError(f"{filepath}: a Video event needs a video stream; the file has none")
        n_bins = self.event_samples(filepath, duration)
        clip = min(duration, info.duration - offset)
        if clip <= 0:
            raise ValueError(f"{filepath}: offset {offset:g} s is past the end of the video ({info.duration:g} s)")
        return frame_index(offset + self.request_times(clip, n_bins), info.fps)

    def event_state_means(
        self, filepath: str, offset: float, duration: float, *, bins: Sequence[int] | None = None
    ) -> torch.Tensor:
        """``(n_bins, n_states, width)``: every hidden state per bin (or per bin of ``bins``), token-averaged."""
        requests = self.frame_requests(filepath, offset, duration)
        if bins is not None:
            requests = requests[list(bins)]
        out = []
        if self._pixel_stream is None and self.pixels == "device" and self.device.type == "cuda":
            self._pixel_stream = torch.cuda.Stream(self.device)  # here, before any decoding thread reads it
        # closing: an error in the model stops the decoding thread now, not when the traceback is freed
        with contextlib.closing(_prefetched(self._clips(filepath, requests), depth=2 * self.batch_size)) as clips:
            for first in self._bar(range(0, len(requests), self.batch_size), desc="video", unit="batch"):
                batch = torch.stack(
                    self._handed_over([next(clips) for _ in range(min(self.batch_size, len(requests) - first))])
                )
                n = batch.shape[0]
                if self._compiled and n < self.batch_size:  # blank clips: compiled layers keep one shape
                    batch = torch.cat([batch, batch.new_zeros((self.batch_size - n, *batch.shape[1:]))])
                if batch.device.type == "cpu" and self.device.type == "cuda":
                    batch = batch.pin_memory()  # the copy overlaps the work already queued
                out.append(self.clip_state_means(self.normalize(batch.to(self.device, non_blocking=True)))[:n])
        return torch.cat(out).cpu()

    def _clips(self, filepath: str, requests: np.ndarray) -> Iterator[torch.Tensor]:
        """uint8 ``(frames, 3, crop, crop)`` per bin, decoding the file once, in order, keeping only the frames
        still needed. A request past the last frame gets the previous request's frame (moviepy's quirk)."""
        needed = np.unique(requests)
        # the smallest index that bin k or any later bin asks for: older frames are dropped after bin k - 1
        keep_from = np.minimum.accumulate(requests.min(1)[::-1])[::-1]
        frames = _frames_at(filepath, needed, self._resize_crop_on_pixel_stream, self.conversion_workers)
        have: dict[int, torch.Tensor] = {}
        last = None  # the last decoded frame, for bins wholly past the end
        done = False
        for k, bin_requests in enumerate(requests):
            while not done and (not have or max(have) < bin_requests.max()):
                item = next(frames, None)
                if item is None:
                    done = True
                else:
                    have[item[0]] = last = item[1]
            if last is None:
                raise ValueError(f"{filepath}: no video frame could be decoded for the requested times")
            picked, previous = [], None
            for index in bin_requests:
                frame = have.get(int(index), previous if previous is not None else last)
                picked.append(frame)
                previous = frame
            with self._on_pixel_stream():
                clip = torch.stack(picked)
            yield clip
            if k + 1 < len(requests):
                have = {i: f for i, f in have.items() if i >= keep_from[k + 1]}


def _frames_at(filepath: str, needed: np.ndarray, prepare, workers: int) -> Iterator[tuple[int, torch.Tensor]]:
    """``(index, prepare(RGB frame))`` for each needed index that the file holds, in order. An index that falls
    in a gap of the stream (variable frame rate) gets the frame shown at that time: the last one before it.
    The colour conversion and ``prepare`` (both release the GIL) run on ``workers`` threads while this one
    decodes, a few frames ahead."""
    with concurrent.futures.ThreadPoolExecutor(workers, thread_name_prefix="tribev2-frames") as pool:
        pending: collections.deque = collections.deque()
        frame_in_hand, converted = None, None
        for index, frame in _needed_frames(filepath, needed):
            if frame is not frame_in_hand:  # a frame serving several indices is converted once
                frame_in_hand, converted = frame, pool.submit(lambda f=frame: prepare(rgb(f)))
            pending.append((index, converted))
            if len(pending) > 2 * workers:
                done_index, future = pending.popleft()
                yield done_index, future.result()
        yield from ((done_index, future.result()) for done_index, future in pending)


def _needed_frames(filepath: str, needed: np.ndarray) -> Iterator[tuple[int, Any]]:
    """``(index, av.VideoFrame)`` for each needed index that the file holds, in order (see :func:`_frames_at`)."""
    position, previous = 0, None
    for index, frame in iter_frames(filepath, first=int(needed[0]), last=int(needed[-1]), as_array=False):
        while position < len(needed) and needed[position] <= index:
            if needed[position] == index:
                yield int(needed[position]), frame
            elif previous is not None:
                yield int(needed[position]), previous
            position += 1
        previous = frame


def _prefetched(items: Iterator, depth: int) -> Iterator:
    """``items``, produced by a background thread up to ``depth`` ahead: decoding and resizing frames (PyAV
    and torch release the GIL) overlap the model's forward passes."""
    buffer: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()
    end = object()

    def offer(item) -> bool:
        """Put ``item`` in the buffer unless the consumer has stopped; whether it was put."""
        while not stop.is_set():
            try:
                buffer.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not offer(item):
                    return
            offer(end)
        except BaseException as err:  # handed to the consumer, raised there
            offer(err)

    thread = threading.Thread(target=produce, name="tribev2-video-frames", daemon=True)
    thread.start()
    try:
        while (item := buffer.get()) is not end:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()


def compile_layers(model: torch.nn.Module) -> torch.nn.Module:
    """``model`` (a V-JEPA2) with each encoder layer's forward ``torch.compile``-d for static shapes, which fuses
    its element-wise work; the layers share one code, compiled on the first batch and reused."""
    for layer in model.encoder.layer:
        layer.forward = torch.compile(layer.forward, dynamic=False)
    return model


def eager_layers(model: torch.nn.Module) -> torch.nn.Module:
    """``model`` with the layers that :func:`compile_layers` compiled back on their own ``forward``."""
    for layer in model.encoder.layer:
        vars(layer).pop("forward", None)
    return model
