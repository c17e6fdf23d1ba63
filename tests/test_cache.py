"""The cache root and atomic writes of files and folders."""

from __future__ import annotations

import pytest

from tribev2.cache import atomic_path, cache_dir, cache_root


def test_cache_root_follows_the_variable(tmp_path, monkeypatch):
    monkeypatch.setenv("TRIBEV2_CACHE", str(tmp_path / "root"))
    assert cache_root() == tmp_path / "root"
    assert cache_dir("features") == tmp_path / "root" / "features" and (tmp_path / "root" / "features").is_dir()


def test_a_failed_write_leaves_nothing_and_keeps_the_old_entry(tmp_path):
    target = tmp_path / "entry.bin"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_bytes(b"half")
        raise RuntimeError("interrupted")
    assert target.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["entry.bin"]


def test_a_folder_is_replaced_whole(tmp_path):
    target = tmp_path / "store"
    target.mkdir()
    (target / "old-only").write_text("x")
    opened = open(target / "old-only")  # noqa: SIM115  (a reader of the old folder keeps its file open)
    with atomic_path(target) as tmp:
        tmp.mkdir()
        (tmp / "new").write_text("y")
    assert sorted(p.name for p in target.iterdir()) == ["new"]
    assert opened.read() == "x"
    opened.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["store"]


def test_file_sha256_reads_once_and_trusts_hub_blob_names(tmp_path, monkeypatch):
    import hashlib

    from tribev2.cache import file_sha256

    monkeypatch.setenv("TRIBEV2_CACHE", str(tmp_path / "root"))
    data = tmp_path / "clip.bin"
    data.write_bytes(b"abc" * 1000)
    expected = hashlib.sha256(b"abc" * 1000).hexdigest()
    assert file_sha256(data) == expected
    assert len(list((tmp_path / "root" / "digests").iterdir())) == 1  # remembered across processes
    data.write_bytes(b"changed")  # a new size and modification time: hashed again
    assert file_sha256(data) == hashlib.sha256(b"changed").hexdigest()

    blob = tmp_path / "models--a--b" / "blobs" / ("e" * 64)
    blob.parent.mkdir(parents=True)
    blob.write_bytes(b"large weights")
    link = tmp_path / "best.ckpt"
    link.symlink_to(blob)
    assert file_sha256(link) == "e" * 64  # the hub names large-file blobs after their sha256
