"""Files in and out: prediction Datasets (NetCDF or Zarr, indexes restored), surface maps as GIFTI, volumes as
NIfTI (surface <-> MNI152 volume), measured BOLD for :func:`tribev2.evaluate`, and resampling between fsaverage
resolutions.

Volume -> surface follows the reference: nilearn ``vol_to_surf`` with a ball of radius 3 mm around each pial
vertex and linear interpolation. Surface -> volume puts each vertex's value into the voxels its cortical
column crosses (points from white to pial surface, nearest voxel; voxels reached by several vertices get their
mean), on the MNI152 2 mm grid by default, optionally smoothed with a Gaussian kernel normalised by the cortex
mask (so values near cortex keep their amplitude). fsaverage coordinates are MNI305 millimetres, a close
(few-mm) stand-in for MNI152.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np
import xarray as xr

from .cache import atomic_path
from .surface import FSAVERAGE_SIZES, HEMIS, apply_to_vertices, check_mesh, load_surface, mesh_for_vertices

NETCDF_ENGINE = "h5netcdf"  # NetCDF-4 with variable-length strings, pure wheels


def save_dataset(ds: xr.Dataset, path: str | os.PathLike) -> Path:
    """Write ``ds`` to NetCDF (default) or Zarr (``.zarr`` suffix), atomically: an interrupted write leaves
    any earlier file at ``path`` as it was."""
    path = Path(path)
    flat = _drop_custom_indexes(ds)
    with atomic_path(path) as tmp:
        if path.suffix == ".zarr":
            flat.to_zarr(tmp, mode="w", consolidated=False)
        else:
            flat.to_netcdf(tmp, engine=NETCDF_ENGINE)
    return path


def open_dataset(path: str | os.PathLike) -> xr.Dataset:
    """Read a Dataset written by :func:`save_dataset` (or ``Dataset.to_netcdf``) into memory, with the
    indexes that :func:`tribev2.predict_features` returns."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file")
    if path.suffix == ".zarr" or path.is_dir():
        ds = xr.open_zarr(path, consolidated=False).load()
    else:
        with xr.open_dataset(path, engine=NETCDF_ENGINE) as opened:
            ds = opened.load()
    return restore_indexes(ds)


def restore_indexes(ds: xr.Dataset) -> xr.Dataset:
    """Re-create the secondary indexes that files cannot store: ``hemi`` and ``roi`` (a
    :class:`tribev2.atlas.RegionIndex`) along ``vertex``."""
    from .atlas import RegionIndex

    ds = _object_strings(ds)
    for name, index in (("hemi", None), ("roi", RegionIndex)):
        if name in ds.coords and name not in ds.xindexes:
            ds = ds.set_xindex(name, index) if index else ds.set_xindex(name)
    return ds


def _object_strings(ds: xr.Dataset) -> xr.Dataset:
    """String coordinates as Python-object arrays, as predictions hold them (files give fixed-width or NumPy
    StringDType strings back)."""
    return ds.assign_coords({name: coord.astype(object) for name, coord in ds.coords.items()
                             if coord.dtype.kind in "UT"})


def _drop_custom_indexes(ds: xr.Dataset) -> xr.Dataset:
    extra = [name for name in ds.xindexes if name not in ds.dims]
    return ds.drop_indexes(extra) if extra else ds


