"""``tribev2.fit_subject`` on 3 runs x 300 TRs: the release geometry (8 layers of width 1152, low-rank head 2048,
fsaverage5's 20,484 vertices), seeded demo weights, synthetic features (the extractors are not timed: they are the
same work as ``predict``'s). BOLD: a planted random subject row predicted for each run, plus noise at SNR 1.

Rows, all in one process on the same runs:

* baseline: ``predict_features`` over the three runs (the forward passes any fit must make);
* ``fit_subject`` with the ridge in the low-rank head's space (2,048-d; the default) and in the encoder's
  (1,152-d, mapped into the row through the projection's pseudo-inverse).

Each fit reports its wall time, its CPU time, the held-out r (mean over vertices; the ceiling at SNR 1 is 0.707)
and the correlation of the fitted row's effective map with the planted one.

Usage::

    python benchmarks/bench_fit_subject.py [--trs 300] [--runs 3] [--threads N]
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trs", type=int, default=300)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None, help="torch/BLAS threads (default: all cores)")
    args = parser.parse_args()
    os.environ.setdefault("TRIBEV2_CACHE", tempfile.mkdtemp(prefix="bench-fit-"))
    import torch
    import xarray as xr

    import tribev2
    from tribev2.demo import demo_model, synthetic_features
    from tribev2.fitting import with_subject_row

    if args.threads:
        torch.set_num_threads(args.threads)
        from threadpoolctl import threadpool_limits

        threadpool_limits(args.threads)
    model = demo_model(device="cpu")  # the release geometry
    rng = np.random.default_rng(0)
    rank, n_vertices = model.config.low_rank_head, model.config.n_outputs
    planted = with_subject_row(
        model, "planted", rng.standard_normal((rank, n_vertices)) / rank**0.5, 0.1 * rng.standard_normal(n_vertices)
    )
    runs = [synthetic_features(model, args.trs, seed=seed) for seed in range(args.runs)]

    began, cpu = time.perf_counter(), time.process_time()
    signals = [
        tribev2.predict_features(f, model=planted, subjects="planted", atlas=None).prediction.values[:, :, 0]
        for f in runs
    ]
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch "
        f"{torch.__version__}, {torch.get_num_threads()} threads; {args.runs} runs x {args.trs} TRs, "
        f"{n_vertices} vertices"
    )
    print(
        f"| baseline: predict_features over the runs | {time.perf_counter() - began:.1f} s wall | "
        f"{time.process_time() - cpu:.1f} s CPU | | |"
    )
    bold = [
        xr.DataArray(
            s + rng.standard_normal(s.shape) * s.std(axis=0),
            dims=("time", "vertex"),
            coords={"time": np.arange(len(s)) + model.config.hemodynamic_offset_s},
        )
        for s in signals
    ]
    projection = model.low_rank_head.weight.double().numpy().T  # (H, R)
    truth = projection @ planted.predictor.weights[-1].double().numpy()
    for space in ("low_rank", "encoder"):
        began, cpu = time.perf_counter(), time.process_time()
        fitted, report = tribev2.fit_subject(model, runs, bold, name="me", space=space)
        wall, used = time.perf_counter() - began, time.process_time() - cpu
        found = projection @ fitted.predictor.weights[-1].double().numpy()
        map_r = np.corrcoef(found.ravel(), truth.ravel())[0, 1]
        print(
            f"| fit_subject, space={space} | {wall:.1f} s wall | {used:.1f} s CPU | held-out r "
            f"{float(report.held_out_r.mean()):.3f} | map r {map_r:.3f} |"
        )


if __name__ == "__main__":
    main()
