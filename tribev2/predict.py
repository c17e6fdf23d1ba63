"""From a stimulus, or from features, to predicted cortical activity as a labelled ``xarray.Dataset``.

Windows follow the reference: the stimulus is cut into windows of ``n_output_timesteps`` TRs (100 s in the
release) from 0, back to back; the last runs past the end with zero features; each window's TRs follow in
order and TRs that start after the stimulus end are dropped. With ``hop_s`` shorter than a window, windows
overlap and each TR is taken from the window in which it lies most central (ties: the earlier window).

Features are the hand-off: each window's ``{modality: (L, D, T)}`` is extracted (and cached) on its own and
fed to the brain model as it is, in batches of windows; :func:`predict_window_range` predicts any range of a
stimulus's windows, so that the windows of one stimulus can be spread over workers and stitched back
(:meth:`Windows.stitch`) exactly as :func:`predict` does.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
import os
import warnings
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import xarray as xr

from .atlas import DEFAULT_ATLAS, Atlas, check_atlas
from .cache import file_sha256
from .checks import MAX_STIMULUS_S, count_of_windows, real_number, user_path
from .dataset import attach_events, build_dataset
from .devices import resolve_device
from .events import check_recognition, events_from
from .events.language import language_code
from .events.table import TIME_TOLERANCE_S, timeline_stop
from .features import Extractor, check_compatible, extract_features
from .model import BrainConfig, TribeModel, check_features
from .progress import progress_bars, stage_bar
from .sources import resolve, run_precision

WindowFeatures = Mapping[str, np.ndarray]  # one window: {modality: (L, D, window samples)}


@dataclasses.dataclass(frozen=True)
class Windows:
    """The model windows covering ``duration_s`` seconds of a stimulus, and where each output TR comes from."""

    duration_s: float
    window_s: float
    hop_s: float
    tr_s: float
    steps: int  # output TRs per window

    @classmethod
    def plan(cls, duration_s: float, config: BrainConfig, hop_s: float | None = None) -> Windows:
        """Windows of ``config.window_s`` every ``hop_s`` seconds (default: back to back, as the reference).
        ``hop_s`` must be a whole number of TRs, at most one window; ``duration_s`` at most
        :data:`tribev2.checks.MAX_STIMULUS_S` (so that no input makes the windows unbounded)."""
        window_s, tr_s = config.window_s, config.tr_s
        duration_s = real_number(duration_s, "duration_s", positive=True)
        if duration_s > MAX_STIMULUS_S:
            raise ValueError(
                f"the stimulus lasts {duration_s:,.1f} s, more than the {MAX_STIMULUS_S:,.0f} s "
                f"(6 h) that one prediction takes; check its times (seconds, not ms?) or split it"
            )
        if hop_s is None:
            hop_s = window_s
        if not (
            isinstance(hop_s, numbers.Real)
            and not isinstance(hop_s, bool)
            and math.isfinite(hop_s)
            and 0 < hop_s <= window_s
            and abs(hop_s / tr_s - round(hop_s / tr_s)) < 1e-9
        ):
            raise ValueError(
                f"hop_s={hop_s!r}: expected a whole number of {tr_s:g}-s TRs, more than 0 and at most "
                f"the {window_s:g}-s window"
            )
        return cls(float(duration_s), window_s, float(hop_s), tr_s, config.n_output_timesteps)

    @property
    def n_windows(self) -> int:
        return 1 + max(0, math.ceil((self.duration_s - self.window_s) / self.hop_s - 1e-9))

    @property
    def starts(self) -> np.ndarray:  # (W,) seconds
        return self.hop_s * np.arange(self.n_windows)

    @property
    def n_time(self) -> int:
        return max(1, math.ceil(self.duration_s / self.tr_s - 1e-9))

    def sources(self) -> tuple[np.ndarray, np.ndarray]:
        """``(window, step)`` of every output TR: the window in which the TR lies most central."""
        hop = round(self.hop_s / self.tr_s)
        tr = np.arange(self.n_time)[:, None]  # (T, 1)
        first = hop * np.arange(self.n_windows)[None, :]  # (1, W) first TR of each window
        inside = (tr >= first) & (tr < first + self.steps)
        distance = np.where(inside, np.abs(tr + 0.5 - (first + self.steps / 2)), np.inf)
        window = np.argmin(distance, axis=1)  # the first of equals: the earlier window
        return window, tr[:, 0] - first[0, window]

    def stitch(self, outputs: np.ndarray) -> np.ndarray:
        """Per-window outputs ``(W, T_out, V, S)`` -> ``(time, V, S)``."""
        window, step = self.sources()
        return outputs[window, step]


def predict_features(
    features: Mapping[str, np.ndarray] | Sequence[WindowFeatures],
    *,
    model: TribeModel,
    duration_s: float | None = None,
    subjects: str | Sequence[int | str] | None = None,
    batch_size: int = 8,
    hop_s: float | None = None,
    stimulus: Mapping[str, object] | None = None,
    atlas: str | Atlas | None = DEFAULT_ATLAS,
) -> xr.Dataset:
    """Predict cortical activity from features.

    ``features``: either ``{modality: (L, D, T)}`` (or ``(L·D, T)``) covering a whole stimulus at the model's
    feature rate (2 Hz) from its onset, or a list of per-window mappings (one per model window, every
    ``hop_s`` seconds). Any subset of the model's modalities (missing ones contribute nothing).
    ``duration_s`` (default: the features' length) fixes how many TRs the result has. ``subjects``: subject
    rows by name or index (default: the model's default subject, ``"average"`` for the release; ``"all"``
    for every row). ``hop_s`` (default: one window) overlaps the model windows (see the module doc).
    ``stimulus`` optionally records ``path``, ``sha256`` in the result's attributes. ``atlas`` (a
    :func:`tribev2.load_atlas` name or an Atlas; ``None`` for none) adds the indexed ``roi`` coordinate
    (``ds.sel(roi="V1")``); when it cannot be had (offline, cold cache) a warning says so and ``roi`` is left
    out. Returns the Dataset of :mod:`tribev2.dataset`: ``prediction (time, vertex, subject)``.
    """
    config = model.config
    per_window = not isinstance(features, Mapping)
    count_of_windows(batch_size, "batch_size")
    if per_window:
        if not isinstance(features, Sequence) or isinstance(features, str):
            raise TypeError(
                f"features: expected {{modality: array}} or a list of such per-window mappings, got "
                f"{type(features).__name__}"
            )
        windows_given = list(features)
        if not windows_given:
            raise ValueError("features: an empty list of windows")
        for index, window in enumerate(windows_given):
            length = check_features(window, config, batched=False, finite=True)[1]
            if length != config.window_samples:
                raise ValueError(
                    f"features[{index}] (a window) has {length} time samples; a window holds "
                    f"{config.window_samples} ({config.window_s:g} s at {config.feature_rate_hz:g} Hz)"
                )
        n_samples = None
    else:
        n_samples = check_features(features, config, batched=False, finite=True)[1]
    if duration_s is None:
        duration_s = (
            len(windows_given) * (hop_s or config.window_s) if per_window else n_samples / config.feature_rate_hz
        )
    duration_s = real_number(duration_s, "duration_s", positive=True)
    if not per_window:
        _check_padding(duration_s, n_samples / config.feature_rate_hz, config.window_s)
    rows = model.subject_rows(subjects)
    windows = Windows.plan(duration_s, config, hop_s)
    if per_window:
        if len(windows_given) < windows.n_windows:
            raise ValueError(
                f"features cover {len(windows_given)} window(s); {duration_s:g} s needs {windows.n_windows}"
            )
        stream = iter(windows_given[: windows.n_windows])
        modalities = list(windows_given[0])
    else:
        arrays = {name: _as_array(x, config.feature_dims[name]) for name, x in features.items()}
        stream = (_cut(arrays, round(s * config.feature_rate_hz), config.window_samples) for s in windows.starts)
        modalities = list(arrays)
    outputs = _predict_windows(model, stream, rows=rows, batch_size=batch_size)
    window, _ = windows.sources()
    return build_dataset(
        windows.stitch(outputs),
        model=model,
        subject_names=model.subject_names(rows),
        modalities=modalities,
        duration_s=float(duration_s),
        precision=run_precision(model, []),
        window=window,
        hop_s=windows.hop_s,
        stimulus=stimulus,
        atlas=atlas,
    )


def predict(
    stimulus,
    *,
    model: TribeModel | str | None = None,
    extractors=None,
    modalities: Sequence[str] | None = None,
    transcript=None,
    language: str = "english",
    asr_model: str | None = None,
    keep_text: bool = True,
    subjects: str | Sequence[int | str] | None = None,
    atlas: str | Atlas | None = DEFAULT_ATLAS,
    hop_s: float | None = None,
    cache_dir: str | os.PathLike | None = None,
    device: str = "auto",
    progress: bool = True,
    batch_size: int = 8,
    precision: str = "auto",
    text_mode: str | None = None,
) -> xr.Dataset:
    """Predicted cortical activity for a stimulus: ``ds = tribev2.predict("clip.mp4")``.

    ``stimulus``: a video, audio or text file, a transcript, or an events table (see
    :func:`tribev2.events_from`; ``transcript=`` gives the words of a media file and skips speech recognition,
    ``language=`` is the speech's language, ``asr_model=`` the Whisper model; ``keep_text=False`` keeps the
    words recognised in a text file read aloud instead of the text's own). The events are cut into the
    model's windows (``model.config.window_s``, 100 s, from 0, as the reference; ``hop_s`` overlaps them: see
    the module doc); each window's features come from :func:`tribev2.features.extract_features` and go through
    the brain model in batches of ``batch_size`` windows. One TR per ``model.config.tr_s`` from 0 to the end of
    the last event. ``subjects`` as in :func:`predict_features`.

    ``model``: a loaded model, a folder or hub id, ``"demo"``, or None for ``$TRIBEV2_WEIGHTS`` (the same
    choices), else the released weights (``facebook/tribev2``). ``"demo"`` is :func:`tribev2.demo.demo_model`
    (untrained, seeded) fitted to the extractors, with the demo extractors unless others are given.
    ``extractors``: feature extractors (a list or ``{modality: extractor}``); ``{modality: model}`` (hub id or
    folder) to replace the model names of the checkpoint's ``config.yaml``; or None for ``$TRIBEV2_EXTRACTORS``
    (``demo``: :func:`tribev2.demo.demo_extractors`), else those ``config.yaml`` names. ``modalities`` keeps
    only some of them (the others count as missing). ``cache_dir``: the cache root for this call (default
    ``$TRIBEV2_CACHE``). ``precision``: ``"exact"`` (float32 everywhere: the reference's numbers), ``"fast"``
    (bfloat16 arithmetic in the extractors and the brain model; an extractor's float32-stored weights stay
    float32: several times faster on GPUs; its deviation is in the README's "Precision and speed") or
    ``"auto"`` (fast on CUDA, exact elsewhere); it applies to what is loaded here and is recorded in
    ``ds.attrs["precision"]``. ``text_mode="windowed"`` (opt-in) reads words past the 1,024-word context cap in
    shared passes over runs of 128 words instead of one pass per word (see :mod:`tribev2.features.text`; None:
    exact, or the mode of a text extractor given); recorded in ``ds.attrs["text_mode"]``.

    The returned Dataset has the schema of :mod:`tribev2.dataset`, with the events: coordinates
    ``event_<column>`` along ``event`` (``ds.tribe.events()`` gives the table back), ``tr_events (time,
    overlap)``, the indices of the events overlapping each TR (``-1`` pads), and ``words (time)``.
    """
    count_of_windows(batch_size, "batch_size")
    stimulus, transcript = user_path(stimulus), user_path(transcript)
    _check_request(
        stimulus,
        transcript=transcript,
        asr_model=asr_model,
        modalities=modalities,
        atlas=atlas,
        hop_s=hop_s,
        language=language,
        device=device,
    )
    model, extractors = resolve_predictor(
        model,
        extractors,
        modalities,
        hop_s=hop_s,
        device=device,
        progress=progress,
        cache_dir=cache_dir,
        precision=precision,
        text_mode=text_mode,
    )
    rows = model.subject_rows(subjects)  # a bad subject fails before the slow steps
    events = events_from(
        stimulus,
        transcript=transcript,
        language=language,
        asr_model=asr_model,
        keep_text=keep_text,
        device=device,
        progress=progress,
        cache_dir=cache_dir,
    )
    used = extractors_used(events, extractors, stimulus)
    windows = Windows.plan(timeline_stop(events), model.config, hop_s)
    outputs = predict_window_range(
        events, model=model, extractors=used, windows=windows, rows=rows, batch_size=batch_size, progress=progress
    )
    return stimulus_dataset(
        windows.stitch(outputs),
        events,
        stimulus=stimulus,
        model=model,
        rows=rows,
        extractors=extractors,
        windows=windows,
        language=language,
        atlas=atlas,
        cache_dir=cache_dir,
    )


def resolve_predictor(
    model,
    extractors,
    modalities: str | Sequence[str] | None = None,
    *,
    hop_s: float | None = None,
    progress: bool = True,
    **sources,
) -> tuple[TribeModel, list[Extractor]]:
    """:func:`tribev2.sources.resolve` (``sources``: its ``device``, ``cache_dir``, ``precision``, ``text_mode``),
    then the extractors of ``modalities`` only, checked against the model (and ``hop_s`` checked): what
    :func:`predict` runs, before any slow step."""
    if isinstance(modalities, str):
        modalities = [modalities]
    with progress_bars(progress):  # downloads and loading bars
        model, extractors = resolve(model, extractors, progress=progress, **sources)
    if modalities is not None:
        unknown = sorted(set(modalities) - {e.modality for e in extractors})
        if unknown:
            raise ValueError(f"modalities {unknown} have no extractor; available: {[e.modality for e in extractors]}")
        extractors = [e for e in extractors if e.modality in modalities]
    check_compatible(extractors, model)
    Windows.plan(1.0, model.config, hop_s)  # a bad hop fails before the slow steps
    return model, extractors


def extractors_used(events: pd.DataFrame, extractors: Sequence[Extractor], stimulus=None) -> list[Extractor]:
    """The extractors that have events to read in ``events`` (an error naming ``stimulus`` if none has)."""
    present = set(events["type"])
    used = [e for e in extractors if e.event_type in present]
    if not used:
        raise ValueError(
            f"{_describe(stimulus)}: none of the extractors ({[e.modality for e in extractors]}) has "
            f"events to read (types present: {sorted(present)})"
        )
    return used


def stimulus_dataset(
    prediction: np.ndarray,
    events: pd.DataFrame,
    *,
    stimulus,
    model: TribeModel,
    rows: Sequence[int],
    extractors: Sequence[Extractor],
    windows: Windows,
    language: str = "english",
    atlas: str | Atlas | None = DEFAULT_ATLAS,
    cache_dir: str | os.PathLike | None = None,
) -> xr.Dataset:
    """:func:`predict`'s Dataset from the stitched ``(time, V, S)`` prediction of a stimulus and its events."""
    path = None if isinstance(stimulus, pd.DataFrame) or stimulus is None else Path(stimulus)
    info = {"path": path or "", "sha256": file_sha256(path, cache_dir) if path else ""}
    window, _ = windows.sources()
    used = extractors_used(events, extractors, stimulus)
    ds = build_dataset(
        prediction,
        model=model,
        subject_names=model.subject_names(rows),
        modalities=[e.modality for e in used],
        duration_s=windows.duration_s,
        precision=run_precision(model, used),
        window=window,
        hop_s=windows.hop_s,
        stimulus=info,
        atlas=atlas,
        cache_dir=cache_dir,
    )
    ds.attrs["language"] = language
    ds.attrs["text_mode"] = next((e.mode for e in used if e.modality == "text"), "")
    ds.attrs["extractors"] = ",".join(f"{e.modality}={e.source}" for e in extractors)
    return attach_events(ds, events)


def predict_window_range(
    events: pd.DataFrame,
    *,
    model: TribeModel,
    extractors: Sequence[Extractor],
    windows: Windows,
    rows: Sequence[int],
    first: int = 0,
    stop: int | None = None,
    batch_size: int = 8,
    progress: bool = False,
) -> np.ndarray:
    """The brain model's output for windows ``first`` to ``stop`` (exclusive; default: to the last) of a
    stimulus: ``(n, T_out, V, S)`` float32. Each window's features are extracted (and cached) on their own
    and fed as they are. :meth:`Windows.stitch` over the outputs of every window gives :func:`predict`'s."""
    starts = windows.starts[first:stop]
    stream = (
        extract_features(events, extractors=extractors, start=float(s), duration=windows.window_s)
        for s in stage_bar(starts, enabled=progress, desc="windows", unit="window")
    )
    return _predict_windows(model, stream, rows=rows, batch_size=batch_size)


def window_features(events: pd.DataFrame, *, extractors, windows: Windows) -> list[dict[str, np.ndarray]]:
    """Every window's features, ``[{modality: (L, D, samples per window)}, ...]``, as :func:`predict` extracts
    them (modalities without events anywhere are left out); :func:`predict_features` takes the list."""
    return [
        extract_features(events, extractors=extractors, start=float(s), duration=windows.window_s)
        for s in windows.starts
    ]


# -- running the model over windows -------------------------------------------------------------------------------
def _predict_windows(
    model: TribeModel, stream: Iterable[WindowFeatures], *, rows: Sequence[int], batch_size: int
) -> np.ndarray:
    """``(W, T_out, V, S)`` float32 for a stream of per-window features, ``batch_size`` windows per pass."""
    param = next(model.parameters())
    outputs = []
    with torch.inference_mode():
        for batch in _batches(stream, batch_size):
            stacked = {name: torch.from_numpy(np.stack([w[name] for w in batch])).to(param.device) for name in batch[0]}
            out = model(stacked, subjects=rows)  # (B, S, V, T_out)
            outputs.append(out.permute(0, 3, 2, 1).float().cpu().numpy())
    return np.concatenate(outputs)


def _batches(stream: Iterable[WindowFeatures], size: int) -> Iterator[list[WindowFeatures]]:
    batch = []
    for window in stream:
        batch.append(window)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def _as_array(x, dims: tuple[int, int]) -> np.ndarray:
    """``(L, D, T)`` float32 from an array or tensor of ``(L, D, T)`` or ``(L·D, T)``."""
    x = x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
    return x.reshape(*dims, x.shape[-1]).astype(np.float32, copy=False)


def _cut(arrays: Mapping[str, np.ndarray], first: int, n: int) -> dict[str, np.ndarray]:
    """One window of whole-stimulus features: samples ``first .. first + n``, zero-padded past the end."""
    window = {}
    for name, x in arrays.items():
        part = np.zeros(x.shape[:2] + (n,), dtype=np.float32)
        chunk = x[..., first : first + n]
        part[..., : chunk.shape[-1]] = chunk
        window[name] = part
    return window


def _check_padding(duration_s: float, covered_s: float, window_s: float) -> None:
    """Features shorter than ``duration_s`` are padded with zeros, as the reference does: a warning past
    :data:`TIME_TOLERANCE_S`, an error past one window (no stimulus is mostly silence by design)."""
    if duration_s <= covered_s + TIME_TOLERANCE_S:
        return
    message = (
        f"duration_s={duration_s:g} s but the features cover {covered_s:g} s; the last "
        f"{duration_s - covered_s:g} s are predicted from zero features"
    )
    if duration_s > covered_s + window_s:
        raise ValueError(
            message + f" (more than one {window_s:g}-s window): give features for the whole duration "
            f"or a shorter duration_s"
        )
    warnings.warn(message, stacklevel=3)


def _check_request(stimulus, *, transcript, asr_model, modalities, atlas, hop_s, language, device) -> None:
    """What :func:`predict` can check before loading a model or touching the network."""
    for name, value in (("stimulus", stimulus), ("transcript", transcript)):
        if isinstance(value, (str, os.PathLike)) and not Path(value).is_file():
            raise FileNotFoundError(f"{name} {value}: no such file")
        if value is not None and not isinstance(value, (str, os.PathLike, pd.DataFrame)):
            raise TypeError(f"{name}={value!r}: expected a file path or a pandas.DataFrame")
    check_recognition(stimulus, transcript, asr_model)
    if modalities is not None and (not modalities or not all(isinstance(m, str) for m in modalities)):
        raise ValueError(f"modalities={modalities!r}: expected None (all) or names among text, audio, video")
    check_atlas(atlas)
    if hop_s is not None:
        real_number(hop_s, "hop_s", positive=True)
    language_code(language)
    resolve_device(device)


def _describe(stimulus) -> str:
    if stimulus is None:
        return "the transcript"
    return "the events table" if isinstance(stimulus, pd.DataFrame) else str(stimulus)


def features_by_window(
    source: Mapping[str, np.ndarray] | pd.DataFrame,
    *,
    config: BrainConfig,
    windows: Windows,
    extractors: Sequence[Extractor] = (),
) -> list[dict[str, np.ndarray]]:
    """Every window's features ``[{modality: (L, D, samples per window)}, ...]`` of a stimulus given as its
    whole features ``{modality: (L, D, T)}`` (cut and zero-padded as :func:`predict_features` cuts them) or as an
    events table (extracted as :func:`predict` extracts them, by the ``extractors`` with events to read)."""
    if isinstance(source, Mapping):
        arrays = {name: _as_array(x, config.feature_dims[name]) for name, x in source.items()}
        return [_cut(arrays, round(s * config.feature_rate_hz), config.window_samples) for s in windows.starts]
    present = set(source["type"])
    return window_features(source, extractors=[e for e in extractors if e.event_type in present], windows=windows)
