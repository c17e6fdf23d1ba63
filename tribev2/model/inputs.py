"""The one check of feature inputs against a brain model's ``feature_dims``, for arrays and tensors alike.

A modality's features are ``(L, D, T)`` or ``(L·D, T)`` for one stimulus, with a leading batch dimension
``B`` when ``batched``: L layer groups, D width, T samples at the feature rate (2 Hz in the release).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from .config import BrainConfig


def check_features(
    features: Mapping[str, Any], config: BrainConfig, *, batched: bool, finite: bool = False
) -> tuple[int | None, int]:
    """Raise a ``ValueError`` naming the modality for unknown names, wrong shapes, non-numeric or (with
    ``finite``) NaN/infinite values, and lengths or batch sizes that differ; return ``(B, T)`` (``B`` is None
    when not ``batched``). An empty mapping is an error: ask the model for its response to nothing with
    ``n_samples=`` instead."""
    expected = list(config.modalities)
    if not isinstance(features, Mapping) or not features:
        raise ValueError(f"features must map modality names {expected} to arrays (L, D, T)")
    lead = 1 if batched else 0
    shapes = {}
    for name, x in features.items():
        if name not in config.feature_dims:
            raise ValueError(f"unknown modality {name!r}: this model takes {expected}")
        groups, dim = config.feature_dims[name]
        shape = tuple(x.shape)
        if shape[lead:-1] == (groups, dim) or shape[lead:-1] == (groups * dim,):
            shapes[name] = (shape[0] if batched else None, shape[-1])
        else:
            batch = "B, " if batched else ""
            raise ValueError(
                f"features[{name!r}] has shape {shape}; expected ({batch}{groups}, {dim}, T) or "
                f"({batch}{groups * dim}, T) at {config.feature_rate_hz:g} Hz"
            )
        _check_values(name, x, finite)
    if len(set(shapes.values())) > 1:
        if batched:
            raise ValueError(
                "modalities have different (batch, length): " + ", ".join(f"{n}={shape}" for n, shape in shapes.items())
            )
        raise ValueError(
            f"modalities have different lengths (samples at {config.feature_rate_hz:g} Hz): "
            + ", ".join(f"{n}={shape[1]}" for n, shape in shapes.items())
        )
    first = next(iter(shapes))
    B, T = shapes[first]
    if T == 0:
        raise ValueError("features have no time samples (T = 0)")
    if batched:  # one model pass: its time embedding bounds the length (a whole stimulus is cut in windows)
        check_length(T, config)
    return B, T


def check_length(n_samples: int, config: BrainConfig) -> None:
    if config.time_pos_embedding and n_samples > config.max_seq_len:
        raise ValueError(
            f"features have {n_samples} time samples; this model's time embedding holds at most {config.max_seq_len}"
        )


def _check_values(name: str, x: Any, finite: bool) -> None:
    if isinstance(x, torch.Tensor):
        numeric = x.dtype.is_floating_point or not (x.dtype.is_complex or x.dtype == torch.bool)
        if x.dtype.is_complex or not numeric:
            raise ValueError(f"features[{name!r}] has dtype {x.dtype}; expected real numbers")
        bad = int((~torch.isfinite(x)).sum()) if finite else 0
    else:
        dtype = np.asarray(x).dtype
        if not (np.issubdtype(dtype, np.integer) or np.issubdtype(dtype, np.floating)):
            raise ValueError(f"features[{name!r}] has dtype {dtype}; expected real numbers")
        bad = int((~np.isfinite(np.asarray(x))).sum()) if finite else 0
    if bad:
        raise ValueError(f"features[{name!r}] contains {bad} NaN or infinite value(s)")
