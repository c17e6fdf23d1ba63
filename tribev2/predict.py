"""From features to predicted cortical activity, as a labelled ``xarray.Dataset``.

Windows follow the reference: the stimulus is cut into non-overlapping windows of ``n_output_timesteps``
TRs (100 s in the release) starting at 0; the last window runs past the end with zero features; each
window's output TRs are concatenated in order and TRs that start after the stimulus end are dropped.
"""

from __future__ import annotations

import math
from typing import Mapping, Sequence

import numpy as np
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
