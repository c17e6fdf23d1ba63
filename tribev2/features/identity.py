"""The identity of a local model folder, for the features cache key, without reading every byte of its weights.

A folder's identity is a sha256 over its top-level files in name order, one entry per file:

* **the file's sha256 as the Hugging Face hub recorded it**, where it did: a file of the hub's cache (a
  snapshot's link to a blob named after its sha256), or a file that ``hf download --local-dir`` wrote, whose
  ``.cache/huggingface/download/<name>.metadata`` holds the hub's sha256 of an LFS file — trusted, as the hub
  trusts it, only while the file is not newer than that record;
* otherwise, for files up to :data:`FULLY_HASHED_BYTES` (configs, tokenizers, small weights) and for every file
  that is not safetensors: **the sha256 of the whole content** (remembered per path, size and modification
  time, :func:`tribev2.cache.file_sha256`);
* for a larger ``.safetensors`` file: **its size, its whole header** (every tensor's name, dtype, shape and
  byte range, and the metadata) **and** :data:`SAMPLES_PER_TENSOR` **blocks of** :data:`SAMPLE_BYTES` **bytes
  of every tensor** (its first and last bytes and evenly spaced ones between; all of a tensor smaller than
  that). A few MB are read instead of the whole file.

The first two kinds give the same entry (the content's sha256), so a folder has one identity however its
hashes were found. What a changed file cannot slip past: any change of a small or non-safetensors file; any
change of a tensor's name, dtype or shape, of the metadata or of the file's size; new weights for a tensor
(training, fine-tuning, a merged adapter, re-initialisation, quantisation or a dtype change rewrite its bytes
everywhere, the sampled ones included); an added, removed or renamed file. What it can slip past: an
in-place edit of a large safetensors file (outside the hub's records) that keeps its size and header and
changes only bytes outside the sampled blocks — say a handful of weights in the middle of a tensor — and, for
a hub-recorded file, a change that keeps the file's modification time no later than the hub's record (a copy
with preserved times over the downloaded file). Pass ``cache=False`` to the extractor after such an edit.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import struct
from pathlib import Path

from ..cache import file_sha256, hub_blob_sha256

FULLY_HASHED_BYTES = 64 * 2**20  # files up to this size are hashed whole
SAMPLE_BYTES = 4096  # bytes per sampled block of a tensor
SAMPLES_PER_TENSOR = 4  # blocks per tensor: the first, the last and evenly spaced ones between
MAX_HEADER_BYTES = 100 * 2**20  # the safetensors library's own limit on a header
_SHA256 = re.compile(r"[0-9a-f]{64}")


def folder_identity(folder: str | os.PathLike, cache_root: str | os.PathLike | None = None) -> str:
    """sha256 over the top-level files of ``folder`` (see the module's docstring for each file's entry); whole
    files' hashes are remembered under ``cache_root`` (:func:`tribev2.cache.cache_root`)."""
    files = sorted(p for p in Path(folder).iterdir() if p.is_file())
    return hashlib.sha256("".join(f"{p.name}:{file_identity(p, cache_root)};" for p in files).encode()).hexdigest()


def file_identity(path: str | os.PathLike, cache_root: str | os.PathLike | None = None) -> str:
    """The file's sha256 (recorded by the hub or computed), or for a large safetensors file a fingerprint of
    its size, header and sampled tensor bytes (``safetensors-sampled:<sha256>``)."""
    path = Path(path)
    recorded = hub_recorded_sha256(path)
    if recorded is not None:
        return recorded
    if path.suffix != ".safetensors" or path.stat().st_size <= FULLY_HASHED_BYTES:
        return file_sha256(path, cache_root)
    fingerprint = safetensors_fingerprint(path)
    return file_sha256(path, cache_root) if fingerprint is None else f"safetensors-sampled:{fingerprint}"


def hub_recorded_sha256(path: Path) -> str | None:
    """The sha256 the Hugging Face hub recorded for this file, if any: the name of the cache blob it links to,
    or the LFS hash in the ``--local-dir`` download record beside it (ignored once the file is newer)."""
    named = hub_blob_sha256(path)
    if named is not None:
        return named
    record = path.parent / ".cache" / "huggingface" / "download" / f"{path.name}.metadata"
    try:
        _commit, etag, timestamp = record.read_text().splitlines()[:3]
        recorded_at = float(timestamp)
    except (OSError, ValueError):
        return None
    etag = etag.strip()
    if not _SHA256.fullmatch(etag) or path.stat().st_mtime - 1 > recorded_at:
        return None  # not an LFS hash (a git blob id), or the file changed after the download
    return etag


def safetensors_fingerprint(path: Path) -> str | None:
    """sha256 of the size, the header and :data:`SAMPLES_PER_TENSOR` blocks of every tensor's bytes;
    ``None`` if the file does not read as safetensors (it is then hashed whole)."""
    size = path.stat().st_size
    digest = hashlib.sha256(f"{size};".encode())
    with open(path, "rb") as f:
        head = f.read(8)
        if len(head) < 8:
            return None
        (header_bytes,) = struct.unpack("<Q", head)
        if header_bytes > min(MAX_HEADER_BYTES, size - 8):
            return None
        header = f.read(header_bytes)
        data_start = 8 + header_bytes
        ranges = _tensor_byte_ranges(header, size - data_start)
        if ranges is None:
            return None
        digest.update(header)
        for begin, end in ranges:  # sorted
            for offset in _sample_offsets(begin, end):
                f.seek(data_start + offset)
                digest.update(f.read(min(SAMPLE_BYTES, end - offset)))
    return digest.hexdigest()


def _tensor_byte_ranges(header: bytes, data_bytes: int) -> list[tuple[int, int]] | None:
    """Each tensor's ``(begin, end)`` in the data section, from a safetensors header; ``None`` if malformed."""
    try:
        entries = json.loads(header)
        ranges = [
            (entry["data_offsets"][0], entry["data_offsets"][1])
            for name, entry in entries.items()
            if name != "__metadata__"
        ]
    except (ValueError, TypeError, KeyError, IndexError, AttributeError):
        return None
    valid = all(isinstance(b, int) and isinstance(e, int) and 0 <= b <= e <= data_bytes for b, e in ranges)
    return sorted(ranges) if valid else None


def _sample_offsets(begin: int, end: int) -> list[int]:
    """Where the sampled blocks of a tensor's byte range start: all of it if short, else the first block, the
    last and evenly spaced ones between."""
    if end - begin <= SAMPLES_PER_TENSOR * SAMPLE_BYTES:
        return list(range(begin, end, SAMPLE_BYTES))
    last = end - SAMPLE_BYTES
    return [begin + (last - begin) * i // (SAMPLES_PER_TENSOR - 1) for i in range(SAMPLES_PER_TENSOR)]
