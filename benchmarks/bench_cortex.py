"""Cortex-layer costs on release-sized data: a prediction of ``--duration`` seconds on fsaverage5 (20,484
vertices, one TR per second), with the HCP-MMP1 atlas read from ``--atlas-dir`` (default: the test fixtures in
``../shared/atlases``, else the cache).

Measured, best of ``--repeat`` runs each: attaching the atlas, ``ds.sel(roi="V1")``, wildcard ``ds.tribe.sel``,
``by_roi`` (hemispheres combined / separate), ``top_rois``, ``evaluate`` (vertex maps / per ROI) against
synthetic BOLD, volume -> surface (nilearn, the reference's ball projection) and surface -> volume (MNI152
2 mm, with and without 6-mm smoothing), and resampling fsaverage5 <-> fsaverage4. With ``--contributions``
also :func:`tribev2.contributions` on seeded demo weights in the release geometry on ``--device`` (the model
part is the only one that uses the device; the rest is NumPy/SciPy on the CPU). Usage::

    python benchmarks/bench_cortex.py
    python benchmarks/bench_cortex.py --duration 3600 --contributions --device cuda
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
import warnings
from pathlib import Path

import numpy as np
import xarray as xr

SHARED_ATLASES = Path(__file__).resolve().parents[2] / "shared" / "atlases"


def best_of(repeat: int, function, *args, **kwargs) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        function(*args, **kwargs)
        times.append(time.perf_counter() - start)
    return min(times)


def synthetic_prediction(duration_s: int, rng) -> xr.Dataset:
    n = 2 * 10242
    return xr.Dataset(
        {"prediction": (("time", "vertex", "subject"), rng.normal(size=(duration_s, n, 1)).astype(np.float32))},
        coords={
            "time": ("time", np.arange(float(duration_s)), {"units": "s", "tr_s": 1.0, "hemodynamic_offset_s": 5.0}),
            "window": ("time", np.arange(duration_s) // 100),
            "vertex": np.arange(n),
            "hemi": ("vertex", np.array(["left"] * (n // 2) + ["right"] * (n // 2), dtype=object)),
            "subject": ("subject", np.array(["average"], dtype=object)),
        },
        attrs={"mesh": "fsaverage5"},
    ).set_xindex("hemi")


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=int, default=600, help="seconds of prediction (TRs)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--atlas-dir", default=str(SHARED_ATLASES) if SHARED_ATLASES.is_dir() else None)
    parser.add_argument("--contributions", action="store_true", help="also time tribev2.contributions")
    parser.add_argument("--device", default="cpu", help="device of the model for --contributions")
    args = parser.parse_args(argv)

    import nibabel as nib
    from nilearn.datasets import load_mni152_template

    import tribev2
    from tribev2 import io
    from tribev2.atlas import attach_atlas

    rng = np.random.default_rng(0)
    ds = synthetic_prediction(args.duration, rng)
    atlas = tribev2.load_atlas("HCP-MMP1", path=args.atlas_dir)
    timings = {"attach atlas": best_of(args.repeat, attach_atlas, ds, atlas)}
    ds = attach_atlas(ds, atlas)
    bold = rng.normal(size=(args.duration + 5, ds.sizes["vertex"]))
    template = load_mni152_template(resolution=2)
    volume = nib.Nifti1Image(rng.normal(size=template.shape + (10,)).astype(np.float32), template.affine)
    surface = ds.prediction.isel(subject=0, time=slice(0, 10))
    fsaverage4 = io.resample(ds.prediction.isel(time=slice(0, 10)), "fsaverage4")
    steps = {
        'ds.sel(roi="V1")': lambda: ds.sel(roi="V1"),
        'ds.tribe.sel(roi="V*", hemi="left")': lambda: ds.tribe.sel(roi="V*", hemi="left"),
        "by_roi (combined)": lambda: ds.tribe.by_roi(),
        "by_roi (separate)": lambda: ds.tribe.by_roi(hemi="separate"),
        "top_rois(10)": lambda: ds.tribe.top_rois(10),
        "evaluate (vertex maps)": lambda: tribev2.evaluate(ds, bold),
        "evaluate (by ROI)": lambda: tribev2.evaluate(ds, bold, by_roi=True),
        "volume_to_surface (10 volumes)": lambda: io.volume_to_surface(volume),
        "surface_to_volume (10 TRs)": lambda: io.surface_to_volume(surface),
        "surface_to_volume (10 TRs, 6 mm)": lambda: io.surface_to_volume(surface, fwhm_mm=6.0),
        "resample fsaverage5 -> fsaverage4 (10 TRs)": lambda: io.resample(
            ds.prediction.isel(time=slice(0, 10)), "fsaverage4"
        ),
        "resample fsaverage4 -> fsaverage5 (10 TRs, idw)": lambda: io.resample(fsaverage4, "fsaverage5", method="idw"),
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name, step in steps.items():
            timings[name] = best_of(args.repeat, step)
        if args.contributions:
            timings.update(time_contributions(args))
    report = {
        "duration_s": args.duration,
        "vertices": ds.sizes["vertex"],
        "machine": platform.processor() or platform.machine(),
        "cpus": os.cpu_count(),
        "seconds": {k: round(v, 4) for k, v in timings.items()},
    }
    print(json.dumps(report, indent=2))
    return report


def time_contributions(args) -> dict:
    import torch

    import tribev2
    from tribev2.demo import demo_model, synthetic_features

    model = demo_model(device=args.device)
    features = synthetic_features(model, args.duration)
    sync = torch.cuda.synchronize if args.device.startswith("cuda") else (lambda: None)

    def run(function, **kwargs):
        function(features, model=model, atlas=None, **kwargs)
        sync()

    return {
        "predict_features (release geometry)": best_of(args.repeat, run, tribev2.predict_features),
        "contributions (3 modalities)": best_of(args.repeat, run, tribev2.contributions),
    }


if __name__ == "__main__":
    main()
