"""Files: NetCDF/Zarr round trips keep the roi index, GIFTI per hemisphere, NIfTI volume <-> surface on a synthetic
pattern, ground truth from every accepted source, and resampling between fsaverage resolutions."""

from __future__ import annotations

import importlib.util
import shutil

import nibabel as nib
import numpy as np
import pytest
import xarray as xr

import tribev2
from tribev2 import io
from tribev2.atlas import RegionIndex, attach_atlas, load_atlas
from tribev2.surface import load_surface


@pytest.fixture
def labelled(shared_dir):
    """A small prediction-like Dataset on fsaverage4 with an HCP-MMP1 roi (no model needed)."""
    rng = np.random.default_rng(0)
    n = 2 * 2562
    ds = xr.Dataset(
        {"prediction": (("time", "vertex", "subject"), rng.normal(size=(6, n, 1)).astype(np.float32))},
        coords={
            "time": ("time", np.arange(6.0), {"units": "s", "tr_s": 1.0, "hemodynamic_offset_s": 5.0}),
            "vertex": np.arange(n),
            "hemi": ("vertex", np.array(["left"] * (n // 2) + ["right"] * (n // 2), dtype=object)),
            "subject": ("subject", np.array(["average"], dtype=object)),
        },
        attrs={"mesh": "fsaverage4"},
    ).set_xindex("hemi")
    return attach_atlas(ds, load_atlas("HCP-MMP1", path=shared_dir / "atlases", mesh="fsaverage4"))


@pytest.mark.parametrize(
    "suffix",
    [
        ".nc",
        pytest.param(
            ".zarr",
            marks=pytest.mark.skipif(
                importlib.util.find_spec("zarr") is None, reason="zarr (dev extra) is not installed"
            ),
        ),
    ],
)
def test_round_trip_keeps_the_roi_index(labelled, tmp_path, suffix):
    path = tribev2.save_dataset(labelled, tmp_path / f"prediction{suffix}")
    back = tribev2.open_dataset(path)
    xr.testing.assert_identical(back, labelled)
    assert isinstance(back.xindexes["roi"], RegionIndex) and "hemi" in back.xindexes
    assert back.roi.dtype == object and back.attrs["atlas"] == "HCP-MMP1"
    xr.testing.assert_identical(back.sel(roi="V*"), labelled.sel(roi="V*"))
    xr.testing.assert_identical(back.tribe.by_roi(), labelled.tribe.by_roi())


def test_a_path_without_the_suffix_names_its_format(labelled, tmp_path):
    """A group inside a predict_many store has no suffix: ``format=`` says what to write."""
    path = tribev2.save_dataset(labelled, tmp_path / "group", format="zarr")
    xr.testing.assert_identical(tribev2.open_dataset(path), labelled)
    with pytest.raises(ValueError, match=r"group2: expected a .nc \(NetCDF\) or .zarr"):
        tribev2.save_dataset(labelled, tmp_path / "group2")
    with pytest.raises(ValueError, match="format='hdf': expected 'netcdf' or 'zarr'"):
        tribev2.save_dataset(labelled, tmp_path / "group3", format="hdf")


def test_gifti_round_trip(labelled, tmp_path):
    left, right = io.save_gifti(labelled.prediction.isel(time=slice(0, 4)), tmp_path / "pred")
    assert left.name == "pred_hemi-L.func.gii" and right.name == "pred_hemi-R.func.gii"
    image = nib.load(left)
    assert len(image.darrays) == 4 and image.darrays[0].data.shape == (2562,)
    values, tr = io.load_gifti((left, right))
    np.testing.assert_array_equal(values, labelled.prediction.values[:4, :, 0])
    assert tr == 1.0
    single = io.save_gifti(np.arange(2 * 642.0), tmp_path / "map")
    assert io.load_gifti(single)[0].shape == (1, 1284)
    two_subjects = xr.concat([labelled.prediction, labelled.prediction.assign_coords(subject=["0"])], "subject")
    with pytest.raises(ValueError, match="data has 2 subjects; select one first"):
        io.save_gifti(two_subjects, tmp_path / "bad")
    with pytest.raises(ValueError, match="expected the \\(left, right\\) pair"):
        io.load_gifti(left)
    with pytest.raises(
        ValueError, match="pred_hemi-R.func.gii holds the right hemisphere .*pass the files as \\(left, right\\)"
    ):
        io.load_gifti((right, left))
    with pytest.raises(ValueError, match="1,009 vertices match no fsaverage mesh"):  # not split in two halves
        io.save_gifti(labelled.prediction.isel(time=0, vertex=slice(0, 1009)), tmp_path / "part")
    assert not list(tmp_path.glob("part*"))


def smooth_pattern(image) -> np.ndarray:
    """A smooth function of MNI millimetres on the grid of ``image``."""
    ijk = np.indices(image.shape[:3]).reshape(3, -1).T
    xyz = ijk @ image.affine[:3, :3].T + image.affine[:3, 3]
    value = np.sin(xyz[:, 0] / 15) + np.cos(xyz[:, 1] / 20) + 0.5 * np.sin(xyz[:, 2] / 12)
    return value.reshape(image.shape[:3])


def test_volume_surface_volume_recovers_a_pattern_on_cortex(tmp_path):
    from nilearn.datasets import load_mni152_template

    template = load_mni152_template(resolution=2)
    pattern = smooth_pattern(template)
    volume = nib.Nifti1Image(np.stack([pattern, -pattern], axis=-1).astype(np.float32), template.affine)
    surface = io.volume_to_surface(volume, mesh="fsaverage5")
    assert surface.shape == (2, 20484)
    np.testing.assert_allclose(surface[1], -surface[0], atol=1e-5)

    back = io.surface_to_volume(surface)
    assert back.shape == template.shape + (2,) and np.allclose(back.affine, template.affine)
    recovered = back.get_fdata()[..., 0]
    cortex = recovered != 0
    assert 30_000 < cortex.sum() < 80_000  # voxels crossed by cortical columns (about 47,800)
    assert np.corrcoef(recovered[cortex], pattern[cortex])[0, 1] > 0.99
    assert np.median(np.abs(recovered[cortex] - pattern[cortex])) < 0.05

    smoothed = io.surface_to_volume(surface[0], fwhm_mm=6.0)
    assert smoothed.ndim == 3
    near = smoothed.get_fdata() != 0
    assert near.sum() > cortex.sum()  # spread around cortex
    assert np.corrcoef(smoothed.get_fdata()[near], pattern[near])[0, 1] > 0.98

    written = io.save_nifti(
        xr.DataArray(surface, dims=("time", "vertex"), coords={"time": ("time", [0.0, 1.5], {"tr_s": 1.5})}),
        tmp_path / "pred.nii.gz",
    )
    assert nib.load(written).header.get_zooms() == (2.0, 2.0, 2.0, 1.5)


def test_ground_truth_sources(labelled, tmp_path):
    values = labelled.prediction.values[:, :, 0].astype(np.float64)
    from_array = io.load_ground_truth(values, mesh="fsaverage4", tr_s=2.0, start_s=1.0)
    np.testing.assert_array_equal(from_array.time.values, 1.0 + 2.0 * np.arange(6))
    np.testing.assert_array_equal(from_array.values, values)

    gifti = io.save_gifti(
        xr.DataArray(values, dims=("time", "vertex"), coords={"time": ("time", np.arange(6) * 0.8, {"tr_s": 0.8})}),
        tmp_path / "bold",
    )
    from_gifti = io.load_ground_truth(gifti, mesh="fsaverage4")
    np.testing.assert_allclose(from_gifti.values, values, rtol=1e-6)  # float32 on disk
    np.testing.assert_allclose(from_gifti.time.values, np.arange(6) * 0.8)  # TimeStep metadata

    np.save(tmp_path / "bold.npy", values)
    assert io.load_ground_truth(tmp_path / "bold.npy", mesh="fsaverage4").sizes["time"] == 6
    bold = xr.Dataset({"bold": (("time", "vertex"), values)}, coords={"time": np.arange(6) * 3.0})
    bold.to_netcdf(tmp_path / "bold.nc", engine="h5netcdf")
    np.testing.assert_array_equal(io.load_ground_truth(tmp_path / "bold.nc").time.values, np.arange(6) * 3.0)

    from nilearn.datasets import load_mni152_template

    template = load_mni152_template(resolution=2)
    pattern = smooth_pattern(template)
    volume = nib.Nifti1Image(np.stack([pattern] * 3, axis=-1).astype(np.float32), template.affine)
    volume.header.set_xyzt_units("mm", "sec")
    volume.header.set_zooms((2.0, 2.0, 2.0, 1.5))
    nib.save(volume, tmp_path / "bold.nii.gz")
    from_nifti = io.load_ground_truth(tmp_path / "bold.nii.gz", mesh="fsaverage4")
    assert from_nifti.shape == (3, 5124)
    np.testing.assert_allclose(from_nifti.time.values, [0.0, 1.5, 3.0])  # TR from the header
    np.testing.assert_allclose(
        from_nifti.values[0], io.volume_to_surface(tmp_path / "bold.nii.gz", mesh="fsaverage4")[0], rtol=1e-6
    )

    with pytest.raises(FileNotFoundError, match="missing.nii: no such file"):
        io.load_ground_truth(tmp_path / "missing.nii")
    (tmp_path / "bold.csv").write_text("1,2")
    with pytest.raises(ValueError, match="bold.csv: unsupported ground-truth file"):
        io.load_ground_truth(tmp_path / "bold.csv")
    with pytest.raises(ValueError, match="tr_s=0: expected a positive number of seconds"):
        io.load_ground_truth(values, mesh="fsaverage4", tr_s=0)  # not read as 'no TR given'
    with pytest.raises(ValueError, match="ground-truth times must increase"):
        io.load_ground_truth(xr.DataArray(values, dims=("time", "vertex"), coords={"time": np.zeros(6)}))


def test_resample_between_resolutions(labelled, shared_dir, tmp_path, monkeypatch):
    sphere = {h: load_surface("fsaverage5", "sphere", h).coordinates for h in ("left", "right")}
    smooth = np.concatenate([np.sin(sphere["left"][:, 0] / 30), np.cos(sphere["right"][:, 1] / 30)])
    fine = xr.DataArray(smooth, dims="vertex", attrs={"units": "a.u."})

    coarse = io.resample(fine, "fsaverage3")  # nested: the first 642 vertices of each hemisphere
    np.testing.assert_array_equal(coarse.values, np.concatenate([smooth[:642], smooth[10242 : 10242 + 642]]))
    np.testing.assert_array_equal(io.resample(fine, "fsaverage3", method="idw").values, coarse.values)
    assert coarse.attrs["mesh"] == "fsaverage3" and coarse.hemi.values[642] == "right"

    up = io.resample(coarse, "fsaverage5")
    np.testing.assert_array_equal(up.values[:642], smooth[:642])  # shared vertices keep their value
    idw = io.resample(coarse, "fsaverage5", method="idw")
    assert np.abs(idw.values - smooth).mean() < np.abs(up.values - smooth).mean() < 0.1

    atlases = tmp_path / "atlases"
    shutil.copytree(shared_dir / "atlases", atlases, copy_function=shutil.copyfile)
    monkeypatch.setenv("TRIBEV2_ATLAS_DIR", str(atlases))
    moved = io.resample(labelled, "fsaverage5")  # a Dataset: the roi is re-attached from attrs["atlas"]
    assert moved.prediction.dims == ("time", "vertex", "subject") and moved.sizes["vertex"] == 20484
    assert isinstance(moved.xindexes["roi"], RegionIndex) and moved.attrs["mesh"] == "fsaverage5"
    np.testing.assert_array_equal(moved.roi.values, load_atlas("HCP-MMP1", path=atlases).vertex_names)
    with pytest.raises(ValueError, match="method='cubic'"):
        io.resample(fine, "fsaverage4", method="cubic")


def test_resample_carries_a_roi_it_cannot_reload(labelled, tmp_path):
    """A custom atlas (read with path=) or one whose files are coarser than the target: each vertex takes the
    region of its nearest source vertex (exact on a coarser, nested mesh) instead of failing."""
    ctab = np.array([[0, 0, 0, 0], [255, 0, 0, 0], [0, 255, 0, 0]], dtype=np.int32)
    for hemi in ("lh", "rh"):
        nib.freesurfer.write_annot(
            str(tmp_path / f"{hemi}.toy.annot"),
            (np.arange(2562) % 3).astype(np.int32),
            ctab,
            ["unknown", "A", "B"],
            fill_ctab=True,
        )
    toy = attach_atlas(labelled, load_atlas("toy", path=tmp_path, mesh="fsaverage4"))
    coarse = io.resample(toy, "fsaverage3")
    assert isinstance(coarse.xindexes["roi"], RegionIndex) and coarse.attrs["atlas"] == "toy"
    np.testing.assert_array_equal(
        coarse.roi.values, np.concatenate([toy.roi.values[:642], toy.roi.values[2562 : 2562 + 642]])
    )
    assert coarse.sel(roi="A").sizes["vertex"] == int((coarse.roi.values == "A").sum()) > 0
    finer = io.resample(toy, "fsaverage5", method="idw")
    np.testing.assert_array_equal(finer.roi.values[:2562], toy.roi.values[:2562])  # shared vertices
    assert set(finer.roi.values) == set(toy.roi.values)


@pytest.mark.skipif(importlib.util.find_spec("zarr") is None, reason="zarr (dev extra) is not installed")
def test_an_interrupted_zarr_write_keeps_the_earlier_store(labelled, tmp_path, monkeypatch):
    path = tribev2.save_dataset(labelled, tmp_path / "prediction.zarr")
    write = xr.Dataset.to_zarr

    def interrupted(self, store, **options):
        write(self.isel(time=slice(0, 1)), store, **options)
        raise KeyboardInterrupt

    monkeypatch.setattr(xr.Dataset, "to_zarr", interrupted)
    with pytest.raises(KeyboardInterrupt):
        tribev2.save_dataset(labelled.isel(time=slice(0, 2)), path)
    monkeypatch.undo()
    xr.testing.assert_identical(tribev2.open_dataset(path), labelled)
    assert [p.name for p in tmp_path.iterdir()] == ["prediction.zarr"]
