"""The one cache root (``TRIBEV2_CACHE``, default ``~/.cache/tribev2``) and atomic writes into it."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterator


def cache_root() -> Path:
    return Path(os.environ.get("TRIBEV2_CACHE") or Path.home() / ".cache" / "tribev2").expanduser()


def cache_dir(kind: str) -> Path:
    """A sub-folder of the cache root per kind of data (``features``, ``atlases``, ``demo``, ...)."""
    path = cache_root() / kind
    path.mkdir(parents=True, exist_ok=True)
    return path


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; move it onto ``target`` only if the block succeeds.

    Works for files and folders, so an interrupted run never leaves a half-written entry behind.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent)) / target.name
    try:
        yield tmp
        if tmp.exists():
            if target.is_dir():  # a folder cannot be replaced in one step: move the old one aside first
                os.replace(target, tmp.parent / f"{target.name}.old")
            os.replace(tmp, target)
    finally:
        shutil.rmtree(tmp.parent, ignore_errors=True)
