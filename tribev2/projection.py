"""Moving maps between spaces: volume -> surface (measured BOLD onto fsaverage), surface -> volume (a map as
a NIfTI image on the MNI152 grid), and resampling between fsaverage resolutions.

Volume -> surface follows the reference: nilearn ``vol_to_surf`` with a ball of radius 3 mm around each pial
vertex and linear interpolation. Surface -> volume puts each vertex's value into the voxels its cortical
column crosses (points from white to pial surface, nearest voxel; voxels reached by several vertices get their
mean), on the MNI152 2 mm grid by default, optionally smoothed with a Gaussian kernel normalised by the cortex
mask (so values near cortex keep their amplitude). fsaverage coordinates are MNI305 millimetres, a close
(few-mm) stand-in for MNI152.
"""

from __future__ import annotations

import os

import numpy as np
import xarray as xr

from .surface import FSAVERAGE_SIZES, HEMIS, apply_to_vertices, check_mesh, load_surface, mesh_for_vertices

# -- volumes -----------------------------------------------------------------------------------------------------
VOLUME_TO_SURFACE = {"kind": "ball", "radius": 3.0, "interpolation": "linear"}  # the reference's projection
COLUMN_DEPTHS = (0.0, 0.25, 0.5, 0.75, 1.0)  # white -> pial fractions sampled by surface_to_volume


def volume_to_surface(image, *, mesh: str = "fsaverage5") -> np.ndarray:
    """A volume (NIfTI path or image, 3-D or 4-D, MNI space) projected to ``mesh`` as the reference does:
    ``(vertex,)`` for 3-D, ``(time, vertex)`` for 4-D, left hemisphere first."""
    import nibabel as nib
    from nilearn.surface import vol_to_surf

    image = nib.load(str(image)) if isinstance(image, (str, os.PathLike)) else image
    parts = [
        vol_to_surf(image, surf_mesh=load_surface(mesh, "pial", hemi).to_nilearn(), **VOLUME_TO_SURFACE)
        for hemi in HEMIS
    ]  # each (V,) or (V, T)
    return np.concatenate(parts, axis=0).T


def surface_to_volume(data, *, target=None, fwhm_mm: float | None = None, mesh: str | None = None):
    """A surface map (``(vertex,)`` or ``(time, vertex)``) as a NIfTI image on ``target``'s grid (default
    the MNI152 2 mm template grid), see the module documentation. ``fwhm_mm`` smooths with a Gaussian of that
    full width at half maximum, normalised by the cortex mask. Voxels off cortex are 0."""
    import nibabel as nib
    import scipy.ndimage

    values, tr_s, has_time = time_by_vertex(data)  # (T, V)
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
    return scipy.sparse.csr_matrix(
        (np.ones(len(voxel_ids)), (voxel_ids, vertex_ids)), shape=(int(np.prod(shape)), offset)
    )


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
    if not isinstance(data, (xr.DataArray, xr.Dataset)) or "vertex" not in data.dims:
        raise TypeError(
            f"resample: expected a DataArray or Dataset with a 'vertex' dimension, got {type(data).__name__} (wrap an "
            f"array as xr.DataArray(values, dims=('time', 'vertex')))"
        )
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
    matrix = scipy.sparse.csr_matrix(
        (np.concatenate(weights), (np.concatenate(rows), np.concatenate(cols))), shape=(2 * n_target, 2 * n_source)
    )

    def apply(variable: xr.DataArray) -> xr.DataArray:
        moved = apply_to_vertices(matrix, np.asarray(variable.values), variable.get_axis_num("vertex"))
        dtype = variable.dtype if np.issubdtype(variable.dtype, np.floating) else np.float64
        return xr.DataArray(
            moved.astype(dtype, copy=False), dims=variable.dims, attrs=variable.attrs, name=variable.name
        )

    coords = {
        "vertex": ("vertex", np.arange(2 * n_target, dtype=np.int64)),
        "hemi": ("vertex", np.array(["left"] * n_target + ["right"] * n_target, dtype=object)),
    }
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


def time_by_vertex(data) -> tuple[np.ndarray, float, bool]:
    """A surface map as ``(T, V)`` float64, its TR (s; 1 when unknown) and whether it had a time axis."""
    tr_s = 1.0
    if isinstance(data, xr.DataArray):
        if "subject" in data.dims:
            if data.sizes["subject"] != 1:
                raise ValueError(
                    f"data has {data.sizes['subject']} subjects; select one first, e.g. .sel(subject='average')"
                )
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
