"""Checks made before slow work starts, shared by every layer (a leaf module: it imports nothing of tribev2).

* numbers given by users (Python or NumPy scalars; never ``bool``, NaN or infinity): :func:`real_number`;
* writing files: :func:`check_writable` (a probe file in the target folder, before the work) and
  :func:`writing` (a disk-full, read-only or permission error while writing becomes one :class:`WriteError`
  that names the file and the cause, instead of a library's message);
* the longest stimulus the pipeline accepts (:data:`MAX_STIMULUS_S`), so that no input makes it allocate
  windows without bound.
"""

from __future__ import annotations

import contextlib
import errno
import math
import numbers
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

MAX_STIMULUS_S = 6 * 3600.0  # 216 windows of 100 s: longer stimuli are split by the caller

_CAUSES = {
    errno.ENOSPC: "the disk is full",
    errno.EDQUOT: "the disk quota is exceeded",
    errno.EROFS: "the file system is read-only",
    errno.EACCES: "permission denied",
    errno.EPERM: "permission denied",
    errno.ENOTDIR: "a part of the path is a file, not a folder",
    errno.EEXIST: "a file is in the way of the folder",
    errno.EISDIR: "a folder is in the way of the file",
}


class WriteError(OSError):
    """A file could not be written (disk full, read-only file system, no permission); nothing partial is left.
    ``errno`` is the cause's."""

    def __init__(self, code: int, message: str):
        super().__init__(message)
        self.errno = code


def real_number(value, name: str, *, positive: bool = False, minimum: float | None = None) -> float:
    """``value`` as a float if it is a finite real number (Python or NumPy scalar, not a bool), else a
    ``ValueError`` naming ``name``; ``positive`` requires > 0, ``minimum`` requires >= it."""
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(float(value))
    if ok and positive:
        ok = float(value) > 0
    if ok and minimum is not None:
        ok = float(value) >= minimum
    if not ok:
        need = "a positive" if positive else "a finite" if minimum is None else f"a (>= {minimum:g})"
        raise ValueError(f"{name}={value!r}: expected {need} number")
    return float(value)


def is_whole_number(value, low: int = 1, high: float = math.inf) -> bool:
    """Whether ``value`` is an integer (Python or NumPy, not a bool) from ``low`` to ``high``."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool) and low <= value <= high


def count_of_windows(value, name: str) -> None:
    """A ``ValueError`` naming ``name`` unless ``value`` is a whole number (not a bool), at least 1."""
    if not is_whole_number(value):
        raise ValueError(f"{name}={value!r}: expected a whole number of windows, at least 1")


_NETWORK_MODULES = ("httpx", "httpcore", "requests", "urllib3", "ssl", "socket", "h11", "h2", "huggingface_hub")


def user_path(value):
    """A file path as the user typed it (``str`` or path-like) as a :class:`~pathlib.Path` with ``~`` expanded, as
    a shell would; anything else (a DataFrame, None) as it is."""
    return Path(value).expanduser() if isinstance(value, (str, os.PathLike)) else value


def is_network_error(err: BaseException) -> bool:
    """An exception raised by the network stack under the hub client (``httpx.ConnectError``, ``ssl.SSLError``,
    a proxy error...), whatever its class: many are not ``OSError``s."""
    return isinstance(err, (OSError, TimeoutError)) or type(err).__module__.split(".")[0] in _NETWORK_MODULES


def cause(err: OSError) -> str:
    """A short plain-words cause of an ``OSError`` (``"the disk is full"``...), else its message."""
    return _CAUSES.get(err.errno, err.strerror or str(err))


def is_write_fault(err: BaseException) -> bool:
    return isinstance(err, OSError) and err.errno in _CAUSES


@contextlib.contextmanager
def writing(path: str | os.PathLike, what: str = "file", hint: str = "") -> Iterator[None]:
    """Turn a disk-full / read-only / permission ``OSError`` raised inside the block into a :class:`WriteError`
    naming ``path`` (``hint``: what to do, appended)."""
    try:
        yield
    except WriteError:
        raise
    except OSError as err:
        if not is_write_fault(err):
            raise
        raise WriteError(err.errno, f"cannot write the {what} {path}: {cause(err)}{hint}") from err


def check_writable(path: str | os.PathLike, what: str = "output", *, needed_bytes: int = 0) -> Path:
    """Check, before any work, that ``path`` (a file or folder to be written) can be created: its folder is
    made if missing and a probe file written and removed there; with ``needed_bytes``, that much space is free.
    Raises :class:`WriteError` naming ``path`` and the cause."""
    path = Path(path)
    folder = path.parent
    with writing(path, what):
        folder.mkdir(parents=True, exist_ok=True)
        if not folder.is_dir():
            raise NotADirectoryError(errno.ENOTDIR, f"{folder} is not a folder")
        with tempfile.NamedTemporaryFile(prefix=".tribev2-probe-", dir=folder):
            pass
    check_free_space(path, needed_bytes, what)
    return path


def check_free_space(path: str | os.PathLike, needed_bytes: int, what: str = "file") -> None:
    """:class:`WriteError` (ENOSPC) when the file system holding ``path`` has less than ``needed_bytes`` free."""
    if needed_bytes <= 0:
        return
    folder = Path(path).parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    free = shutil.disk_usage(folder).free
    if free < needed_bytes:
        raise WriteError(
            errno.ENOSPC,
            f"cannot write the {what} {path}: the disk is full "
            f"({free / 1e6:.1f} MB free, {needed_bytes / 1e6:.1f} MB needed)",
        )
