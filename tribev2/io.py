"""Files in and out: prediction Datasets (NetCDF or Zarr, indexes restored), surface maps as GIFTI, maps as
NIfTI volumes (through :mod:`tribev2.projection`), and measured BOLD for :func:`tribev2.evaluate`."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import xarray as xr

from .cache import atomic_path
from .checks import check_writable
from .dataset import CorruptDatasetError, from_storage, to_storage
from .projection import resample, surface_to_volume, time_by_vertex, volume_to_surface
from .surface import FSAVERAGE_SIZES, HEMIS, check_mesh, mesh_for_vertices

__all__ = [
    "CorruptDatasetError",
    "load_gifti",
    "load_ground_truth",
    "open_dataset",
    "resample",
    "save_dataset",
    "save_gifti",
    "save_nifti",
    "surface_to_volume",
    "volume_to_surface",
]

NETCDF_ENGINE = "h5netcdf"  # NetCDF-4 with variable-length strings, pure wheels


def save_dataset(ds: xr.Dataset, path: str | os.PathLike, *, format: str | None = None) -> Path:
    """Write ``ds`` to NetCDF (``.nc``) or Zarr (``.zarr``), atomically: an interrupted or failed write leaves
    any earlier file at ``path`` as it was, and nothing else. ``format`` (``"netcdf"`` or ``"zarr"``) names the
    format where the path's suffix does not (a group inside a store). Each data variable gets its checksum (see
    :mod:`tribev2.dataset`). A full disk, a read-only folder or a missing permission is a
    :class:`tribev2.checks.WriteError` naming ``path``. What ``path`` holds must be a Dataset's file or store
    (or nothing): a folder of other files is a ``ValueError``, never replaced.

    NetCDF is serialised in memory first and then written with plain file writes: HDF5 writing straight to a
    full disk can crash the process (a segmentation fault when the half-written file is closed)."""
    if not isinstance(ds, xr.Dataset):
        raise TypeError(f"save_dataset: expected an xarray.Dataset, got {type(ds).__name__}")
    path = Path(path)
    kind = format or {".nc": "netcdf", ".zarr": "zarr"}.get(path.suffix)
    if kind not in ("netcdf", "zarr"):
        raise ValueError(
            f"{path}: expected a .nc (NetCDF) or .zarr (Zarr) path"
            if format is None
            else f"format={format!r}: expected 'netcdf' or 'zarr'"
        )
    _check_replaceable(path, kind)
    flat = to_storage(ds)
    check_writable(path, "Dataset", needed_bytes=flat.nbytes)
    with atomic_path(path, "Dataset") as tmp:
        if kind == "zarr":
            flat.to_zarr(tmp, mode="w", consolidated=False)
        else:
            tmp.write_bytes(flat.to_netcdf(engine=NETCDF_ENGINE))
    return path


def _check_replaceable(path: Path, kind: str) -> None:
    """What is at ``path`` may be replaced by a ``kind`` Dataset: nothing, or a file or store of that kind (a
    folder of other files, or a file where a store goes, would be lost)."""
    if kind == "netcdf" and path.is_dir():
        raise ValueError(f"{path}: a folder is there; a NetCDF Dataset is one file (name another path)")
    if kind == "zarr" and path.is_file():
        raise ValueError(f"{path}: a file is there; a Zarr Dataset is a folder (name another path)")
    if kind == "zarr" and holds_other_files(path):
        raise ValueError(f"{path}: a folder of other files, not a Zarr store; saving would replace them")


def is_zarr_group(folder: Path) -> bool:
    """Whether ``folder`` holds a Zarr group (v3's ``zarr.json`` or v2's ``.zgroup``)."""
    return (folder / "zarr.json").is_file() or (folder / ".zgroup").is_file()


def holds_other_files(folder: Path) -> bool:
    """Whether ``folder`` is a folder with files in it that are not a Zarr store (writing a store there would mix
    with them or replace them)."""
    return folder.is_dir() and any(folder.iterdir()) and not is_zarr_group(folder)


def open_dataset(path: str | os.PathLike, *, verify: bool = True) -> xr.Dataset:
    """Read a Dataset written by :func:`save_dataset` (or ``Dataset.to_netcdf``) into memory, with the
    indexes that :func:`tribev2.predict_features` returns. With ``verify`` (default), every data variable is
    checked against the checksum saved with it: a corrupt one is a
    :class:`tribev2.dataset.CorruptDatasetError` naming it and the file. A truncated or foreign file is a
    ``ValueError`` naming it."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file")
    try:
        if path.suffix == ".zarr" or path.is_dir():
            ds = xr.open_zarr(path, consolidated=False).load()
        else:
            with xr.open_dataset(path, engine=NETCDF_ENGINE) as opened:
                ds = opened.load()
    except Exception as err:  # h5py/zarr/xarray raise OSError, ValueError, KeyError... for a damaged file
        if isinstance(err, MemoryError):
            raise
        kind = "Zarr store" if path.suffix == ".zarr" or path.is_dir() else "NetCDF file"
        raise ValueError(
            f"{path}: cannot be read as a {kind} "
            f"written by tribev2.save_dataset (truncated or another kind of file?): "
            f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"
        ) from None
    return from_storage(ds, source=str(path), verify=verify)


