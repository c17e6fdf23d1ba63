"""How much overlapping windows (``hop_s``) change predictions near window edges, on the e2e fixture.

The e2e fixture (``../shared/e2e``) holds a 130-s stimulus, the tiny brain checkpoint the reference ran, and the
features each of its two 100-s windows received. Joined end to end they are the stimulus's features at 2 Hz;
they go through ``predict_features`` with back-to-back windows (the reference) and with a 50-s hop (windows at
0, 50, 100 s; each TR taken from the window where it is most central). The change is reported by distance from
the nearest edge of the back-to-back window a TR sat in, with the compute cost (windows run).

    python benchmarks/bench_overlap.py [--shared ../shared] [--hop 50]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from safetensors.torch import load_file

import tribev2
from tribev2.predict import Windows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shared", type=Path, default=Path(__file__).resolve().parents[1].parent / "shared")
    parser.add_argument("--hop", type=float, default=50.0)
    args = parser.parse_args()

    e2e = args.shared / "e2e"
    expected = load_file(e2e / "expected" / "pr29_dedup.safetensors")
    model = tribev2.load_model(e2e / "brain", device="cpu")
    features = {m: expected[f"features_{m}"].permute(1, 2, 0, 3).flatten(2).numpy() for m in model.config.modalities}
    duration = 130.0
    runs = {}
    for hop in (None, args.hop):
        start = time.perf_counter()
        ds = tribev2.predict_features(features, model=model, atlas=None, duration_s=duration, hop_s=hop)
        runs[hop] = (ds, time.perf_counter() - start, Windows.plan(duration, model.config, hop).n_windows)
    plain, overlapped = runs[None][0], runs[args.hop][0]
    a = plain.prediction.isel(subject=0).values  # (T, V)
    b = overlapped.prediction.isel(subject=0).values
    window_s = model.config.window_s
    start_of_tr = plain.time.values
    edge = np.minimum(start_of_tr % window_s, window_s - 1 - start_of_tr % window_s)  # TRs from the nearest edge
    scale = np.abs(a).mean()
    print(
        f"e2e fixture: {duration:g} s, {a.shape[1]} vertices; windows: back to back {runs[None][2]} "
        f"({runs[None][1]:.2f} s), hop {args.hop:g} s {runs[args.hop][2]} ({runs[args.hop][1]:.2f} s)"
    )
    print(f"mean |prediction| {scale:.4f}")
    print(
        "| TRs from the nearest window edge | TRs | TRs changed | mean abs change | max abs change | "
        "mean abs change / mean abs prediction | r (changed TRs, all vertices) |"
    )
    print("|---|---|---|---|---|---|---|")
    for lo, hi in ((0, 0), (1, 4), (5, 9), (10, 24), (25, 49)):
        rows = (edge >= lo) & (edge <= hi)
        if not rows.any():
            continue
        diff = np.abs(a[rows] - b[rows])
        changed = diff.max(axis=1) > 0
        r = np.corrcoef(a[rows][changed].ravel(), b[rows][changed].ravel())[0, 1] if changed.any() else np.nan
        label = f"{lo}" if lo == hi else f"{lo}-{hi}"
        print(
            f"| {label} | {rows.sum()} | {changed.sum()} | {diff.mean():.2e} | {diff.max():.2e} | "
            f"{diff.mean() / scale:.3f} | {r:.4f} |"
        )


if __name__ == "__main__":
    main()
