"""From features to predicted cortical activity, as a labelled ``xarray.Dataset``.

Windows follow the reference: the stimulus is cut into non-overlapping windows of ``n_output_timesteps``
TRs (100 s in the release) starting at 0; the last window runs past the end with zero features; each
window's output TRs are concatenated in order and TRs that start after the stimulus end are dropped.
"""

from __future__ import annotations

import contextlib
import math
import os
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import pandas as pd
import torch
import xarray as xr

from .atlas import DEFAULT_ATLAS, Atlas, attach_atlas_or_warn
from .model import TribeModel
from .surface import mesh_for_vertices

AVERAGE_SUBJECT = "average"


def predict_features(features: Mapping[str, np.ndarray | torch.Tensor], *, model: TribeModel,
                     duration_s: float | None = None, subjects: str | Sequence[int | str] = AVERAGE_SUBJECT,
                     batch_size: int = 8, stimulus: Mapping[str, object] | None = None,
                     atlas: str | Atlas | None = DEFAULT_ATLAS) -> xr.Dataset:
    """Predict cortical activity from features covering a whole stimulus.

    ``features`` maps modality name -> array ``(L, D, T)`` (or ``(L·D, T)``) sampled at the model's feature
    rate (2 Hz) from the stimulus onset; any subset of the model's modalities (missing ones contribute
    nothing). ``duration_s`` (default ``T / rate``) fixes how many TRs the result has. ``subjects`` is
    ``"average"`` (the shared row used for new people), ``"all"`` (every row of the checkpoint) or a list of
    row indices. ``stimulus`` optionally records ``path``, ``sha256`` in the result's attributes. ``atlas``
    (a :func:`tribev2.load_atlas` name or an Atlas; ``None`` for none) adds the indexed ``roi`` coordinate
    (``ds.sel(roi="V1")``); when it cannot be had (offline, cold cache) a warning says so and ``roi`` is left out.
    Returns the Dataset described in ``design.md``: ``prediction (time, vertex, subject)``.
    """
    config = model.config
    arrays = _check_features(features, model)
    n_samples = next(iter(arrays.values())).shape[-1]
    if duration_s is None:
        duration_s = n_samples / config.feature_rate_hz
    if not (isinstance(duration_s, (int, float)) and math.isfinite(duration_s) and duration_s > 0):
        raise ValueError(f"duration_s must be a positive number of seconds, got {duration_s!r}")
    rows = _subject_rows(subjects, config.n_subject_rows)

    windows = max(1, math.ceil(duration_s / config.window_s - 1e-9))
    per_window = config.window_samples
    batched = {name: _cut_windows(x, windows, per_window) for name, x in arrays.items()}  # (W, L, D, S)

    param = next(model.parameters())
    outputs = []  # per batch: (S_rows, B, V, T_out)
    with torch.inference_mode():
        for first in range(0, windows, batch_size):
            batch = {name: torch.from_numpy(x[first:first + batch_size]).to(param.device) for name, x in
                     batched.items()}
            encoded = model.encode(model.aggregate(batch))  # (B, S, H)
            pooled = model.pool(encoded.transpose(1, 2)).transpose(1, 2)  # (B, T_out, H)
            outputs.append(torch.stack([model.head(pooled, row) for row in rows]).float().cpu())
    stacked = torch.cat(outputs, dim=1)  # (S_rows, W, V, T_out)
    n_rows, _, n_vertices, steps = stacked.shape
    prediction = stacked.permute(1, 3, 2, 0).reshape(windows * steps, n_vertices, n_rows)  # (time, V, S)
    n_keep = math.ceil(duration_s / config.tr_s - 1e-9)
    window_index = np.repeat(np.arange(windows), steps)[:n_keep]

    return build_dataset(prediction[:n_keep].numpy(), model=model, subject_names=_subject_names(rows, config),
                         modalities=list(arrays), duration_s=float(duration_s), window=window_index,
                         stimulus=stimulus, atlas=atlas)