# -- surface maps as GIFTI ---------------------------------------------------------------------------------------
def save_gifti(data, path: str | os.PathLike) -> tuple[Path, Path]:
    """Write a surface map (``(vertex,)`` or ``(time, vertex)``; a DataArray with at most one subject, or an
    array) as one GIFTI functional file per hemisphere: ``<path>_hemi-L.func.gii`` and
    ``<path>_hemi-R.func.gii`` (one data array per time point, TR in the ``TimeStep`` metadata, ms); a ``path``
    ending in ``.gii`` or ``.func.gii`` names the pair without it. Each file is written atomically."""
    import nibabel as nib

    values, tr_s, _ = time_by_vertex(data)
    mesh_for_vertices(values.shape[1])  # both hemispheres of a whole mesh, or a clear error
    half = values.shape[1] // 2
    path = check_writable(path, "GIFTI file")
    stem = path.name.removesuffix(".gii").removesuffix(".func")
    written = []
    for hemi, part in zip(HEMIS, (values[:, :half], values[:, half:])):
        meta = {
            "AnatomicalStructurePrimary": "CortexLeft" if hemi == "left" else "CortexRight",
            "TimeStep": f"{tr_s * 1000:g}",
        }
        image = nib.gifti.GiftiImage(
            meta=nib.gifti.GiftiMetaData(meta),
            darrays=[
                nib.gifti.GiftiDataArray(
                    row.astype(np.float32),
                    intent="NIFTI_INTENT_TIME_SERIES" if len(part) > 1 else "NIFTI_INTENT_NONE",
                    datatype="NIFTI_TYPE_FLOAT32",
                )
                for row in part
            ],
        )
        target = path.with_name(f"{stem}_hemi-{hemi[0].upper()}.func.gii")
        with atomic_path(target, "GIFTI file") as tmp:
            nib.save(image, tmp)
        written.append(target)
    return tuple(written)


def load_gifti(paths: Sequence[str | os.PathLike]) -> tuple[np.ndarray, float | None]:
    """The ``(left, right)`` GIFTI functional files of one map: ``(time, vertex)`` values (left then right) and
    the TR in seconds if the files record one (``TimeStep`` metadata, ms)."""
    import nibabel as nib

    if isinstance(paths, (str, os.PathLike)) or len(paths) != 2:
        raise ValueError(f"{paths!r}: expected the (left, right) pair of GIFTI files (one per hemisphere)")
    parts, steps = [], set()
    for file, hemi in zip(paths, HEMIS):
        if not Path(file).is_file():
            raise FileNotFoundError(f"{file}: no such GIFTI file")
        image = nib.load(str(file))
        meta = image.meta if image.meta is not None else {}
        structure = meta.get("AnatomicalStructurePrimary", "")
        other = "CortexRight" if hemi == "left" else "CortexLeft"
        if structure == other:
            raise ValueError(
                f"{file} holds the {other[6:].lower()} hemisphere ({structure}); expected the "
                f"{hemi} one here: pass the files as (left, right)"
            )
        if not image.darrays:
            raise ValueError(f"{file}: a GIFTI file without data arrays; expected a functional map")
        arrays = [np.asarray(d.data, dtype=np.float64) for d in image.darrays]
        parts.append(np.stack(arrays) if all(a.ndim == 1 for a in arrays) else np.asarray(arrays[0]).T)
        step = meta.get("TimeStep")
        if step:
            steps.add(float(step) / 1000.0)
    if parts[0].shape != parts[1].shape:
        raise ValueError(
            f"{paths[0]} holds {parts[0].shape} (time, vertex) values but {paths[1]} holds "
            f"{parts[1].shape}: the hemispheres must match"
        )
    return np.concatenate(parts, axis=1), (steps.pop() if len(steps) == 1 else None)


def save_nifti(data, path: str | os.PathLike, **options) -> Path:
    """:func:`surface_to_volume` written to ``path`` (``.nii`` or ``.nii.gz``), atomically; the path is checked
    before the projection runs."""
    import nibabel as nib

    path = Path(path)
    if not path.name.endswith((".nii", ".nii.gz")):
        raise ValueError(f"{path}: expected a file name ending in .nii or .nii.gz")
    check_writable(path, "NIfTI file")
    volume = surface_to_volume(data, **options)
    with atomic_path(path, "NIfTI file") as tmp:
        nib.save(volume, tmp)
    return path


