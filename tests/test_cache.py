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
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_bytes(b"half")
            raise RuntimeError("interrupted")
    assert target.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["entry.bin"]


def test_a_folder_is_replaced_whole(tmp_path):
    target = tmp_path / "store"
    target.mkdir()
    (target / "old-only").write_text("x")
    opened = open(target / "old-only")  # a reader of the old folder keeps its file
    with atomic_path(target) as tmp:
        tmp.mkdir()
        (tmp / "new").write_text("y")
    assert sorted(p.name for p in target.iterdir()) == ["new"]
    assert opened.read() == "x"
    opened.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["store"]