def build_dataset(prediction: np.ndarray, *, model: TribeModel, subject_names: Sequence[str],
                  modalities: Sequence[str], duration_s: float, window: np.ndarray | None = None,
                  stimulus: Mapping[str, object] | None = None,
                  atlas: str | Atlas | None = DEFAULT_ATLAS) -> xr.Dataset:
    """Wrap a ``(time, vertex, subject)`` array in the Dataset schema of ``design.md`` (with ``roi`` from
    ``atlas`` when it is available: see :func:`predict_features`)."""
    from . import __version__

    config = model.config
    n_time, n_vertices, _ = prediction.shape
    mesh = mesh_for_vertices(n_vertices)
    time = xr.Variable("time", np.arange(n_time) * config.tr_s, attrs={
        "units": "s", "reference": "stimulus onset", "tr_s": config.tr_s,
        "hemodynamic_offset_s": config.hemodynamic_offset_s,
        "long_name": f"start of each TR; row t models BOLD at t + {config.hemodynamic_offset_s:g} s"})
    half = n_vertices // 2
    coords = {
        "time": time,
        "vertex": ("vertex", np.arange(n_vertices, dtype=np.int64)),
        "hemi": ("vertex", np.array(["left"] * half + ["right"] * half, dtype=object)),
        "subject": ("subject", np.array(list(subject_names), dtype=object)),
    }
    if window is not None:
        coords["window"] = ("time", np.asarray(window, dtype=np.int64),
                            {"long_name": f"index of the {config.window_s:g}-s model window"})
    stimulus = dict(stimulus or {})
    attrs = {
        "model": getattr(model, "source", ""),
        "model_revision": getattr(model, "revision", ""),
        "weights_sha256": getattr(model, "weights_sha256", ""),
        "tribev2_version": __version__,
        "mesh": mesh,
        "feature_rate_hz": config.feature_rate_hz,
        "modalities": ",".join(modalities),
        "stimulus_path": str(stimulus.get("path", "")),
        "stimulus_sha256": str(stimulus.get("sha256", "")),
        "stimulus_duration_s": duration_s,
        "atlas": "",
    }
    data = xr.DataArray(prediction.astype(np.float32, copy=False), dims=("time", "vertex", "subject"),
                        attrs={"long_name": "predicted BOLD response", "units": "a.u."})
    ds = xr.Dataset({"prediction": data}, coords=coords, attrs=attrs).set_xindex("hemi")
    return ds if atlas is None else attach_atlas_or_warn(ds, atlas)


# -- checks and helpers ----------------------------------------------------------------------------------------
def _check_features(features: Mapping[str, object], model: TribeModel) -> dict[str, np.ndarray]:
    config = model.config
    if not isinstance(features, Mapping) or not features:
        raise ValueError(f"features must map modality names {list(config.modalities)} to arrays (L, D, T)")
    arrays = {}
    for name, value in features.items():
        if name not in config.feature_dims:
            raise ValueError(f"unknown modality {name!r}: this model takes {list(config.modalities)}")
        groups, dim = config.feature_dims[name]
        x = value.detach().cpu().numpy() if isinstance(value, torch.Tensor) else np.asarray(value)
        if x.ndim == 2 and x.shape[0] == groups * dim:
            x = x.reshape(groups, dim, x.shape[-1])
        if x.ndim != 3 or x.shape[:2] != (groups, dim):
            raise ValueError(f"features[{name!r}] has shape {x.shape}; expected ({groups}, {dim}, T) or "
                             f"({groups * dim}, T) at {config.feature_rate_hz:g} Hz")
        if not np.issubdtype(x.dtype, np.number):
            raise ValueError(f"features[{name!r}] has dtype {x.dtype}; expected numbers")
        if not np.isfinite(x).all():
            bad = int((~np.isfinite(x)).sum())
            raise ValueError(f"features[{name!r}] contains {bad} NaN or infinite value(s)")
        arrays[name] = x.astype(np.float32, copy=False)
    lengths = {name: x.shape[-1] for name, x in arrays.items()}
    if len(set(lengths.values())) > 1:
        raise ValueError(f"modalities have different lengths (samples at {config.feature_rate_hz:g} Hz): "
                         + ", ".join(f"{n}={t}" for n, t in lengths.items()))
    if next(iter(lengths.values())) == 0:
        raise ValueError("features have no time samples (T = 0)")
    return arrays


def _cut_windows(x: np.ndarray, windows: int, per_window: int) -> np.ndarray:
    """(L, D, T) -> (W, L, D, per_window), zero-padded past the end (or cut to W windows)."""
    total = windows * per_window
    padded = np.zeros(x.shape[:2] + (total,), dtype=np.float32)
    n = min(total, x.shape[-1])
    padded[..., :n] = x[..., :n]
    return np.ascontiguousarray(padded.reshape(x.shape[0], x.shape[1], windows, per_window).transpose(2, 0, 1, 3))


