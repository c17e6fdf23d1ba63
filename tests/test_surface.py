"""Meshes: fsaverage5 from nilearn's wheel, fsaverage3/4 by icosahedral nesting, sulcal depth, bad input."""

from __future__ import annotations

import numpy as np
import pytest

from tribev2.surface import (
    FSAVERAGE_SIZES,
    HEMIS,
    SURFACES,
    load_sulcal_depth,
    load_surface,
    mesh_for_vertices,
    n_vertices_per_hemi,
)


def edges(faces: np.ndarray) -> set[tuple[int, int]]:
    pairs = np.sort(np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]]), axis=1)
    return set(map(tuple, pairs.tolist()))


@pytest.mark.parametrize("hemi", HEMIS)
@pytest.mark.parametrize("surface", SURFACES)
def test_fsaverage5_surfaces(surface, hemi):
    mesh = load_surface("fsaverage5", surface, hemi)
    assert mesh.coordinates.shape == (10242, 3) and mesh.coordinates.dtype == np.float64
    assert mesh.faces.ndim == 2 and mesh.faces.shape[1] == 3 and mesh.faces.dtype == np.int64
    assert mesh.faces.min() == 0 and mesh.faces.max() == 10241
    assert (mesh.mesh, mesh.surface, mesh.hemi) == ("fsaverage5", surface, hemi)
    if surface != "flat":  # the flat map is cut open: fewer faces
        assert mesh.faces.shape == (20480, 3)
    with pytest.raises(ValueError):
        mesh.coordinates[0, 0] = 1.0  # cached arrays are read-only


def test_half_inflated_is_the_mean_of_pial_and_inflated():
    pial, inflated = load_surface("fsaverage5", "pial"), load_surface("fsaverage5", "inflated")
    half = load_surface("fsaverage5", "half-inflated")
    np.testing.assert_allclose(half.coordinates, (pial.coordinates + inflated.coordinates) / 2)
    np.testing.assert_array_equal(half.faces, pial.faces)


def test_surface_unpacks_for_nilearn_and_pyvista_helpers():
    coordinates, faces = load_surface("fsaverage4", "sphere", "right")
    assert coordinates.shape == (2562, 3) and faces.shape == (5120, 3)
    nilearn_mesh = load_surface("fsaverage4", "sphere", "right").to_nilearn()
    assert nilearn_mesh.n_vertices == 2562


@pytest.mark.parametrize("mesh", ["fsaverage3", "fsaverage4"])
@pytest.mark.parametrize("hemi", HEMIS)
def test_coarse_meshes_are_nested_in_fsaverage5(mesh, hemi):
    n = n_vertices_per_hemi(mesh)
    fine = load_surface("fsaverage5", "sphere", hemi)
    coarse = load_surface(mesh, "sphere", hemi)
    np.testing.assert_array_equal(coarse.coordinates, fine.coordinates[:n])
    np.testing.assert_array_equal(
        load_surface(mesh, "pial", hemi).coordinates, load_surface("fsaverage5", "pial", hemi).coordinates[:n]
    )
    np.testing.assert_array_equal(load_sulcal_depth(mesh, hemi), load_sulcal_depth("fsaverage5", hemi)[:n])

    faces = coarse.faces
    assert faces.shape == (2 * n - 4, 3)
    coarse_edges = edges(faces)
    assert n - len(coarse_edges) + len(faces) == 2  # a closed sphere (Euler characteristic)
    assert np.array_equal(np.unique(faces), np.arange(n))
    # wound like FreeSurfer's: normals point outwards
    corners = coarse.coordinates[faces]
    normals = np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0])
    assert ((normals * corners.mean(axis=1)).sum(axis=1) > 0).all()
    # every coarse edge is an edge of the icosahedral subdivision: the next level puts a vertex at its midpoint,
    # joined to both of its ends in fsaverage5's own triangles (nested meshes share this property)
    finer = "fsaverage4" if mesh == "fsaverage3" else "fsaverage5"
    finer_edges = edges(load_surface(finer, "sphere", hemi).faces)
    neighbours: dict[int, set[int]] = {}
    for a, b in finer_edges:
        neighbours.setdefault(a, set()).add(b)
        neighbours.setdefault(b, set()).add(a)
    assert all(any(m >= n for m in neighbours[a] & neighbours[b]) for a, b in coarse_edges)


def test_sulcal_depth():
    for hemi in HEMIS:
        depth = load_sulcal_depth("fsaverage5", hemi)
        assert depth.shape == (10242,) and np.isfinite(depth).all()
        assert depth.min() < 0 < depth.max()  # gyri and sulci


def test_sizes_and_mesh_names():
    assert [n_vertices_per_hemi(m) for m in FSAVERAGE_SIZES] == [642, 2562, 10242, 40962, 163842]
    assert n_vertices_per_hemi("fsaverage7") == 163842
    assert mesh_for_vertices(20484) == "fsaverage5"
    with pytest.raises(ValueError, match="20,000 vertices match no fsaverage mesh"):
        mesh_for_vertices(20000)


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="mesh='fsaverage9'"):
        load_surface("fsaverage9")
    with pytest.raises(ValueError, match="surface='smooth'"):
        load_surface("fsaverage5", "smooth")
    with pytest.raises(ValueError, match="hemi='both'"):
        load_sulcal_depth("fsaverage5", "both")
    with pytest.raises(ValueError, match="no flat map for fsaverage3"):
        load_surface("fsaverage3", "flat")