# -- surface maps as GIFTI ---------------------------------------------------------------------------------------
def save_gifti(data, path: str | os.PathLike) -> tuple[Path, Path]:
    """Write a surface map (``(vertex,)`` or ``(time, vertex)``; a DataArray with at most one subject, or an
    array) as one GIFTI functional file per hemisphere: ``<path>_hemi-L.func.gii`` and
    ``<path>_hemi-R.func.gii`` (one data array per time point, TR in the ``TimeStep`` metadata, ms)."""
    import nibabel as nib

    values, tr_s, _ = _time_by_vertex(data)
    mesh_for_vertices(values.shape[1])  # both hemispheres of a whole mesh, or a clear error
    half = values.shape[1] // 2
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    written = []
    for hemi, part in zip(HEMIS, (values[:, :half], values[:, half:])):
        meta = {"AnatomicalStructurePrimary": "CortexLeft" if hemi == "left" else "CortexRight",
                "TimeStep": f"{tr_s * 1000:g}"}
        image = nib.gifti.GiftiImage(meta=nib.gifti.GiftiMetaData(meta), darrays=[
            nib.gifti.GiftiDataArray(row.astype(np.float32), intent="NIFTI_INTENT_TIME_SERIES"
                                     if len(part) > 1 else "NIFTI_INTENT_NONE", datatype="NIFTI_TYPE_FLOAT32")
            for row in part])
        target = path.with_name(f"{path.name}_hemi-{hemi[0].upper()}.func.gii")
        nib.save(image, target)
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
            raise ValueError(f"{file} holds the {other[6:].lower()} hemisphere ({structure}); expected the "
                             f"{hemi} one here: pass the files as (left, right)")
        if not image.darrays:
            raise ValueError(f"{file}: a GIFTI file without data arrays; expected a functional map")
        arrays = [np.asarray(d.data, dtype=np.float64) for d in image.darrays]
        parts.append(np.stack(arrays) if all(a.ndim == 1 for a in arrays) else np.asarray(arrays[0]).T)
        step = meta.get("TimeStep")
        if step:
            steps.add(float(step) / 1000.0)
    if parts[0].shape != parts[1].shape:
        raise ValueError(f"{paths[0]} holds {parts[0].shape} (time, vertex) values but {paths[1]} holds "
                         f"{parts[1].shape}: the hemispheres must match")
    return np.concatenate(parts, axis=1), (steps.pop() if len(steps) == 1 else None)


# -- volumes -----------------------------------------------------------------------------------------------------
VOLUME_TO_SURFACE = {"kind": "ball", "radius": 3.0, "interpolation": "linear"}  # the reference's projection
COLUMN_DEPTHS = (0.0, 0.25, 0.5, 0.75, 1.0)  # white -> pial fractions sampled by surface_to_volume


def volume_to_surface(image, *, mesh: str = "fsaverage5") -> np.ndarray:
    """A volume (NIfTI path or image, 3-D or 4-D, MNI space) projected to ``mesh`` as the reference does:
    ``(vertex,)`` for 3-D, ``(time, vertex)`` for 4-D, left hemisphere first."""
    import nibabel as nib
    from nilearn.surface import vol_to_surf

    image = nib.load(str(image)) if isinstance(image, (str, os.PathLike)) else image
    parts = [vol_to_surf(image, surf_mesh=load_surface(mesh, "pial", hemi).to_nilearn(), **VOLUME_TO_SURFACE)
             for hemi in HEMIS]  # each (V,) or (V, T)
    return np.concatenate(parts, axis=0).T


def surface_to_volume(data, *, target=None, fwhm_mm: float | None = None, mesh: str | None = None):
    """A surface map (``(vertex,)`` or ``(time, vertex)``) as a NIfTI image on ``target``'s grid (default
    the MNI152 2 mm template grid), see the module documentation. ``fwhm_mm`` smooths with a Gaussian of that
    full width at half maximum, normalised by the cortex mask. Voxels off cortex are 0."""
    import nibabel as nib
    import scipy.ndimage

    values, tr_s, has_time = _time_by_vertex(data)  # (T, V)
    mesh = check_mesh(mesh) if mesh else mesh_for_vertices(values.shape[1])
    if values.shape[1] != 2 * FSAVERAGE_SIZES[mesh]:
        raise ValueError(f"data has {values.shape[1]:,} vertices; {mesh} has {2 * FSAVERAGE_SIZES[mesh]:,}")
    grid = _target_grid(target)
    shape, affine = grid.shape[:3], grid.affine
    voxel_of_vertex = _column_voxels(mesh, shape, affine)  # sparse (n_voxels, V) hit counts
    hits = np.asarray(voxel_of_vertex.sum(axis=1)).ravel()
    with np.errstate(invalid="ignore", divide="ignore"):
        volume = (voxel_of_vertex @ values.T) / hits[:, None]  # (n_voxels, T)
    covered = hits > 0
    volume[~covered] = 0.0
    volume = volume.reshape(shape + (values.shape[0],))
    if fwhm_mm:
        sigma = fwhm_mm / np.sqrt(8 * np.log(2)) / np.abs(np.diag(affine)[:3])
        weight = scipy.ndimage.gaussian_filter(covered.reshape(shape).astype(np.float64), sigma)
        near = weight > 0.05 * weight.max()
        for t in range(volume.shape[-1]):
            smoothed = scipy.ndimage.gaussian_filter(volume[..., t], sigma)
            volume[..., t] = np.where(near, smoothed / np.where(near, weight, 1.0), 0.0)
    volume = volume if has_time else volume[..., 0]
    image = nib.Nifti1Image(volume.astype(np.float32), affine)
    image.header.set_xyzt_units("mm", "sec")
    if volume.ndim == 4:
        image.header.set_zooms(image.header.get_zooms()[:3] + (tr_s,))
    return image


