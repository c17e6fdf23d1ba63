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
  started and warmed up (models loaded) before the clock starts;
* ``1 worker, Dask's allocator``: the 1-worker cluster with glibc's thresholds as Dask's nanny leaves them
  (``MALLOC_MMAP_THRESHOLD_=131072`` beside Dask's ``MALLOC_TRIM_THRESHOLD_``, which turns off
  :func:`tribev2.many.keep_large_buffers_on_the_heap`): what that tuning buys, in the same run.

Overhead = (wall time of a variant - the loop's) / the loop's. The variants run ``--repeats`` times,
interleaved, and the fastest of each counts (the build machine is shared).

Usage::

    python benchmarks/bench_many.py                       # 6 stimuli of 300 s, CPU
    python benchmarks/bench_many.py --stimuli 8 --seconds 600 --device cuda
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

VOCABULARY = (
    "the a one of to and in that it was for on as with he she they at by from this had not but what all "
    "were when we there can an your which their said if do will each about how up out them then many some so "
    "these would other into has more her two like him see time could no make than first been its who now "
    "people my made over did down only way find use may water long little very after words called just where "
    "most know get through back much before go good new write our used me man too any day same right look "
    "think also around another came come work three word must because does part even place well such"
)
WORDS = VOCABULARY.split()


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


def cpu_name() -> str:
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
        return next(line.split(":", 1)[1].strip() for line in lines if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or platform.machine()


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stimuli", type=int, default=6)
    parser.add_argument("--seconds", type=float, default=300.0)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeats", type=int, default=3, help="interleaved repeats; the fastest of each counts")
    args = parser.parse_args(argv)

    import dask
    import torch
    from distributed import Client, LocalCluster

    from tribev2 import predict_many, save_dataset
    from tribev2.demo import demo_extractors, demo_model
    from tribev2.features import feature_dims
    from tribev2.predict import predict, resolve_predictor

    work = Path(tempfile.mkdtemp(prefix="bench_many-"))
    cache = work / "cache"
    source = str(
        demo_model(
            feature_dims=feature_dims(demo_extractors(device=args.device, progress=False, cache_dir=cache)),
            device=args.device,
            cache_dir=cache,
        ).source
    )
    options = {"model": source, "extractors": "demo", "atlas": None, "device": args.device, "cache_dir": cache}
    torch.set_num_threads(1)
    model, extractors = resolve_predictor(source, "demo", device=args.device, progress=False, cache_dir=cache)
    total_s = args.stimuli * args.seconds
    times: dict[str, list[float]] = {}
    seeds = iter(range(1000))

    def timed(name: str, run) -> None:
        stimuli = write_stimuli(work / f"s{len(times)}", args.stimuli, args.seconds, seed=next(seeds))
        began = time.perf_counter()
        run(stimuli, work / f"{next(seeds)}.zarr")
        times.setdefault(name, []).append(time.perf_counter() - began)
        print(f"{name}: {times[name][-1]:.1f} s", flush=True)

    def loop(stimuli, folder: Path) -> None:
        for path in stimuli:
            ds = predict(
                path,
                model=model,
                extractors=extractors,
                atlas=None,
                device=args.device,
                cache_dir=cache,
                progress=False,
            )
            save_dataset(ds, folder / f"{Path(path).stem}.zarr")

    with contextlib.ExitStack() as stack:
        clients = {}
        dask_allocator = {"distributed.nanny.pre-spawn-environ.MALLOC_MMAP_THRESHOLD_": 131072}
        for label, n_workers, config in (
            ("1 worker", 1, {}),
            ("2 workers", 2, {}),
            ("1 worker, Dask's allocator", 1, dask_allocator),
        ):
            with dask.config.set(config):
                cluster = stack.enter_context(
                    LocalCluster(n_workers=n_workers, processes=True, threads_per_worker=1, dashboard_address=":0")
                )
            clients[label] = stack.enter_context(Client(cluster))
        # warm-up (not timed): models loaded everywhere, the extractors' and the Zarr writer's first calls
        for client in (None, *clients.values()):
            warm = write_stimuli(work / "warm", 2, 110.0, seed=next(seeds))
            predict_many(warm, store=work / f"warm{next(seeds)}.zarr", client=client, progress=False, **options)
        variants = {
            "loop of predict (baseline)": loop,
            "predict_many, in-process": lambda s, store: predict_many(s, store=store, progress=False, **options),
        }
        for label, client in clients.items():
            variants[f"predict_many, LocalCluster {label} x 1 thread"] = lambda s, store, client=client: predict_many(
                s, store=store, client=client, progress=False, **options
            )
        for _ in range(args.repeats):  # interleaved, so that other work on the machine hits every variant
            for name, run in variants.items():
                timed(name, run)
    rows = [
        {"variant": name, "wall_s": min(values), "throughput": total_s / min(values)} for name, values in times.items()
    ]

    base = rows[0]["wall_s"]
    print(
        f"\n{cpu_name()}, {os.cpu_count()} cores, torch {torch.__version__}, "
        f"load average at the end: {os.getloadavg()[0]:.1f}; {args.stimuli} stimuli x {args.seconds:g} s "
        f"(text, release-geometry demo brain model, {args.device})\n"
    )
    print("| variant | wall s | throughput (stimulus s / s) | overhead vs loop |")
    print("|---|---|---|---|")
    for row in rows:
        overhead = "" if row is rows[0] else f"{100 * (row['wall_s'] - base) / base:+.1f} %"
        print(f"| {row['variant']} | {row['wall_s']:.1f} | {row['throughput']:.1f} | {overhead} |")


if __name__ == "__main__":
    main()
