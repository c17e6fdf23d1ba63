"""What ``precision="fast"`` costs in fidelity, on a CPU: bfloat16 arithmetic against float32, with the weights
held two ways, on the full-size text and audio architectures with seeded random weights.

* **text** (Llama-3.2-3B's geometry): one context of ``--tokens`` random words' tokens (past the 1,024-word cap
  every context is this long), every hidden state. Twice: with random float32 weights, and with the same
  weights rounded to numbers a bfloat16 checkpoint holds (as meta-llama/Llama-3.2-3B stores its weights).
* **audio** (w2v-BERT 2.0's geometry, a float32 checkpoint): ``--seconds`` of espeak-ng speech
  (``bench_cpu_speech.make_speech``), every hidden state.

Schemes, each against float32 arithmetic on the same weights: *bfloat16 weights* (every weight rounded, the
model run in bfloat16: the previous ``fast``) and *float32 weights + autocast* (bfloat16 matmuls under
``torch.autocast``, the weights and the residual stream in float32: today's ``fast`` for a float32 checkpoint).
The measure: the correlation of the states with float32's, each feature centred over time (tokens or frames),
for the last state and for the mean of all states. Wall times are of one pass on this machine (AMX bfloat16
where the CPU has it).

Usage::

    python benchmarks/bench_precision.py                       # 1,100 tokens, 60 s of speech; ~13 GiB of memory
    python benchmarks/bench_precision.py --tokens 200 --seconds 20
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from bench_cpu_speech import make_speech  # noqa: E402  (the minute of speech)
from bench_features import full_configs  # noqa: E402  (the release architectures)
from bench_many import cpu_name  # noqa: E402


def centred_r(a: np.ndarray, b: np.ndarray) -> float:
    """Correlation of two ``(time, features)`` arrays, each feature centred over time."""
    a, b = a - a.mean(0), b - b.mean(0)
    return float((a * b).sum() / np.sqrt((a * a).sum() * (b * b).sum()))


def states(model, inputs: dict, arithmetic=None) -> tuple[np.ndarray, float]:
    """Every hidden state ``(n_states, time, width)`` as float32, and the pass's wall seconds."""
    import torch

    held = next(model.parameters()).dtype  # float inputs go in as the weights are held
    inputs = {k: v.to(held) if torch.is_tensor(v) and v.is_floating_point() else v for k, v in inputs.items()}
    began = time.perf_counter()
    with torch.inference_mode(), arithmetic or contextlib.nullcontext():
        hidden = model(**inputs, output_hidden_states=True).hidden_states
    seconds = time.perf_counter() - began
    return torch.stack([h[0].float() for h in hidden]).numpy(), seconds


def compare(model, inputs: dict, label: str, rows: list) -> None:
    """float32 on the model as it is, then autocast, then the model rounded to bfloat16 (left so)."""
    import torch

    reference, t32 = states(model, inputs)
    autocast, tac = states(model, inputs, torch.autocast("cpu", dtype=torch.bfloat16))
    model.to(torch.bfloat16)
    rounded, tbf = states(model, inputs)
    for scheme, got, t in (("float32 weights + autocast", autocast, tac), ("bfloat16 weights", rounded, tbf)):
        rows.append(
            {
                "case": label,
                "scheme": scheme,
                "last": centred_r(reference[-1], got[-1]),
                "mean": centred_r(reference[1:].mean(0), got[1:].mean(0)),
                "seconds": t,
                "float32_seconds": t32,
            }
        )
        print(f"  {label} | {scheme}: last-state r {rows[-1]['last']:.4f} ({t:.1f} s)", file=sys.stderr, flush=True)


