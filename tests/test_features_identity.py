"""A local model folder's identity (the features cache key): what a changed file can and cannot slip past."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time

import pytest
import torch
from safetensors.torch import save_file

from tribev2.cache import file_sha256
from tribev2.features import identity
from tribev2.features.identity import SAMPLE_BYTES, file_identity, folder_identity
from tribev2.features.sources import model_identity


@pytest.fixture
def folder(tmp_path, monkeypatch):
    """A model folder whose 1-MiB safetensors file counts as large (sampled), beside a config."""
    monkeypatch.setattr(identity, "FULLY_HASHED_BYTES", 64 * 1024)
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text('{"hidden_size": 256}')
    generator = torch.Generator().manual_seed(0)
    save_file(
        {"big": torch.randn(1024, 256, generator=generator), "small": torch.randn(8, generator=generator)},
        str(model / "model.safetensors"),
        metadata={"format": "pt"},
    )
    return model


def _data_offset(path, tensor: str) -> int:
    """Where ``tensor``'s bytes start in a safetensors file."""
    with open(path, "rb") as f:
        header = int.from_bytes(f.read(8), "little")
        entries = json.loads(f.read(header))
    return 8 + header + entries[tensor]["data_offsets"][0]


def _flip(path, offset: int) -> None:
    with open(path, "r+b") as f:
        f.seek(offset)
        byte = f.read(1)[0]
        f.seek(offset)
        f.write(bytes([byte ^ 0xFF]))


def test_small_files_are_hashed_whole_as_before(tmp_path):
    """A folder of small files keeps the identity it had when every file was hashed (old cache entries hold)."""
    (tmp_path / "config.json").write_text("{}")
    (tmp_path / "model.safetensors").write_bytes(b"x" * 1000)
    old = hashlib.sha256("".join(f"{p.name}:{file_sha256(p)};" for p in sorted(tmp_path.iterdir())).encode())
    assert folder_identity(tmp_path) == model_identity(str(tmp_path), None) == old.hexdigest()


def test_large_safetensors_are_sampled_and_copies_keep_their_identity(folder, tmp_path):
    weights = folder / "model.safetensors"
    assert file_identity(weights).startswith("safetensors-sampled:")
    copy = tmp_path / "copy"
    shutil.copytree(folder, copy)  # new path and modification times, same content
    assert folder_identity(copy) == folder_identity(folder)


@pytest.mark.parametrize(
    "change",
    [
        "new weights",
        "first byte",
        "last byte",
        "a sampled middle block",
        "dtype",
        "shape",
        "metadata",
        "appended byte",
        "config",
        "added file",
        "renamed file",
    ],
)
def test_changes_that_change_the_identity(folder, change):
    weights = folder / "model.safetensors"
    before = folder_identity(folder)
    big = _data_offset(weights, "big")
    nbytes = 1024 * 256 * 4
    if change == "new weights":
        save_file({"big": torch.randn(1024, 256), "small": torch.randn(8)}, str(weights), metadata={"format": "pt"})
    elif change == "first byte":
        _flip(weights, big)
    elif change == "last byte":
        _flip(weights, big + nbytes - 1)
    elif change == "a sampled middle block":
        last = nbytes - SAMPLE_BYTES
        _flip(weights, big + last // (identity.SAMPLES_PER_TENSOR - 1))
    elif change in ("dtype", "shape", "metadata"):
        tensors = {"big": torch.randn(1024, 256, generator=torch.Generator().manual_seed(0)), "small": torch.randn(8)}
        if change == "dtype":
            tensors["big"] = tensors["big"].view(torch.int32)  # same bytes, another dtype
        if change == "shape":
            tensors["big"] = tensors["big"].reshape(256, 1024)
        save_file(tensors, str(weights), metadata={"format": "pt", **({"note": "x"} if change == "metadata" else {})})
    elif change == "appended byte":
        with open(weights, "ab") as f:
            f.write(b"\0")
    elif change == "config":
        (folder / "config.json").write_text('{"hidden_size": 257}')
    elif change == "added file":
        (folder / "tokenizer.json").write_text("{}")
    elif change == "renamed file":
        weights.rename(folder / "model-00001.safetensors")
    assert folder_identity(folder) != before


def test_what_slips_past_an_edit_between_sampled_blocks(folder):
    """The documented gap: a byte edited in place between a large tensor's sampled blocks, header and size
    kept, goes unseen (a non-safetensors file of the same size is hashed whole, so there it is seen)."""
    weights = folder / "model.safetensors"
    before = folder_identity(folder)
    _flip(weights, _data_offset(weights, "big") + SAMPLE_BYTES + 10)
    assert folder_identity(folder) == before
    other = folder / "weights.bin"
    other.write_bytes(bytes(256 * 1024))
    before = folder_identity(folder)
    _flip(other, 128 * 1024)
    assert folder_identity(folder) != before


def test_a_file_that_is_not_safetensors_inside_is_hashed_whole(folder):
    weights = folder / "model.safetensors"
    weights.write_bytes(b"\xff" * 8 + bytes(200 * 1024))  # a header length beyond the file
    assert file_identity(weights) == file_sha256(weights)


def test_local_dir_download_records_are_trusted_until_the_file_is_newer(folder):
    """``hf download --local-dir`` records each LFS file's sha256: used as is (nothing read) while the file is
    not newer than the record, giving the entry a full hash gives."""
    weights = folder / "model.safetensors"
    content_sha = hashlib.sha256(weights.read_bytes()).hexdigest()
    record = folder / ".cache" / "huggingface" / "download" / "model.safetensors.metadata"
    record.parent.mkdir(parents=True)
    record.write_text(f"{'0' * 40}\n{content_sha}\n{time.time() + 5}\n")
    assert file_identity(weights) == content_sha
    record.write_text(f"{'0' * 40}\n{'f' * 64}\n{time.time() + 5}\n")
    assert file_identity(weights) == "f" * 64  # the record is believed, the file not read
    later = time.time() + 60
    os.utime(weights, (later, later))  # modified after the download: the record no longer speaks for it
    assert file_identity(weights).startswith("safetensors-sampled:")
    record.write_text(f"{'0' * 40}\n{'a' * 40}\n{later + 5}\n")  # a git blob id (not LFS): not a sha256
    assert file_identity(weights).startswith("safetensors-sampled:")


def test_hub_cache_blobs_are_named_after_their_sha256(folder, tmp_path):
    weights = folder / "model.safetensors"
    blob = tmp_path / "blobs" / hashlib.sha256(weights.read_bytes()).hexdigest()
    blob.parent.mkdir()
    shutil.move(weights, blob)
    weights.symlink_to(blob)
    assert file_identity(weights) == blob.name