# -- measured BOLD ------------------------------------------------------------------------------------------------
def load_ground_truth(
    source, *, mesh: str = "fsaverage5", tr_s: float | None = None, start_s: float = 0.0
) -> xr.DataArray:
    """Measured BOLD as a ``(time, vertex)`` DataArray whose ``time`` is seconds after the stimulus onset.

    ``source``: an array ``(time, vertex)``; a DataArray with ``time``/``vertex`` dims (its ``time``
    coordinate, if any, is used as is); a Dataset with one such variable; a path to NetCDF/Zarr
    (:func:`open_dataset`), to ``.npy``, the ``(left, right)`` GIFTI pair, or a NIfTI volume (projected with
    :func:`volume_to_surface` onto ``mesh``). Without a time coordinate, volume ``i`` is at
    ``start_s + i · TR``, TR from ``tr_s``, else the file (NIfTI header, GIFTI ``TimeStep``), else 1 s.
    """
    file_tr = None
    if isinstance(source, (list, tuple)):
        source, file_tr = load_gifti(source)
    elif isinstance(source, (str, os.PathLike)):
        source, file_tr = _read_bold_file(Path(source), mesh)
    if isinstance(source, xr.Dataset):
        candidates = [n for n, v in source.data_vars.items() if {"time", "vertex"} <= set(v.dims)]
        if len(candidates) != 1:
            raise ValueError(
                f"ground-truth Dataset has {len(candidates)} variables with (time, vertex) dims "
                f"({candidates}); pass the one to use as a DataArray"
            )
        source = source[candidates[0]]
    if isinstance(source, xr.DataArray):
        if set(source.dims) != {"time", "vertex"}:
            raise ValueError(f"ground-truth DataArray has dims {source.dims}; expected ('time', 'vertex')")
        values = source.transpose("time", "vertex").values
        times = source["time"].values.astype(np.float64) if "time" in source.coords else None
    else:
        values, times = np.asarray(source), None
    if values.ndim != 2 or values.shape[1] not in [2 * n for n in FSAVERAGE_SIZES.values()]:
        raise ValueError(
            f"ground truth has shape {values.shape}; expected (time, vertex) with vertex = "
            f"{2 * FSAVERAGE_SIZES[check_mesh(mesh)]:,} for {mesh} (left hemisphere first)"
        )
    if not np.issubdtype(values.dtype, np.number) or np.iscomplexobj(values):
        raise ValueError(f"ground truth has dtype {values.dtype}; expected real numbers")
    infinite = np.isinf(values)
    if infinite.any():  # NaN marks missing data (its vertices get a NaN r, with a warning); infinity, a broken file
        row, vertex = np.argwhere(infinite)[0]
        raise ValueError(
            f"ground truth holds {int(infinite.sum()):,} infinite value(s), the first at volume {row}, vertex "
            f"{vertex}; NaN marks missing data, infinity cannot be compared"
        )
    if times is None:
        step = float(tr_s if tr_s is not None else file_tr or 1.0)
        if not step > 0:
            raise ValueError(f"tr_s={tr_s!r}: expected a positive number of seconds")
        times = start_s + np.arange(len(values)) * step
    if len(times) > 1 and not np.all(np.diff(times) > 0):
        raise ValueError("ground-truth times must increase")
    return xr.DataArray(
        values,
        dims=("time", "vertex"),
        coords={"time": ("time", times, {"units": "s", "reference": "stimulus onset"})},
        name="ground_truth",
    )


def _read_bold_file(path: Path, mesh: str):
    import nibabel as nib

    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file")
    name = path.name.lower()
    if name.endswith((".nii", ".nii.gz")):
        image = nib.load(str(path))
        zooms = image.header.get_zooms()
        tr = float(zooms[3]) if len(zooms) > 3 and zooms[3] > 0 else None
        if tr is not None and image.header.get_xyzt_units()[1] == "msec":
            tr /= 1000.0
        values = volume_to_surface(image, mesh=mesh)
        return (values[None] if values.ndim == 1 else values), tr
    if name.endswith(".npy"):
        return np.load(path), None
    if name.endswith((".nc", ".zarr")) or path.is_dir():
        return open_dataset(path), None
    raise ValueError(
        f"{path}: unsupported ground-truth file; expected .nii/.nii.gz (volume), .nc/.zarr, .npy "
        "or the (left, right) GIFTI pair"
    )