def save_nifti(data, path: str | os.PathLike, **options) -> Path:
    """:func:`surface_to_volume` written to ``path`` (``.nii`` or ``.nii.gz``)."""
    import nibabel as nib

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(surface_to_volume(data, **options), path)
    return path


def _target_grid(target):
    import nibabel as nib
    from nilearn.datasets import load_mni152_template

    if target is None:
        return load_mni152_template(resolution=2)
    return nib.load(str(target)) if isinstance(target, (str, os.PathLike)) else target


def _column_voxels(mesh: str, shape: tuple[int, int, int], affine: np.ndarray):
    """Sparse ``(n_voxels, 2N)`` counts of the cortical-column points of each vertex falling in each voxel."""
    import scipy.sparse

    inverse = np.linalg.inv(affine)
    voxel_ids, vertex_ids = [], []
    offset = 0
    for hemi in HEMIS:
        white = load_surface(mesh, "white", hemi).coordinates
        pial = load_surface(mesh, "pial", hemi).coordinates
        for depth in COLUMN_DEPTHS:
            points = white + depth * (pial - white)
            ijk = np.rint(points @ inverse[:3, :3].T + inverse[:3, 3]).astype(np.int64)
            inside = np.all((ijk >= 0) & (ijk < np.array(shape)), axis=1)
            voxel_ids.append(np.ravel_multi_index(tuple(ijk[inside].T), shape))
            vertex_ids.append(np.flatnonzero(inside) + offset)
        offset += len(white)
    voxel_ids, vertex_ids = np.concatenate(voxel_ids), np.concatenate(vertex_ids)
    return scipy.sparse.csr_matrix((np.ones(len(voxel_ids)), (voxel_ids, vertex_ids)),
                                   shape=(int(np.prod(shape)), offset))


# -- measured BOLD ------------------------------------------------------------------------------------------------
def load_ground_truth(source, *, mesh: str = "fsaverage5", tr_s: float | None = None,
                      start_s: float = 0.0) -> xr.DataArray:
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
            raise ValueError(f"ground-truth Dataset has {len(candidates)} variables with (time, vertex) dims "
                             f"({candidates}); pass the one to use as a DataArray")
        source = source[candidates[0]]
    if isinstance(source, xr.DataArray):
        if set(source.dims) != {"time", "vertex"}:
            raise ValueError(f"ground-truth DataArray has dims {source.dims}; expected ('time', 'vertex')")
        values = source.transpose("time", "vertex").values
        times = source["time"].values.astype(np.float64) if "time" in source.coords else None
    else:
        values, times = np.asarray(source), None
    if values.ndim != 2 or values.shape[1] not in [2 * n for n in FSAVERAGE_SIZES.values()]:
        raise ValueError(f"ground truth has shape {values.shape}; expected (time, vertex) with vertex = "
                         f"{2 * FSAVERAGE_SIZES[check_mesh(mesh)]:,} for {mesh} (left hemisphere first)")
    if not np.issubdtype(values.dtype, np.number):
        raise ValueError(f"ground truth has dtype {values.dtype}; expected numbers")
    if times is None:
        step = float(tr_s if tr_s is not None else file_tr or 1.0)
        if not step > 0:
            raise ValueError(f"tr_s={tr_s!r}: expected a positive number of seconds")
        times = start_s + np.arange(len(values)) * step
    if len(times) > 1 and not np.all(np.diff(times) > 0):
        raise ValueError("ground-truth times must increase")
    return xr.DataArray(values, dims=("time", "vertex"),
                        coords={"time": ("time", times, {"units": "s", "reference": "stimulus onset"})},
                        name="ground_truth")


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
    raise ValueError(f"{path}: unsupported ground-truth file; expected .nii/.nii.gz (volume), .nc/.zarr, .npy "
                     "or the (left, right) GIFTI pair")