def _subject_rows(subjects, n_rows: int) -> list[int]:
    if isinstance(subjects, str):
        if subjects == AVERAGE_SUBJECT:
            return [n_rows - 1]
        if subjects == "all":
            return [n_rows - 1] + list(range(n_rows - 1))
        raise ValueError(f"subjects={subjects!r}: expected 'average', 'all' or a list of row indices")
    available = f"rows 0..{n_rows - 2} and 'average'" if n_rows > 1 else "only the 'average' row"
    rows = []
    for s in subjects:
        if s == AVERAGE_SUBJECT:
            rows.append(n_rows - 1)
        elif isinstance(s, (int, np.integer)) and 0 <= s < n_rows - 1:
            rows.append(int(s))
        else:
            raise ValueError(f"subject {s!r} is not available: this checkpoint has {available}")
    return rows


def _subject_names(rows: Sequence[int], config) -> list[str]:
    last = config.n_subject_rows - 1
    return [AVERAGE_SUBJECT if r == last else str(r) for r in rows]


# -- from a stimulus: events, windows, features, and the events table inside the Dataset ------------------------
EVENT_DIM = "event"
OVERLAP_DIM = "overlap"
WEIGHTS_VARIABLE = "TRIBEV2_WEIGHTS"
EXTRACTORS_VARIABLE = "TRIBEV2_EXTRACTORS"


def predict(stimulus, *, model: TribeModel | str | None = None, extractors=None,
            modalities: Sequence[str] | None = None, transcript=None, language: str = "english",
            asr_model: str | None = None, subjects: str | Sequence[int | str] = AVERAGE_SUBJECT,
            atlas: str | Atlas | None = DEFAULT_ATLAS, cache_dir: str | None = None, device: str = "auto",
            progress: bool = True, batch_size: int = 8) -> xr.Dataset:
    """Predicted cortical activity for a stimulus: ``ds = tribev2.predict("clip.mp4")``.

    ``stimulus``: a video, audio or text file, a transcript, or an events table (see
    :func:`tribev2.events_from`; ``transcript=`` gives the words of a media file and skips speech recognition,
    ``language=`` is the speech's language, ``asr_model=`` the Whisper model). The events are cut into the
    model's windows (``model.config.window_s``, 100 s, from 0, as the reference); each window's features come from
    :func:`tribev2.features.extract_features` and go through the brain model
    (:func:`predict_features`). One TR per ``model.config.tr_s`` from 0 to the end of the last event.

    ``model``: a loaded model, a folder or hub id, ``"demo"``, or None for ``$TRIBEV2_WEIGHTS`` (the same
    choices), else the released weights (``facebook/tribev2``). ``"demo"`` is :func:`tribev2.demo.demo_model`
    (untrained, seeded) fitted to the extractors, with the demo extractors unless others are given.
    ``extractors``: feature extractors (a list or ``{modality: extractor}``); ``{modality: model}`` (hub id or
    folder) to replace the model names of the checkpoint's ``config.yaml``; or None for ``$TRIBEV2_EXTRACTORS``
    (``demo``: :func:`tribev2.demo.demo_extractors`), else those ``config.yaml`` names. ``modalities`` keeps
    only some of them (the others count as missing).
    ``cache_dir`` overrides the cache root (``$TRIBEV2_CACHE``) for this call.

    The returned Dataset has the ``design.md`` schema plus the events: coordinates ``event_<column>`` along
    ``event`` (the events table; :func:`events_table` gives it back as a DataFrame), ``tr_events (time,
    overlap)``, the indices of the events overlapping each TR (``-1`` pads), and ``words (time)``, the words
    heard in each TR.
    """
    from .events import events_from
    from .cache import file_sha256
    from .events.table import timeline_stop
    from .features import check_compatible

    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ValueError(f"batch_size={batch_size!r}: expected a whole number of windows, at least 1")
    if isinstance(modalities, str):
        modalities = [modalities]
    with _cache_root(cache_dir):
        model, extractors = _model_and_extractors(model, extractors, device, progress)
        _subject_rows(subjects, model.config.n_subject_rows)  # a bad subject fails before the slow steps
        if modalities is not None:
            unknown = sorted(set(modalities) - {e.modality for e in extractors})
            if unknown:
                raise ValueError(f"modalities {unknown} have no extractor; available: "
                                 f"{[e.modality for e in extractors]}")
            extractors = [e for e in extractors if e.modality in modalities]
        check_compatible(extractors, model)
        events = events_from(stimulus, transcript=transcript, language=language, asr_model=asr_model, device=device,
                             progress=progress)
        features = window_features(events, extractors=extractors, window_s=model.config.window_s,
                                   progress=progress)
        if not features:
            raise ValueError(f"{_describe(stimulus)}: none of the extractors ({[e.modality for e in extractors]}) "
                             f"has events to read (types present: {sorted(set(events['type']))})")
        path = None if isinstance(stimulus, pd.DataFrame) or stimulus is None else Path(stimulus)
        info = {"path": path or "", "sha256": file_sha256(path) if path else ""}
        ds = predict_features(features, model=model, duration_s=timeline_stop(events), subjects=subjects,
                              batch_size=batch_size, stimulus=info, atlas=atlas)
    ds.attrs["language"] = language
    ds.attrs["extractors"] = ",".join(f"{e.modality}={e.source}" for e in extractors)
    return attach_events(ds, events)


