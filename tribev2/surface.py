"""Cortical meshes: which fsaverage resolution a vertex count means, and the meshes themselves.

Meshes come from nilearn: fsaverage5 ships inside its wheel (works offline); fsaverage6 and fsaverage
(fsaverage7) are downloaded once by nilearn's fetcher into ``~/nilearn_data``. The coarser fsaverage3 and
fsaverage4 are derived from fsaverage5 by icosahedral nesting: their vertices are the first 642 / 2,562
vertices of every finer fsaverage mesh, and their triangles are the convex hull of those vertices on the sphere
(on an icosahedral sphere the hull is exactly the coarser subdivision).

Example::

    >>> from tribev2.surface import load_surface, load_sulcal_depth
    >>> mesh = load_surface("fsaverage5", "half-inflated", "left")
    >>> mesh.coordinates.shape, mesh.faces.shape
    ((10242, 3), (20480, 3))
    >>> load_sulcal_depth("fsaverage5", "left").shape
    (10242,)
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

# Vertices per hemisphere of each icosahedral fsaverage resolution; coarser meshes are nested in finer
# ones (fsaverage(k) vertex i is fsaverage(k+1) vertex i).
FSAVERAGE_SIZES = {"fsaverage3": 642, "fsaverage4": 2562, "fsaverage5": 10242, "fsaverage6": 40962, "fsaverage": 163842}
HEMIS = ("left", "right")
SURFACES = ("pial", "white", "inflated", "sphere", "half-inflated", "flat")

# our surface name -> nilearn's fetch_surf_fsaverage key prefix
_NILEARN_SURFACES = {"pial": "pial", "white": "white", "inflated": "infl", "sphere": "sphere", "flat": "flat"}
_NESTED_IN = "fsaverage5"  # the mesh coarser meshes are cut from (the one shipped with nilearn)


@dataclass(frozen=True)
class Surface:
    """One hemisphere's triangle mesh: ``coordinates (N, 3)`` in mm and ``faces (F, 3)`` vertex indices.

    Works wherever nilearn takes a mesh as ``(coordinates, faces)``; :meth:`to_nilearn` gives its mesh object.
    """

    coordinates: np.ndarray  # (N, 3) float
    faces: np.ndarray  # (F, 3) int
    mesh: str = ""
    surface: str = ""
    hemi: str = ""

    @property
    def n_vertices(self) -> int:
        return len(self.coordinates)

    def __iter__(self):  # unpacks as (coordinates, faces), the form nilearn and PyVista helpers accept
        return iter((self.coordinates, self.faces))

    def to_nilearn(self):
        """The mesh as a ``nilearn.surface.InMemoryMesh``."""
        from nilearn.surface import InMemoryMesh

        return InMemoryMesh(coordinates=self.coordinates, faces=self.faces)


def mesh_for_vertices(n_vertices: int) -> str:
    """The fsaverage mesh whose two hemispheres hold ``n_vertices`` vertices (left first)."""
    for mesh, per_hemi in FSAVERAGE_SIZES.items():
        if n_vertices == 2 * per_hemi:
            return mesh
    sizes = ", ".join(f"{2 * n:,} ({m})" for m, n in FSAVERAGE_SIZES.items())
    raise ValueError(f"{n_vertices:,} vertices match no fsaverage mesh; expected one of {sizes}")


def n_vertices_per_hemi(mesh: str) -> int:
    """Vertices in one hemisphere of ``mesh`` (``"fsaverage3"`` ... ``"fsaverage6"``, ``"fsaverage"``)."""
    return FSAVERAGE_SIZES[check_mesh(mesh)]


def check_mesh(mesh: str) -> str:
    """``mesh`` itself if it names an fsaverage resolution (``"fsaverage7"`` means ``"fsaverage"``)."""
    mesh = "fsaverage" if mesh == "fsaverage7" else mesh
    if mesh not in FSAVERAGE_SIZES:
        raise ValueError(f"mesh={mesh!r}: expected one of {', '.join(map(repr, FSAVERAGE_SIZES))}")
    return mesh


def load_surface(mesh: str = "fsaverage5", surface: str = "inflated", hemi: str = "left") -> Surface:
    """One hemisphere of an fsaverage mesh.

    ``surface`` is ``"pial"``, ``"white"``, ``"inflated"``, ``"sphere"`` (radius 100 mm),
    ``"half-inflated"`` (the vertex-wise mean of pial and inflated, the reference's default view) or
    ``"flat"`` (a cut flat map: same vertices, fewer faces; not available for fsaverage3/4). ``hemi`` is
    ``"left"`` or ``"right"``. Arrays are read-only (meshes are cached); copy them before editing.
    """
    mesh, hemi = check_mesh(mesh), check_hemi(hemi)
    if surface not in SURFACES:
        raise ValueError(f"surface={surface!r}: expected one of {', '.join(map(repr, SURFACES))}")
    if surface == "half-inflated":
        pial, inflated = load_surface(mesh, "pial", hemi), load_surface(mesh, "inflated", hemi)
        coordinates = _read_only(0.5 * pial.coordinates + 0.5 * inflated.coordinates)
        return Surface(coordinates, pial.faces, mesh, surface, hemi)
    n = FSAVERAGE_SIZES[mesh]
    if n < FSAVERAGE_SIZES[_NESTED_IN]:
        if surface == "flat":
            raise ValueError(
                f"no flat map for {mesh}: its faces cannot be cut from fsaverage5's flat map; "
                "use surface='inflated' or a finer mesh"
            )
        coordinates, _ = _nilearn_mesh(_NESTED_IN, surface, hemi)
        return Surface(_read_only(coordinates[:n]), _nested_faces(mesh, hemi), mesh, surface, hemi)
    coordinates, faces = _nilearn_mesh(mesh, surface, hemi)
    return Surface(coordinates, faces, mesh, surface, hemi)


def load_sulcal_depth(mesh: str = "fsaverage5", hemi: str = "left") -> np.ndarray:
    """FreeSurfer sulcal depth (``sulc``, mm; positive in sulci) per vertex of one hemisphere, ``(N,)``."""
    mesh, hemi = check_mesh(mesh), check_hemi(hemi)
    n = FSAVERAGE_SIZES[mesh]
    return _read_only(_nilearn_map(max(mesh, _NESTED_IN, key=FSAVERAGE_SIZES.get), "sulc", hemi)[:n])


def check_hemi(hemi: str) -> str:
    """``hemi`` itself if it is ``"left"`` or ``"right"``."""
    if hemi not in HEMIS:
        raise ValueError(f"hemi={hemi!r}: expected 'left' or 'right'")
    return hemi


def apply_to_vertices(matrix, values: np.ndarray, axis: int) -> np.ndarray:
    """A (sparse) ``matrix (G, V)`` applied along ``axis`` (of length V) of ``values``; G takes its place.
    The shared step of region means and mesh resampling."""
    moved = np.moveaxis(values, axis, 0)
    flat = np.ascontiguousarray(moved.reshape(moved.shape[0], -1))  # (V, rest)
    result = matrix @ flat  # (G, rest)
    return np.moveaxis(result.reshape((result.shape[0],) + moved.shape[1:]), 0, axis)


def _read_only(array: np.ndarray) -> np.ndarray:
    array.setflags(write=False)
    return array


@functools.cache
def _nilearn_files(mesh: str) -> dict:
    from nilearn import datasets

    try:
        return dict(datasets.fetch_surf_fsaverage(mesh))
    except Exception as error:  # nilearn raises requests/OS errors when it cannot download
        raise RuntimeError(
            f"could not get the {mesh} meshes through nilearn ({error}); fsaverage5 works "
            f"offline, finer meshes are downloaded once into ~/nilearn_data"
        ) from error


@functools.cache
def _nilearn_mesh(mesh: str, surface: str, hemi: str) -> tuple[np.ndarray, np.ndarray]:
    import nibabel as nib

    image = nib.load(_nilearn_files(mesh)[f"{_NILEARN_SURFACES[surface]}_{hemi}"])
    coordinates = image.agg_data("NIFTI_INTENT_POINTSET").astype(np.float64)
    faces = image.agg_data("NIFTI_INTENT_TRIANGLE").astype(np.int64)
    return _read_only(coordinates), _read_only(faces)


@functools.cache
def _nilearn_map(mesh: str, kind: str, hemi: str) -> np.ndarray:
    import nibabel as nib

    return _read_only(np.asarray(nib.load(_nilearn_files(mesh)[f"{kind}_{hemi}"]).agg_data(), dtype=np.float64))


@functools.cache
def _nested_faces(mesh: str, hemi: str) -> np.ndarray:
    """Triangles of a mesh coarser than fsaverage5: the convex hull of its vertices on the sphere, wound
    counter-clockwise seen from outside (as FreeSurfer's)."""
    from scipy.spatial import ConvexHull

    points = _nilearn_mesh(_NESTED_IN, "sphere", hemi)[0][: FSAVERAGE_SIZES[mesh]]
    faces = ConvexHull(points).simplices.astype(np.int64)
    corners = points[faces]  # (F, 3, 3)
    normals = np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0])
    inward = (normals * corners.mean(axis=1)).sum(axis=1) < 0
    faces[inward] = faces[inward][:, ::-1]
    return _read_only(faces)