# -- resampling between fsaverage resolutions -----------------------------------------------------------------------
def resample(data, mesh: str, *, method: str = "nearest", k: int = 5):
    """``data`` (DataArray or Dataset with a ``vertex`` dimension covering both hemispheres) on another
    fsaverage ``mesh``, matching vertices on the sphere: ``"nearest"`` vertex, or ``"idw"``: inverse-distance
    weights over the ``k`` nearest (a coinciding vertex takes its value exactly, so going to a coarser mesh
    keeps the nested vertices' values either way). A ``roi`` coordinate is re-attached from ``attrs["atlas"]``
    on the new mesh; when that atlas cannot be loaded there (a custom atlas read with ``path=``, files coarser
    than ``mesh``, offline), each vertex takes the region of its nearest source vertex."""
    import scipy.sparse
    from scipy.spatial import cKDTree

    from .atlas import AtlasUnavailableError, RegionIndex, attach_atlas

    if method not in ("nearest", "idw"):
        raise ValueError(f"method={method!r}: expected 'nearest' or 'idw'")
    source_mesh, mesh = mesh_for_vertices(data.sizes["vertex"]), check_mesh(mesh)
    n_source, n_target = FSAVERAGE_SIZES[source_mesh], FSAVERAGE_SIZES[mesh]
    neighbours = 1 if method == "nearest" else min(k, n_source)
    rows, cols, weights = [], [], []
    for h, hemi in enumerate(HEMIS):
        source = load_surface(source_mesh, "sphere", hemi).coordinates
        target = load_surface(mesh, "sphere", hemi).coordinates
        distance, index = cKDTree(source).query(target, k=neighbours)
        distance, index = distance.reshape(n_target, -1), index.reshape(n_target, -1)
        exact = distance[:, :1] < 1e-6
        weight = np.where(exact, (distance < 1e-6).astype(float), 1.0 / np.maximum(distance, 1e-12))
        rows.append(np.repeat(np.arange(n_target), neighbours) + h * n_target)
        cols.append(index.ravel() + h * n_source)
        weights.append((weight / weight.sum(axis=1, keepdims=True)).ravel())
    matrix = scipy.sparse.csr_matrix((np.concatenate(weights), (np.concatenate(rows), np.concatenate(cols))),
                                     shape=(2 * n_target, 2 * n_source))

    def apply(variable: xr.DataArray) -> xr.DataArray:
        moved = apply_to_vertices(matrix, np.asarray(variable.values), variable.get_axis_num("vertex"))
        dtype = variable.dtype if np.issubdtype(variable.dtype, np.floating) else np.float64
        return xr.DataArray(moved.astype(dtype, copy=False), dims=variable.dims, attrs=variable.attrs,
                            name=variable.name)

    coords = {"vertex": ("vertex", np.arange(2 * n_target, dtype=np.int64)),
              "hemi": ("vertex", np.array(["left"] * n_target + ["right"] * n_target, dtype=object))}
    if isinstance(data, xr.DataArray):
        result = apply(data)
    else:
        result = xr.Dataset({n: apply(v) if "vertex" in v.dims else v for n, v in data.data_vars.items()})
    keep = {n: c for n, c in data.coords.items() if "vertex" not in c.dims}
    result = result.assign_coords({**keep, **coords}).set_xindex("hemi")
    result = result.assign_attrs({**data.attrs, "mesh": mesh})
    if "roi" not in data.coords:
        return result
    try:
        return attach_atlas(result, data.attrs["atlas"])
    except (KeyError, ValueError, AtlasUnavailableError):  # no atlas name, unknown or too coarse, unavailable
        nearest = np.asarray(matrix.argmax(axis=1)).ravel()  # the source vertex of largest weight
        roi = data["roi"].variable
        return result.assign_coords(roi=("vertex", roi.values[nearest], roi.attrs)).set_xindex("roi", RegionIndex)


def _time_by_vertex(data) -> tuple[np.ndarray, float, bool]:
    """A surface map as ``(T, V)`` float64, its TR (s; 1 when unknown) and whether it had a time axis."""
    tr_s = 1.0
    if isinstance(data, xr.DataArray):
        if "subject" in data.dims:
            if data.sizes["subject"] != 1:
                raise ValueError(f"data has {data.sizes['subject']} subjects; select one first, e.g. "
                                 ".sel(subject='average')")
            data = data.isel(subject=0)
        extra = [d for d in data.dims if d not in ("time", "vertex")]
        if extra or "vertex" not in data.dims:
            raise ValueError(f"data has dims {data.dims}; expected ('vertex',) or ('time', 'vertex')")
        if "time" in data.dims:
            tr_s = float(data["time"].attrs.get("tr_s", tr_s))
            data = data.transpose("time", "vertex")
    values = np.asarray(data.values if isinstance(data, xr.DataArray) else data, dtype=np.float64)
    if values.ndim not in (1, 2):
        raise ValueError(f"data has shape {values.shape}; expected (vertex,) or (time, vertex)")
    return np.atleast_2d(values), tr_s, values.ndim == 2
