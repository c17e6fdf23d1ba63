"""The one cache root (``TRIBEV2_CACHE``, default ``~/.cache/tribev2``) and atomic writes into it."""

from __future__ import annotations

import contextlib
import errno
import functools
import hashlib
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from .checks import WriteError, writing

CACHE_VARIABLE = "TRIBEV2_CACHE"


def cache_root(root: str | os.PathLike | None = None) -> Path:
    """``root`` if given, else ``$TRIBEV2_CACHE``, else ``~/.cache/tribev2``."""
    return Path(root or os.environ.get(CACHE_VARIABLE) or Path.home() / ".cache" / "tribev2").expanduser()


def cache_dir(kind: str, root: str | os.PathLike | None = None) -> Path:
    """A sub-folder of the cache root (``root``, see :func:`cache_root`) per kind of data (``features``,
    ``atlases``, ``demo``, ...), created if needed."""
    path = cache_root(root) / kind
    with writing(path, "cache folder", _CACHE_HINT):
        path.mkdir(parents=True, exist_ok=True)
    return path


_CACHE_HINT = " (a tribev2 cache: pass cache_dir= or set TRIBEV2_CACHE to a writable folder with space)"


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike, what: str = "file", *, cache: bool = False) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; move it onto ``target`` only if the block succeeds.

    Works for files and folders, so an interrupted run never leaves a half-written entry behind. A full disk,
    a read-only file system or a permission error (here or in the block) is a :class:`WriteError` naming
    ``target`` (the ``what``; ``cache``: an entry of a cache root, whose message says how to move the cache).
    """
    target = Path(target)
    with writing(target, what, _CACHE_HINT if cache or _in_cache(target) else ""):
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent)) / target.name
        try:
            yield tmp
            if tmp.is_file() and target.is_dir():  # never a folder (and all it holds) replaced by a file
                raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), str(target))
            if tmp.exists():
                if target.is_dir():  # a folder cannot be replaced in one step: move the old one aside first
                    os.replace(target, tmp.parent / f"{target.name}.old")
                os.replace(tmp, target)
        finally:
            shutil.rmtree(tmp.parent, ignore_errors=True)


def _in_cache(path: Path) -> bool:
    return cache_root().absolute() in path.absolute().parents


def file_sha256(path: str | os.PathLike, root: str | os.PathLike | None = None) -> str:
    """sha256 of a file's content, remembered per (path, inode, size, ``mtime_ns``, ``ctime_ns``) for the process
    and under the cache root (``root``, see :func:`cache_root`): any rewrite changes the change time, which copy
    tools (``cp -p``, ``rsync -t``, archives) cannot restore, so a rewritten file is read again. A Hugging Face
    cache blob is named after its sha256: the name is used, nothing is read. A read-only cache only loses the
    memo."""
    named = hub_blob_sha256(path)
    if named is not None:
        return named
    real = Path(os.path.realpath(path))
    stat = real.stat()
    identity = (stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns)
    return _remembered_sha256(str(real), identity, str(cache_root(root)))


def hub_blob_sha256(path: str | os.PathLike) -> str | None:
    """The sha256 a Hugging Face cache blob is named after, for a file that is (or links to) one of a large
    (LFS) file; ``None`` otherwise (small files' blobs are named after their git blob id)."""
    real = Path(os.path.realpath(path))
    return real.name if re.fullmatch(r"[0-9a-f]{64}", real.name) and real.parent.name == "blobs" else None


@functools.lru_cache(maxsize=256)
def _remembered_sha256(path: str, identity: tuple[int, ...], root: str) -> str:
    key = "\0".join([path, *map(str, identity)])
    memo = cache_root(root) / "digests" / hashlib.sha256(key.encode()).hexdigest()
    if memo.is_file():
        return memo.read_text().strip()
    with open(path, "rb") as f:
        digest = hashlib.file_digest(f, "sha256").hexdigest()
    try:
        with atomic_path(memo, "digest memo") as tmp:
            tmp.write_text(digest)
    except WriteError:
        pass  # a read-only or full cache: the digest is right, only not remembered
    return digest