def brain_states(model, features: dict, rows: list) -> None:
    """:func:`compare` for the brain model: its predictions ``(time, vertex)``, correlated per vertex over time
    (the median over vertices is reported as both columns' measure)."""
    import torch

    def run(arithmetic=None):
        held = next(model.parameters()).dtype
        began = time.perf_counter()
        with torch.inference_mode(), arithmetic or contextlib.nullcontext():
            out = model({m: x.to(held) for m, x in features.items()})[0, 0].float().numpy().T  # (T, V)
        return out, time.perf_counter() - began

    reference, t32 = run()
    autocast, tac = run(torch.autocast("cpu", dtype=torch.bfloat16))
    model.to(torch.bfloat16)
    rounded, tbf = run()
    for scheme, got, t in (("float32 weights + autocast", autocast, tac), ("bfloat16 weights", rounded, tbf)):
        a, b = reference - reference.mean(0), got - got.mean(0)
        median = float(np.median((a * b).sum(0) / np.sqrt((a * a).sum(0) * (b * b).sum(0))))
        rows.append(
            {
                "case": "brain model, one 100-s window (median per-vertex r)",
                "scheme": scheme,
                "last": median,
                "mean": median,
                "seconds": t,
                "float32_seconds": t32,
            }
        )
        print(f"  brain model | {scheme}: median per-vertex r {median:.4f}", file=sys.stderr, flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tokens", type=int, default=1100, help="length of the text context")
    parser.add_argument("--seconds", type=float, default=60.0, help="seconds of speech for the audio model")
    parser.add_argument("--workdir", default=str(Path(tempfile.gettempdir()) / "tribev2-bench-precision"))
    args = parser.parse_args()

    import torch
    from transformers import AutoModel

    from tribev2.demo import demo_extractors
    from tribev2.features import AudioExtractor
    from tribev2.features.w2vbert import use_banded_relative_key_attention

    torch.set_grad_enabled(False)
    rows: list[dict] = []

    # text: random float32 weights, then the same weights as a bfloat16 checkpoint holds them
    torch.manual_seed(0)
    config = full_configs()["text"]
    model = AutoModel.from_config(config, dtype=torch.float32).eval()
    ids = np.random.default_rng(0).integers(0, config.vocab_size, args.tokens)
    inputs = {"input_ids": torch.from_numpy(ids)[None], "use_cache": False}
    compare(model, inputs, f"text, {args.tokens} tokens, random float32 weights", rows)
    model.to(torch.float32)  # now every weight is a bfloat16 number
    compare(model, inputs, f"text, {args.tokens} tokens, weights of a bfloat16 checkpoint", rows)
    del model

    # audio: a float32 checkpoint, on speech
    workdir = Path(args.workdir)
    wav, _ = make_speech(workdir)
    torch.manual_seed(0)
    features = AudioExtractor(demo_extractors()["audio"].source, device="cpu", cache=False, progress=False)
    waveform = features.waveform(str(wav), 0.0, args.seconds)
    model = AutoModel.from_config(full_configs()["audio"], dtype=torch.float32).eval()
    use_banded_relative_key_attention(model)  # as AudioExtractor runs it (the same numbers, less memory)
    compare(model, {"input_features": features.input_features(waveform)}, f"audio, {args.seconds:g} s", rows)

    # the brain model (release geometry, seeded random weights: a float32 checkpoint) on random features
    from tribev2.demo import demo_model

    model = demo_model(device="cpu", precision="exact", cache_dir=workdir / "cache")
    samples = model.config.window_samples
    rng = np.random.default_rng(0)
    features = {
        m: torch.from_numpy(rng.standard_normal((1, g, d, samples), dtype=np.float32))
        for m, (g, d) in model.config.feature_dims.items()
    }
    brain_states(model, features, rows)

    print(f"\n{cpu_name()}, {os.cpu_count()} cores, torch {torch.__version__}\n")
    print("| case | scheme | last state r | all states' mean r | s per pass (float32: s) |")
    print("|---|---|---|---|---|")
    for row in rows:
        print(
            f"| {row['case']} | {row['scheme']} | {row['last']:.4f} | {row['mean']:.4f} | "
            f"{row['seconds']:.1f} ({row['float32_seconds']:.1f}) |"
        )


if __name__ == "__main__":
    main()