def window_features(events: pd.DataFrame, *, extractors, window_s: float, progress: bool = False
                    ) -> dict[str, np.ndarray]:
    """``{modality: (L, D, n_windows · samples per window)}``: :func:`tribev2.features.extract_features` run
    on consecutive windows of ``window_s`` seconds from 0 until the last event ends (the reference's windows),
    end to end. Modalities without events anywhere are left out."""
    from .events.table import timeline_stop
    from .features import extract_features

    starts = window_s * np.arange(max(1, math.ceil(timeline_stop(events) / window_s - 1e-9)))
    per_window = [extract_features(events, extractors=extractors, start=float(s), duration=window_s)
                  for s in _progress(starts, progress, "windows")]
    return {m: np.concatenate([w[m] for w in per_window], axis=-1) for m in per_window[0]}


def attach_events(ds: xr.Dataset, events: pd.DataFrame) -> xr.Dataset:
    """Add the events table to ``ds`` (coordinates ``event_<column>`` along ``event``; missing strings
    become ``""`` so that NetCDF can store them), ``tr_events (time, overlap)`` and ``words (time)``.

    An event overlaps the TR ``[t, t + tr)`` when it starts before ``t + tr`` and ends after ``t`` (an event
    of zero duration: when it starts inside the TR)."""
    from .events.table import EVENT_COLUMNS, NUMERIC_COLUMNS

    table = events.reset_index(drop=True)
    coords = {EVENT_DIM: (EVENT_DIM, np.arange(len(table), dtype=np.int64))}
    for column in EVENT_COLUMNS:
        values = table[column]
        coords[f"event_{column}"] = (EVENT_DIM, values.to_numpy(np.float64) if column in NUMERIC_COLUMNS else
                                     np.array([v if isinstance(v, str) else "" for v in values], dtype=object))
    overlaps = _tr_overlaps(table, ds.sizes["time"], float(ds["time"].attrs.get("tr_s", 1.0)))
    texts = table["text"].fillna("").astype(str).to_numpy(object)
    is_word = (table["type"] == "Word").to_numpy()
    words = np.array([" ".join(texts[[i for i in row if i >= 0 and is_word[i]]]) for row in overlaps], dtype=object)
    coords["tr_events"] = (("time", OVERLAP_DIM), overlaps, {
        "long_name": f"indices along '{EVENT_DIM}' of the events overlapping each TR (-1: none)"})
    coords["words"] = ("time", words, {"long_name": "words (Word events) overlapping each TR"})
    return ds.assign_coords(coords)


