"""The features cache: one ``.npy`` per key under ``<cache root>/features/<modality>/``, written atomically.

A key holds everything the numbers depend on (the stimulus content, the extractor's configuration and the
model's identity, ``FEATURES_VERSION``), so a changed input never reuses stale features and an interrupted run
resumes where it stopped.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ..cache import atomic_path, cache_dir

# Bump when a change to the extraction code changes its numbers: old cache entries are then ignored.
FEATURES_VERSION = 1


def cache_file(modality: str, key: Mapping[str, Any], root: str | os.PathLike | None = None) -> Path:
    """Where the features for ``key`` (a JSON-able mapping) live under the features cache of ``root`` (the
    cache root; default ``$TRIBEV2_CACHE``)."""
    digest = hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()
    return cache_dir("features", root) / modality / f"{digest}.npy"


def write_cached(path: Path, value: np.ndarray) -> np.ndarray:
    value = np.ascontiguousarray(value, dtype=np.float32)
    buffer = io.BytesIO()  # numpy writing straight to a full disk raises an OSError without its errno
    np.save(buffer, value)
    with atomic_path(path, "features cache entry", cache=True) as tmp:
        tmp.write_bytes(buffer.getbuffer())
    return value


def cached_array(
    modality: str,
    key: Mapping[str, Any],
    compute: Callable[[], np.ndarray],
    *,
    enabled: bool = True,
    root: str | os.PathLike | None = None,
) -> np.ndarray:
    """``compute()`` once per ``key``, stored as ``.npy`` (written atomically) under the features cache."""
    if not enabled:
        return compute()
    path = cache_file(modality, key, root)
    if path.is_file():
        return np.load(path)
    return write_cached(path, compute())
