"""The prediction Dataset's schema in one place: building it, its events table (encoded as coordinates and
decoded back), checking it, and the round trip through files (what NetCDF/Zarr cannot hold is dropped before
writing and restored after reading).

::

    <xarray.Dataset>
    Dimensions:    (time: T, vertex: V, subject: S, event: E, overlap: K)
    Coordinates:
      * time       (time) float64   start of each TR, s (attrs: tr_s, hemodynamic_offset_s)
      * vertex     (vertex) int64   0 ... V-1 (left hemisphere first)
        hemi       (vertex) object  'left' | 'right' (indexed)
        roi        (vertex) object  region names (indexed by RegionIndex; when an atlas is attached)
      * subject    (subject) object subject row names ('average', '0', ... , fitted names)
        window     (time) int64     the model window each TR was taken from
        event_*    (event)          the events table, one coordinate per column (``predict`` only)
        tr_events  (time, overlap)  indices of the events overlapping each TR (-1 pads)
        words      (time) object    the words heard in each TR
    Data variables:
        prediction (time, vertex, subject) float32
    Attributes: flat and NetCDF-safe (see REQUIRED_ATTRS; ``subject_provenance``, a JSON string, when fitted
    subject rows are predicted)

In files (:func:`to_storage`), every data variable carries ``checksum_sha256`` in its attributes: the sha256 of
its dtype, shape and little-endian C-order bytes (:func:`variable_checksum`); :func:`from_storage` checks it
(``verify=True``) and drops it, so that the Dataset in memory never carries a stale one.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import xarray as xr

from ._version import __version__
from .atlas import DEFAULT_ATLAS, Atlas, attach_atlas_or_warn
from .events.table import EVENT_COLUMNS, NUMERIC_COLUMNS
from .model import TribeModel
from .regions import RegionIndex
from .surface import mesh_for_vertices

EVENT_DIM = "event"
OVERLAP_DIM = "overlap"
DIMS = ("time", "vertex", "subject")
REQUIRED_ATTRS = (
    "model",
    "model_revision",
    "weights_sha256",
    "tribev2_version",
    "mesh",
    "feature_rate_hz",
    "modalities",
    "stimulus_path",
    "stimulus_sha256",
    "stimulus_duration_s",
    "atlas",
)


def build_dataset(
    prediction: np.ndarray,
    *,
    model: TribeModel,
    subject_names: Sequence[str],
    modalities: Sequence[str],
    duration_s: float,
    precision: str,
    window: np.ndarray | None = None,
    hop_s: float | None = None,
    stimulus: Mapping[str, object] | None = None,
    atlas: str | Atlas | None = DEFAULT_ATLAS,
    cache_dir: str | os.PathLike | None = None,
) -> xr.Dataset:
    """Wrap a ``(time, vertex, subject)`` array in the schema (with ``roi`` from ``atlas`` when it is available,
    else a warning; ``cache_dir`` is where atlases are cached). ``precision``: what the run computed in."""
    config = model.config
    n_time, n_vertices, _ = prediction.shape
    mesh = mesh_for_vertices(n_vertices)
    time = xr.Variable(
        "time",
        np.arange(n_time) * config.tr_s,
        attrs={
            "units": "s",
            "reference": "stimulus onset",
            "tr_s": config.tr_s,
            "hemodynamic_offset_s": config.hemodynamic_offset_s,
            "long_name": f"start of each TR; row t models BOLD at t + {config.hemodynamic_offset_s:g} s",
        },
    )
    half = n_vertices // 2
    coords = {
        "time": time,
        "vertex": ("vertex", np.arange(n_vertices, dtype=np.int64)),
        "hemi": ("vertex", np.array(["left"] * half + ["right"] * half, dtype=object)),
        "subject": ("subject", np.array(list(subject_names), dtype=object)),
    }
    if window is not None:
        coords["window"] = (
            "time",
            np.asarray(window, dtype=np.int64),
            {"long_name": f"index of the {config.window_s:g}-s model window"},
        )
    stimulus = dict(stimulus or {})
    attrs = {
        "model": getattr(model, "source", ""),
        "model_revision": getattr(model, "revision", ""),
        "weights_sha256": getattr(model, "weights_sha256", ""),
        "tribev2_version": __version__,
        "mesh": mesh,
        "feature_rate_hz": config.feature_rate_hz,
        "modalities": ",".join(modalities),
        "stimulus_path": str(stimulus.get("path", "")),
        "stimulus_sha256": str(stimulus.get("sha256", "")),
        "stimulus_duration_s": duration_s,
        "window_s": config.window_s,
        "hop_s": config.window_s if hop_s is None else float(hop_s),
        "atlas": "",
        "precision": precision,
    }
    fitted = {name: config.subject_provenance[name] for name in subject_names if name in config.subject_provenance}
    if fitted:  # the fitted rows' records (fitted from what, when), one JSON string: flat and NetCDF-safe
        attrs["subject_provenance"] = json.dumps(fitted, sort_keys=True)
    data = xr.DataArray(
        prediction.astype(np.float32, copy=False),
        dims=("time", "vertex", "subject"),
        attrs={"long_name": "predicted BOLD response", "units": "a.u."},
    )
    ds = xr.Dataset({"prediction": data}, coords=coords, attrs=attrs).set_xindex("hemi")
    return ds if atlas is None else attach_atlas_or_warn(ds, atlas, cache_dir=cache_dir)


def check_dataset(ds: xr.Dataset) -> xr.Dataset:
    """``ds`` if it follows the schema (``prediction (time, vertex, subject)`` on a whole fsaverage mesh, a
    ``time`` coordinate in seconds, the required attributes), else a ``ValueError`` saying what is off."""
    if not isinstance(ds, xr.Dataset):
        raise TypeError(f"expected a prediction xarray.Dataset, got {type(ds).__name__}")
    if "prediction" not in ds.data_vars:
        raise ValueError(f"this Dataset has no 'prediction' variable (variables: {list(ds.data_vars)})")
    if tuple(ds["prediction"].dims) != DIMS:
        raise ValueError(f"prediction has dims {ds['prediction'].dims}; expected {DIMS}")
    mesh_for_vertices(ds.sizes["vertex"])
    if ds["time"].attrs.get("units") != "s" or "tr_s" not in ds["time"].attrs:
        raise ValueError("the 'time' coordinate needs units='s' and tr_s attributes")
    missing = [name for name in REQUIRED_ATTRS if name not in ds.attrs]
    if missing:
        raise ValueError(f"this Dataset lacks the attribute(s) {missing}")
    return ds


def attach_events(ds: xr.Dataset, events: pd.DataFrame) -> xr.Dataset:
    """Add the events table to ``ds`` (coordinates ``event_<column>`` along ``event``; missing strings
    become ``""`` so that NetCDF can store them), ``tr_events (time, overlap)`` and ``words (time)``.

    An event overlaps the TR ``[t, t + tr)`` when it starts before ``t + tr`` and ends after ``t`` (an event
    of zero duration: when it starts inside the TR)."""
    table = events.reset_index(drop=True)
    coords = {EVENT_DIM: (EVENT_DIM, np.arange(len(table), dtype=np.int64))}
    for column in EVENT_COLUMNS:
        values = table[column]
        coords[f"event_{column}"] = (
            EVENT_DIM,
            values.to_numpy(np.float64)
            if column in NUMERIC_COLUMNS
            else np.array([v if isinstance(v, str) else "" for v in values], dtype=object),
        )
    overlaps = _tr_overlaps(table, ds.sizes["time"], float(ds["time"].attrs.get("tr_s", 1.0)))
    texts = table["text"].fillna("").astype(str).to_numpy(object)
    is_word = (table["type"] == "Word").to_numpy()
    words = np.array([" ".join(texts[[i for i in row if i >= 0 and is_word[i]]]) for row in overlaps], dtype=object)
    coords["tr_events"] = (
        ("time", OVERLAP_DIM),
        overlaps,
        {"long_name": f"indices along '{EVENT_DIM}' of the events overlapping each TR (-1: none)"},
    )
    coords["words"] = ("time", words, {"long_name": "words (Word events) overlapping each TR"})
    return ds.assign_coords(coords)


def events_table(ds: xr.Dataset, *, time: float | None = None) -> pd.DataFrame:
    """The events table stored in a Dataset returned by :func:`predict` (all of it, or the events that
    overlap the TR holding ``time`` seconds: the one starting at ``time``, or the last one starting before
    it). Missing strings read back as ``""``."""
    if f"event_{EVENT_COLUMNS[0]}" not in ds.coords:
        raise ValueError("this Dataset holds no events table (it comes from predict_features, not predict)")
    table = pd.DataFrame(
        {
            c: pd.Series(ds[f"event_{c}"].values.tolist(), dtype=np.float64 if c in NUMERIC_COLUMNS else "str")
            for c in EVENT_COLUMNS
        }
    )
    if time is None:
        return table
    starts = ds.indexes["time"]
    tr_s = float(ds["time"].attrs.get("tr_s", 1.0))
    index = int(starts.get_indexer([time], method="pad")[0]) if len(starts) else -1
    if index < 0 or time >= starts[-1] + tr_s:
        span = f"{starts[0]:g} to {starts[-1] + tr_s:g} s" if len(starts) else "none"
        raise ValueError(f"time={time!r} s is outside the prediction's TRs ({span})")
    rows = ds["tr_events"].isel(time=index).values
    return table.iloc[rows[rows >= 0]]


def _tr_overlaps(events: pd.DataFrame, n_time: int, tr_s: float) -> np.ndarray:
    """``(n_time, max overlaps)`` int64 event indices per TR, ascending, padded with -1."""
    starts, durations = events["start"].to_numpy(float), events["duration"].to_numpy(float)
    first = np.floor(starts / tr_s).astype(np.int64)
    end = np.where(durations > 0, np.ceil((starts + durations) / tr_s), first + 1).astype(np.int64)
    first, end = np.clip(first, 0, n_time), np.clip(end, 0, n_time)
    counts = np.maximum(end - first, 0)
    event = np.repeat(np.arange(len(events)), counts)
    tr = np.concatenate([np.arange(a, b) for a, b in zip(first, end)]) if len(events) else np.zeros(0, np.int64)
    order = np.lexsort((event, tr))
    tr, event = tr[order], event[order]
    per_tr = np.bincount(tr, minlength=n_time)
    slot = np.arange(len(tr)) - np.repeat(np.cumsum(per_tr) - per_tr, per_tr)
    table = np.full((n_time, max(1, int(per_tr.max(initial=0)))), -1, dtype=np.int64)
    table[tr, slot] = event
    return table


# -- the round trip through files ---------------------------------------------------------------------------------
CHECKSUM_ATTR = "checksum_sha256"


class CorruptDatasetError(ValueError):
    """A saved Dataset whose data no longer match the checksums written with it."""


def variable_checksum(values: np.ndarray) -> str:
    """sha256 of an array's dtype, shape and little-endian C-order bytes (text arrays: of their items)."""
    values = np.asarray(values)
    digest = hashlib.sha256(f"{values.shape}".encode())
    if values.dtype.kind in "OUST":
        digest.update("\0".join(map(str, values.ravel().tolist())).encode("utf-8", "surrogatepass"))
    else:
        digest.update(values.dtype.newbyteorder("<").str.encode())
        digest.update(np.ascontiguousarray(values, dtype=values.dtype.newbyteorder("<")).tobytes())
    return digest.hexdigest()


