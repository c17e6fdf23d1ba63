"""``tribev2.predict`` end to end: time per stage, and (``--e2e``) full parity with the reference fixture.

Workloads:

* ``demo``: the committed demo stimulus (11-s MP4 with speech) with the demo extractors, a demo brain model
  and Whisper tiny.en: events (soundtrack, speech recognition, sentences), features, brain model; cold (empty
  cache) and warm (cached soundtrack, transcript and features).
* ``--e2e``: ``../shared/e2e`` (the reference ``TribeModel`` on a 130-s MP4 with tiny models): the events,
  the features of both 100-s windows (text, audio and all 260 video clips) and the (130, 1284) predictions
  compared with the fixture (``pr29_dedup``), atol 1e-4. On two CPU cores the video clips take about ten
  minutes; on a GPU, seconds.

Usage::

    python benchmarks/bench_predict.py                         # demo, CPU
    python benchmarks/bench_predict.py --device cuda --e2e     # demo + full e2e parity on a GPU
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from importlib import resources
from pathlib import Path

import numpy as np

SHARED = Path(__file__).resolve().parents[2] / "shared"


def timed(fn, *args, **kwargs):
    began = time.perf_counter()
    result = fn(*args, **kwargs)
    return result, round(time.perf_counter() - began, 2)


def bench_demo(device: str) -> dict:
    from tribev2.demo import demo_extractors, demo_model
    from tribev2.events import events_from, packaged_tiny_whisper
    from tribev2.features import feature_dims
    from tribev2.predict import Windows, predict, predict_features, window_features

    video = str(resources.files("tribev2.data").joinpath("demo_stimulus.mp4"))
    whisper = str(packaged_tiny_whisper())
    extractors, load_s = timed(demo_extractors, device=device, progress=False)
    model = demo_model(feature_dims=feature_dims(extractors), device=device)
    events, events_s = timed(events_from, video, asr_model=whisper, device=device)
    windows = Windows.plan(float(events["stop"].max()), model.config)
    features, features_s = timed(window_features, events, extractors=extractors, windows=windows)
    _, model_s = timed(predict_features, features, model=model, duration_s=float(events["stop"].max()), atlas=None)
    _, warm_s = timed(
        predict, video, model=model, extractors=extractors, asr_model=whisper, atlas=None, device=device, progress=False
    )
    return {
        "stimulus_s": float(events["stop"].max()),
        "extractors_load_s": load_s,
        "events_s": events_s,
        "features_s": features_s,
        "brain_s": model_s,
        "predict_warm_s": warm_s,
    }


def bench_e2e(device: str, shared: Path) -> dict:
    import pandas as pd
    from safetensors.numpy import load_file

    from tribev2 import load_model
    from tribev2.events import events_from
    from tribev2.features import AudioExtractor, TextExtractor, VideoExtractor
    from tribev2.predict import Windows, predict, window_features

    folder, models = shared / "e2e", shared / "features" / "models"
    expected = load_file(str(folder / "expected" / "pr29_dedup.safetensors"))
    model = load_model(folder / "brain", device=device)
    extractors = [
        TextExtractor(models / "text", device=device),
        AudioExtractor(models / "audio", device=device),
        VideoExtractor(models / "vjepa2", device=device),
    ]
    stimulus, transcript = folder / "stimulus" / "stimulus.mp4", folder / "stimulus" / "whisperx.json"
    events = events_from(stimulus, transcript=transcript)
    reference = pd.read_parquet(folder / "events" / "pr29_dedup.parquet")
    report = {
        "events_equal": bool(
            (events["context"] == reference["context"]).all() and np.array_equal(events["start"], reference["start"])
        )
    }
    windows = Windows.plan(float(events["stop"].max()), model.config)
    features, report["features_s"] = timed(window_features, events, extractors=extractors, windows=windows)
    for modality in features[0]:
        ours = np.stack([window[modality] for window in features])
        report[f"features_{modality}_max_abs_diff"] = float(np.abs(ours - expected[f"features_{modality}"]).max())
    ds, report["predict_cached_features_s"] = timed(
        predict,
        stimulus,
        transcript=transcript,
        model=model,
        extractors=extractors,
        atlas=None,
        device=device,
        progress=False,
    )
    report["preds_shape"] = list(ds.prediction.isel(subject=0).shape)
    report["preds_max_abs_diff"] = float(np.abs(ds.prediction.isel(subject=0).values - expected["preds"]).max())
    report["parity"] = bool(
        report["events_equal"]
        and report["preds_max_abs_diff"] <= 1e-4
        and all(v <= 1e-4 for k, v in report.items() if k.endswith("_max_abs_diff"))
    )
    return report


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--e2e", action="store_true", help="also run the full end-to-end parity check")
    parser.add_argument("--shared", type=Path, default=SHARED, help="the shared fixtures folder")
    args = parser.parse_args()
    os.environ["TRIBEV2_CACHE"] = tempfile.mkdtemp(prefix="tribev2-bench-")  # a script's own process: fine
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch

    results = {
        "machine": {
            "python": sys.version.split()[0],
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "torch": torch.__version__,
            "device": args.device,
            "gpu": torch.cuda.get_device_name(0) if args.device.startswith("cuda") else None,
        }
    }
    results["demo"] = bench_demo(args.device)
    if args.e2e:
        results["e2e"] = bench_e2e(args.device, args.shared)
    print(json.dumps(results, indent=1))
    return 0 if not args.e2e or results["e2e"]["parity"] else 1


if __name__ == "__main__":
    sys.exit(main())