def events_table(ds: xr.Dataset, *, time: float | None = None) -> pd.DataFrame:
    """The events table stored in a Dataset returned by :func:`predict` (all of it, or the events that
    overlap the TR holding ``time`` seconds: the one starting at ``time``, or the last one starting before
    it). Missing strings read back as ``""``."""
    from .events.table import EVENT_COLUMNS, NUMERIC_COLUMNS

    if f"event_{EVENT_COLUMNS[0]}" not in ds.coords:
        raise ValueError("this Dataset holds no events table (it comes from predict_features, not predict)")
    table = pd.DataFrame({c: pd.Series(ds[f"event_{c}"].values.tolist(), dtype=np.float64 if c in NUMERIC_COLUMNS
                                       else "str") for c in EVENT_COLUMNS})
    if time is None:
        return table
    starts = ds.indexes["time"]
    tr_s = float(ds["time"].attrs.get("tr_s", 1.0))
    index = int(starts.get_indexer([time], method="pad")[0]) if len(starts) else -1
    if index < 0 or time >= starts[-1] + tr_s:
        span = f"{starts[0]:g} to {starts[-1] + tr_s:g} s" if len(starts) else "none"
        raise ValueError(f"time={time!r} s is outside the prediction's TRs ({span})")
    rows = ds["tr_events"].isel(time=index).values
    return table.iloc[rows[rows >= 0]]


def _tr_overlaps(events: pd.DataFrame, n_time: int, tr_s: float) -> np.ndarray:
    """``(n_time, max overlaps)`` int64 event indices per TR, ascending, padded with -1."""
    starts, durations = events["start"].to_numpy(float), events["duration"].to_numpy(float)
    first = np.floor(starts / tr_s).astype(np.int64)
    end = np.where(durations > 0, np.ceil((starts + durations) / tr_s), first + 1).astype(np.int64)
    first, end = np.clip(first, 0, n_time), np.clip(end, 0, n_time)
    counts = np.maximum(end - first, 0)
    event = np.repeat(np.arange(len(events)), counts)
    tr = np.concatenate([np.arange(a, b) for a, b in zip(first, end)]) if len(events) else np.zeros(0, np.int64)
    order = np.lexsort((event, tr))
    tr, event = tr[order], event[order]
    per_tr = np.bincount(tr, minlength=n_time)
    slot = np.arange(len(tr)) - np.repeat(np.cumsum(per_tr) - per_tr, per_tr)
    table = np.full((n_time, max(1, int(per_tr.max(initial=0)))), -1, dtype=np.int64)
    table[tr, slot] = event
    return table


def _model_and_extractors(model, extractors, device: str, progress: bool):
    """Resolve the defaults (see :func:`predict`): ``(TribeModel, [extractors])``."""
    from .demo import demo_extractors, demo_model
    from .events import ModelUnavailableError
    from .features import extractors_from_config, feature_dims
    from .model import load_model

    weights = model if model is not None else os.environ.get(WEIGHTS_VARIABLE) or None
    demo_weights = isinstance(weights, str) and weights.strip().lower() == "demo"
    sources = None
    if isinstance(extractors, Mapping) and all(isinstance(v, (str, os.PathLike)) for v in extractors.values()):
        sources, extractors = {m: str(v) for m, v in extractors.items()}, None
    demo_wanted = os.environ.get(EXTRACTORS_VARIABLE, "").strip().lower() == "demo"
    if extractors is None and (demo_wanted or demo_weights and sources is None):
        extractors = demo_extractors(device=device, progress=progress)
    if demo_weights:
        model = demo_model(feature_dims=feature_dims(extractors) if extractors else None, device=device)
    elif not isinstance(weights, TribeModel):
        try:
            model = load_model(weights, device=device) if weights is not None else load_model(device=device)
        except FileNotFoundError as err:
            raise ModelUnavailableError(f"brain model: {err}") from None
    if extractors is None:
        extractors = extractors_from_config(model.experiment_config, sources=sources, device=device,
                                            progress=progress)
    return model, list(extractors.values()) if isinstance(extractors, Mapping) else list(extractors)


@contextlib.contextmanager
def _cache_root(folder):
    """``TRIBEV2_CACHE`` pointed at ``folder`` inside the block (unchanged for None)."""
    saved = os.environ.get("TRIBEV2_CACHE")
    if folder is not None:
        os.environ["TRIBEV2_CACHE"] = str(folder)
    try:
        yield
    finally:
        if folder is not None and saved is None:
            os.environ.pop("TRIBEV2_CACHE", None)
        elif folder is not None:
            os.environ["TRIBEV2_CACHE"] = saved


def _progress(items, enabled: bool, label: str):
    from tqdm.auto import tqdm

    return tqdm(items, desc=label, disable=not enabled or len(items) < 2, leave=False)


def _describe(stimulus) -> str:
    if stimulus is None:
        return "the transcript"
    return "the events table" if isinstance(stimulus, pd.DataFrame) else str(stimulus)
