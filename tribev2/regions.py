"""Region names on the cortex: the :class:`Atlas` (a label per vertex), how annotation labels become region
names, shell-style matching of names, and :class:`RegionIndex`, the index behind ``ds.sel(roi="V1")``.

Loading and downloading atlases lives in :mod:`tribev2.atlas`.
"""

from __future__ import annotations

import difflib
import fnmatch
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from xarray.indexes import PandasIndex

from .surface import check_hemi

NO_REGION = "unassigned"
REGION_ORDER_ATTR, REGION_SEPARATOR = "regions", "\n"  # roi coordinate attribute: the atlas's names, in order
_NO_REGION_NAMES = {
    "???",
    "unknown",
    "medialwall",
    "medial_wall",
    "medial wall",
    "corpuscallosum",
    "freesurfer_defined_medial_wall",
    "background+freesurfer_defined_medial_wall",
}
_HEMI_MARKERS = re.compile(r"^[LR]_(?P<name>.+?)(_ROI)?$|^(?P<plain>.+?)[-_][lr]h$")


@dataclass(frozen=True)
class Atlas:
    """A parcellation of both hemispheres of one fsaverage mesh.

    ``labels (2·N,)`` indexes ``names`` for every vertex, left hemisphere first then right (the vertex order
    of a prediction Dataset); ``names[0]`` is :data:`NO_REGION`; ``colors (K, 4)`` holds each name's RGBA in
    0..1, from the files' colour tables.
    """

    name: str
    mesh: str
    labels: np.ndarray  # (2N,) int
    names: tuple[str, ...]
    colors: np.ndarray  # (K, 4) float
    attribution: str = ""
    source: str = ""

    @property
    def n_vertices_per_hemi(self) -> int:
        return len(self.labels) // 2

    @property
    def regions(self) -> tuple[str, ...]:
        """Region names, without :data:`NO_REGION`."""
        return self.names[1:]

    @property
    def vertex_names(self) -> np.ndarray:
        """The region name of every vertex, ``(2·N,)`` strings (left then right)."""
        return np.asarray(self.names, dtype=object)[self.labels]

    def match(self, patterns: str | Iterable[str]) -> list[str]:
        """Region names matching shell-style patterns (``"V1"``, ``"V*"``, ``"*IPS*"``), in atlas order.
        Raises ``KeyError`` listing close names when a pattern matches nothing."""
        return match_names(self.names, patterns, what=f"the {self.name} atlas")

    def vertices(self, patterns: str | Iterable[str], hemi: str | None = None) -> np.ndarray:
        """Indices (into ``2·N``) of the vertices in the matching regions, optionally of one hemisphere."""
        codes = [self.names.index(name) for name in self.match(patterns)]
        mask = np.isin(self.labels, codes)
        if hemi is not None:
            n = self.n_vertices_per_hemi
            mask[slice(n, None) if check_hemi(hemi) == "left" else slice(None, n)] = False
        return np.flatnonzero(mask)


def region_name(raw: str) -> str:
    """Our name for a label of an annotation: hemisphere markers dropped (``L_V1_ROI`` -> ``V1``,
    ``V1-lh`` -> ``V1``), every "no region" label -> :data:`NO_REGION`."""
    raw = raw.strip()
    if raw.lower() in _NO_REGION_NAMES or not raw:
        return NO_REGION
    found = _HEMI_MARKERS.match(raw)
    if found:
        raw = found.group("name") or found.group("plain")
    return NO_REGION if raw.lower() in _NO_REGION_NAMES else raw


def match_names(names: Sequence[str], patterns: str | Iterable[str], *, what: str) -> list[str]:
    """The ``names`` matching any of the shell-style ``patterns`` (case-sensitive), in ``names`` order."""
    listed = list(patterns) if isinstance(patterns, Iterable) and not isinstance(patterns, str) else [patterns]
    if not all(isinstance(p, str) for p in listed):
        raise TypeError(f"roi={patterns!r}: expected a region name, a shell-style pattern (V*), or a list of them")
    chosen = set()
    for pattern in listed:
        found = fnmatch.filter(names, pattern)
        if not found:
            lower = {n.lower(): n for n in names}
            close = difflib.get_close_matches(str(pattern).strip("*").lower(), list(lower), n=8, cutoff=0.5)
            hint = f"; close names: {', '.join(lower[n] for n in close)}" if close else ""
            raise KeyError(f"{pattern!r} matches no region of {what}{hint}")
        chosen.update(found)
    return [n for n in names if n in chosen]


class RegionIndex(PandasIndex):
    """The index of the ``roi`` coordinate: ``ds.sel(roi=...)`` takes a region name, a shell-style pattern
    (``"V*"``, ``"*IPS*"``) or a list of them, and returns every matching vertex of both hemispheres, always
    keeping the ``vertex`` dimension (also for a region of one vertex). xarray allows one index per ``sel``
    call on a dimension: select ``hemi`` in a second call, or use ``ds.tribe.sel(roi=..., hemi=...)``."""

    def sel(self, labels, method=None, tolerance=None):
        from xarray.core.indexing import IndexSelResult

        if method is not None or tolerance is not None:
            raise ValueError("roi selection takes names or patterns only (no method=, tolerance=)")
        ((_, patterns),) = labels.items()
        if isinstance(patterns, np.ndarray):
            patterns = patterns.tolist()
        names = np.asarray(self.index.values, dtype=object)
        wanted = match_names(list(pd.unique(names)), patterns, what="this data's roi coordinate")
        return IndexSelResult({self.dim: np.flatnonzero(np.isin(names, wanted))})


def region_order(roi) -> list[str]:
    """The region names present in a ``roi`` coordinate, in atlas order when it records one."""
    present = list(pd.unique(np.asarray(roi.values, dtype=object)))
    recorded = [n for n in roi.attrs.get(REGION_ORDER_ATTR, "").split(REGION_SEPARATOR) if n in set(present)]
    return recorded + [n for n in present if n not in set(recorded)]
