"""Rendering cost of the views: the scene, one view, a movie frame, a figure grid, an HTML report.

Workloads, on a synthetic prediction (smooth random maps, ``--seconds`` TRs on ``--mesh``):

* ``scene``: building the off-screen cortex (meshes, sulcal shading, VTK window) once;
* ``view``: re-colouring it and rendering one view (what a slider step or a movie frame costs), per view,
  with multisampling (the figures and the viewer) and without (movie and report frames);
* ``movie``: ``save_movie`` of every TR in two views (frames/s, including H.264 encoding);
* ``figure``: ``plot_surface`` of 3 time points × 2 views, rasterised to PNG;
* ``report``: ``save_report`` of every TR (no stimulus video), and its size.

Rendering is VTK (OpenGL): off-screen through EGL without a display. ``--device cuda`` renders on the
NVIDIA GPU that EGL exposes (``--egl-device`` picks one when there are several); ``cpu`` uses Mesa's llvmpipe
(what a headless machine without a GPU has). Usage::

    python benchmarks/bench_viz.py                       # fsaverage5, 60 TRs, CPU (llvmpipe)
    python benchmarks/bench_viz.py --device cuda --seconds 300
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np


def synthetic_prediction(mesh: str, seconds: int, seed: int = 0):
    """Smooth-in-time random maps ``(time, vertex)`` with the prediction Dataset's coordinates."""
    import xarray as xr

    from tribev2.surface import FSAVERAGE_SIZES

    rng = np.random.default_rng(seed)
    n_vertices = 2 * FSAVERAGE_SIZES[mesh]
    values = np.cumsum(rng.standard_normal((seconds, n_vertices)), axis=0).astype(np.float32)
    values /= np.sqrt(np.arange(1, seconds + 1))[:, None]
    return xr.Dataset(
        {"prediction": (("time", "vertex", "subject"), values[:, :, None])},
        coords={
            "time": ("time", np.arange(float(seconds)), {"tr_s": 1.0, "hemodynamic_offset_s": 5.0}),
            "vertex": np.arange(n_vertices),
            "subject": ["average"],
        },
        attrs={"mesh": mesh},
    )


def _gpu_renderer() -> list[str]:
    """The OpenGL vendor and renderer, as PyVista's report reads them."""
    import pyvista

    report = pyvista.GPUInfo()
    return [report.vendor, report.renderer]


def _view_ms(scene, view: str, maps, scale, repeats: int = 10) -> float:
    """Milliseconds to re-colour the scene and render ``view`` (after one warm-up render)."""
    scene.image(view)
    began = time.perf_counter()
    for values in maps.values[:repeats]:
        scene.paint(scale.colors(values, scene.background))
        scene.image(view)
    return (time.perf_counter() - began) / min(repeats, len(maps.values)) * 1000


def timed(function, *args, **kwargs):
    began = time.perf_counter()
    result = function(*args, **kwargs)
    return time.perf_counter() - began, result


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mesh", default="fsaverage5")
    parser.add_argument("--seconds", type=int, default=60, help="TRs in the synthetic prediction")
    parser.add_argument("--size", type=int, nargs=2, default=(480, 360), help="pixels of one hemisphere's view")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--egl-device", type=int, default=0, help="EGL device index with --device cuda")
    parser.add_argument("--output", help="also write the results as JSON here")
    args = parser.parse_args(argv)

    os.environ.setdefault("VTK_DEFAULT_OPENGL_WINDOW", "vtkEGLRenderWindow")
    if args.device == "cuda":
        os.environ["VTK_DEFAULT_EGL_DEVICE_INDEX"] = str(args.egl_device)
    else:
        os.environ["LIBGL_ALWAYS_SOFTWARE"] = "1"  # Mesa llvmpipe even where a GPU is present

    from tribev2 import viz
    from tribev2.viz.scene import BrainScene, ColorScale, brain_maps

    ds = synthetic_prediction(args.mesh, args.seconds)
    maps = brain_maps(ds)
    scale = ColorScale.for_values(maps.values, percentile=99)
    results = {
        "mesh": args.mesh,
        "seconds": args.seconds,
        "size": list(args.size),
        "device": args.device,
        "machine": platform.platform(),
        "processor": platform.processor() or platform.machine(),
    }

    for smooth_edges in (True, False):  # multisampled (figures, the viewer) vs not (movie and report frames)
        seconds, scene = timed(BrainScene, args.mesh, size=tuple(args.size), smooth_edges=smooth_edges)
        results["renderer"] = _gpu_renderer()
        key = "multisampled" if smooth_edges else "plain"
        results[f"scene_build_s_{key}"] = round(seconds, 3)
        results[f"view_ms_{key}"] = {view: round(_view_ms(scene, view, maps, scale), 1) for view in viz.VIEWS}
        scene.close()

    with tempfile.TemporaryDirectory() as folder:
        seconds, movie = timed(
            viz.save_movie,
            ds,
            Path(folder) / "bench.mp4",
            views=["lateral", "dorsal"],
            percentile=99,
            size=tuple(args.size),
        )
        results["movie_s"] = round(seconds, 2)
        results["movie_frames_per_s"] = round(args.seconds / seconds, 1)
        results["movie_mb"] = round(movie.stat().st_size / 1e6, 2)
        seconds, figure = timed(
            viz.plot_surface,
            ds,
            time=[0, args.seconds // 2, args.seconds - 1],
            views=["lateral", "medial"],
            percentile=99,
            size=tuple(args.size),
        )
        png_seconds, _ = timed(figure.savefig, Path(folder) / "bench.png")
        results["figure_s"] = round(seconds + png_seconds, 2)
        seconds, report = timed(viz.save_report, ds, Path(folder) / "bench.html", percentile=99, size=tuple(args.size))
        results["report_s"] = round(seconds, 2)
        results["report_mb"] = round(report.stat().st_size / 1e6, 2)

    print(json.dumps(results, indent=2))
    if args.output:
        Path(args.output).write_text(json.dumps(results, indent=2))
    return results


if __name__ == "__main__":
    main()
