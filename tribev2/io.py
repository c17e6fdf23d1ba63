"""Reading and writing prediction Datasets (NetCDF or Zarr) with their indexes restored."""

from __future__ import annotations

import os
from pathlib import Path

import xarray as xr

NETCDF_ENGINE = "h5netcdf"  # NetCDF-4 with variable-length strings, pure wheels


def save_dataset(ds: xr.Dataset, path: str | os.PathLike) -> Path:
    """Write ``ds`` to NetCDF (default) or Zarr (``.zarr`` suffix), atomically for NetCDF."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    flat = _drop_custom_indexes(ds)
    if path.suffix == ".zarr":
        flat.to_zarr(path, mode="w")
        return path
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        flat.to_netcdf(tmp, engine=NETCDF_ENGINE)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def open_dataset(path: str | os.PathLike) -> xr.Dataset:
    """Read a Dataset written by :func:`save_dataset` (or ``Dataset.to_netcdf``) into memory, with the
    indexes that :func:`tribev2.predict_features` returns."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file")
    if path.suffix == ".zarr" or path.is_dir():
        ds = xr.open_zarr(path).load()
    else:
        with xr.open_dataset(path, engine=NETCDF_ENGINE) as opened:
            ds = opened.load()
    return restore_indexes(ds)


def restore_indexes(ds: xr.Dataset) -> xr.Dataset:
    """Re-create the secondary indexes that files cannot store."""
    for name in ("hemi", "roi"):
        if name in ds.coords and name not in ds.xindexes:
            ds = ds.set_xindex(name)
    return ds


def _drop_custom_indexes(ds: xr.Dataset) -> xr.Dataset:
    extra = [name for name in ds.xindexes if name not in ds.dims]
    return ds.drop_indexes(extra) if extra else ds