def to_storage(ds: xr.Dataset) -> xr.Dataset:
    """``ds`` without the secondary indexes (``hemi``, ``roi``) that files cannot store, each data variable with
    its ``checksum_sha256`` attribute."""
    extra = [name for name in ds.xindexes if name not in ds.dims]
    ds = ds.drop_indexes(extra) if extra else ds
    return ds.assign(
        {
            name: variable.assign_attrs({CHECKSUM_ATTR: variable_checksum(variable.values)})
            for name, variable in ds.data_vars.items()
        }
    )


def from_storage(ds: xr.Dataset, *, source: str = "dataset", verify: bool = True) -> xr.Dataset:
    """A Dataset read from a file (``source``, named in errors) with what :func:`to_storage` dropped restored:
    string coordinates as Python objects (files give fixed-width or NumPy StringDType strings back), the ``hemi``
    and ``roi`` indexes. With ``verify``, a data variable whose values differ from its stored checksum is a
    :class:`CorruptDatasetError` naming the variable and ``source``; the checksums are dropped."""
    for name, variable in ds.data_vars.items():
        stored = variable.attrs.pop(CHECKSUM_ATTR, None)  # read from a file: the attrs are this Dataset's own
        if verify and stored is not None and variable_checksum(variable.values) != stored:
            raise CorruptDatasetError(
                f"{source}: the variable {name!r} is corrupt (its values no longer match "
                f"the checksum saved with them); restore the file from a copy or predict "
                f"again"
            )
    ds = ds.assign_coords({name: coord.astype(object) for name, coord in ds.coords.items() if coord.dtype.kind in "UT"})
    for name, index in (("hemi", None), ("roi", RegionIndex)):
        if name in ds.coords and name not in ds.xindexes:
            ds = ds.set_xindex(name, index) if index else ds.set_xindex(name)
    return ds
