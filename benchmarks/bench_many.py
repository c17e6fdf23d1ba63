"""``tribev2.predict_many``: throughput (stimulus seconds per wall second) and overhead against a plain loop.

Workload: ``--stimuli`` word-list transcripts of ``--seconds`` seconds each (text only: the demo text extractor,
a tiny Llama) through the demo brain model at release geometry (100-s windows, 20,484 vertices), atlas off.
Every variant gets its own freshly written stimuli of the same shape (same number of words, other words), so
none reads features another one cached; models are loaded (warm) before the clock starts, and every variant
writes its results as Zarr.

Variants, in one run, on one machine:

* ``loop``: ``for s in stimuli: save_dataset(predict(s, model=..., extractors=...), "<name>.zarr")`` with the
  loaded model and extractors, torch on 1 thread (as a 1-thread Dask worker) — the baseline;
* ``in-process``: ``predict_many(stimuli, store=...)`` with ``client=None`` (torch on 1 thread);
* ``1 worker`` / ``2 workers``: ``predict_many`` on a ``LocalCluster`` of 1 or 2 processes, 1 thread each,
  started and warmed up (models loaded) before the clock starts.

Overhead = (wall time of a variant - the loop's) / the loop's.

Usage::

    python benchmarks/bench_many.py                       # 6 stimuli of 300 s, CPU
    python benchmarks/bench_many.py --stimuli 8 --seconds 600 --device cuda
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

WORDS = ("the a one of to and in that it was for on as with he she they at by from this had not but what all "
         "were when we there can an your which their said if do will each about how up out them then many some so "
         "these would other into has more her two like him see time could no make than first been its who now "
         "people my made over did down only way find use may water long little very after words called just where "
         "most know get through back much before go good new write our used me man too any day same right look "
         "think also around another came come work three word must because does part even place well such").split()


def write_stimuli(folder: Path, n: int, seconds: float, seed: int) -> list[str]:
    """``n`` word lists, 2 words a second for ``seconds`` s, words drawn with ``seed``."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        starts = np.arange(0.0, seconds - 0.5, 0.5)
        table = pd.DataFrame({"text": rng.choice(WORDS, len(starts)), "start": starts, "duration": 0.4})
        paths.append(str(folder / f"s{seed}_{i}.tsv"))
        table.to_csv(paths[-1], sep="\t", index=False)
    return paths


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stimuli", type=int, default=6)
    parser.add_argument("--seconds", type=float, default=300.0)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args(argv)

    import torch
    from distributed import Client, LocalCluster

    from tribev2 import predict_many, save_dataset
    from tribev2.demo import demo_extractors, demo_model
    from tribev2.features import feature_dims
    from tribev2.predict import predict, resolve_predictor

    work = Path(tempfile.mkdtemp(prefix="bench_many-"))
    cache = work / "cache"
    source = str(demo_model(feature_dims=feature_dims(demo_extractors(device=args.device, progress=False,
                                                                       cache_dir=cache)),
                            device=args.device, cache_dir=cache).source)
    options = dict(model=source, extractors="demo", atlas=None, device=args.device, cache_dir=cache)
    torch.set_num_threads(1)
    model, extractors = resolve_predictor(source, "demo", device=args.device, progress=False, cache_dir=cache)
    total_s = args.stimuli * args.seconds
    rows = []

    def record(name: str, seconds: float) -> None:
        rows.append({"variant": name, "wall_s": seconds, "throughput": total_s / seconds})
        print(f"{name}: {seconds:.1f} s", flush=True)

    # warm-up: the text extractor's first call, the Zarr writer's first import
    warm = write_stimuli(work / "warm", 1, 110.0, seed=99)
    predict_many(warm, store=work / "warm.zarr", progress=False, **options)

    stimuli = write_stimuli(work / "loop", args.stimuli, args.seconds, seed=0)
    began = time.perf_counter()
    for path in stimuli:
        ds = predict(path, model=model, extractors=extractors, atlas=None, device=args.device, cache_dir=cache,
                     progress=False)
        save_dataset(ds, work / "loop" / f"{Path(path).stem}.zarr")
    record("loop of predict (baseline)", time.perf_counter() - began)

    stimuli = write_stimuli(work / "here", args.stimuli, args.seconds, seed=1)
    began = time.perf_counter()
    predict_many(stimuli, store=work / "here.zarr", progress=False, **options)
    record("predict_many, in-process", time.perf_counter() - began)

    for n_workers in (1, 2):
        with LocalCluster(n_workers=n_workers, processes=True, threads_per_worker=1,
                          dashboard_address=":0") as cluster, Client(cluster) as client:
            warm = write_stimuli(work / f"warm{n_workers}", n_workers, 110.0, seed=90 + n_workers)
            predict_many(warm, store=work / f"warm{n_workers}.zarr", client=client, progress=False, **options)
            stimuli = write_stimuli(work / f"w{n_workers}", args.stimuli, args.seconds, seed=10 + n_workers)
            began = time.perf_counter()
            predict_many(stimuli, store=work / f"w{n_workers}.zarr", client=client, progress=False, **options)
            record(f"predict_many, LocalCluster {n_workers} worker{'s' * (n_workers > 1)} x 1 thread",
                   time.perf_counter() - began)

    base = rows[0]["wall_s"]
    print(f"\n{platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
          f"load average before: {os.getloadavg()[0]:.1f}; {args.stimuli} stimuli x {args.seconds:g} s "
          f"(text, release-geometry demo brain model, {args.device})\n")
    print("| variant | wall s | throughput (stimulus s / s) | overhead vs loop |")
    print("|---|---|---|---|")
    for row in rows:
        overhead = "" if row is rows[0] else f"{100 * (row['wall_s'] - base) / base:+.1f} %"
        print(f"| {row['variant']} | {row['wall_s']:.1f} | {row['throughput']:.1f} | {overhead} |")


if __name__ == "__main__":
    main()
