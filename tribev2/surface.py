"""Cortical meshes: which fsaverage resolution a vertex count means, and the meshes themselves."""

from __future__ import annotations

# Vertices per hemisphere of each icosahedral fsaverage resolution; coarser meshes are nested in finer
# ones (fsaverage(k) vertex i is fsaverage(k+1) vertex i).
FSAVERAGE_SIZES = {"fsaverage3": 642, "fsaverage4": 2562, "fsaverage5": 10242, "fsaverage6": 40962,
                   "fsaverage": 163842}


def mesh_for_vertices(n_vertices: int) -> str:
    """The fsaverage mesh whose two hemispheres hold ``n_vertices`` vertices (left first)."""
    for mesh, per_hemi in FSAVERAGE_SIZES.items():
        if n_vertices == 2 * per_hemi:
            return mesh
    sizes = ", ".join(f"{2 * n:,} ({m})" for m, n in FSAVERAGE_SIZES.items())
    raise ValueError(f"{n_vertices:,} vertices match no fsaverage mesh; expected one of {sizes}")
