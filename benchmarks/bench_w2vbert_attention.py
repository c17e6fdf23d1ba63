"""Wav2Vec-BERT 2.0 forward (full size, random weights) with transformers' relative-position attention vs ours
(:mod:`tribev2.features.w2vbert`), on one device: seconds, peak memory and max |Δ| of every hidden state.

Imports only torch, transformers and our module's file (so it runs where the package's other dependencies are
not installed, e.g. a GPU machine). Usage::

    python benchmarks/bench_w2vbert_attention.py --device cuda --dtypes float32,bfloat16 --seconds 60
"""

from __future__ import annotations

import argparse
import copy
import importlib.util
import time
from pathlib import Path

import torch
from transformers import Wav2Vec2BertConfig, Wav2Vec2BertModel

HERE = Path(__file__).resolve().parent
_spec = importlib.util.spec_from_file_location("w2vbert", HERE.parent / "tribev2" / "features" / "w2vbert.py")
w2vbert = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(w2vbert)


def timed(model, features, repeats: int, device) -> tuple[float, float, tuple]:
    """Best seconds of ``repeats`` forwards after a warm-up, peak memory above the weights (GiB, CUDA only),
    hidden states."""

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize()

    with torch.inference_mode():
        model(input_features=features, output_hidden_states=True)
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats()
            base = torch.cuda.memory_allocated()
        best = float("inf")
        for _ in range(repeats):
            sync()
            start = time.perf_counter()
            out = model(input_features=features, output_hidden_states=True)
            sync()
            best = min(best, time.perf_counter() - start)
    peak = (torch.cuda.max_memory_allocated() - base) / 2**30 if device.type == "cuda" else float("nan")
    return best, peak, out.hidden_states


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtypes", default="float32")
    parser.add_argument("--seconds", type=float, default=60.0, help="stimulus length (50 frames per second)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, help="torch.set_num_threads (CPU)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    print(f"w2v-BERT 2.0 (random weights), {args.seconds:g} s of audio, {name}, torch {torch.__version__}")
    print("| dtype | attention | seconds | peak GiB | max abs Δ of the hidden states vs transformers |")
    print("|---|---|---|---|---|")
    frames = round(args.seconds * 50)
    for dtype in args.dtypes.split(","):
        torch.manual_seed(0)
        with torch.device(device):
            reference = Wav2Vec2BertModel(Wav2Vec2BertConfig()).to(getattr(torch, dtype)).eval()
        ours = copy.deepcopy(reference)
        w2vbert.use_banded_relative_key_attention(ours)
        features = torch.randn(1, frames, 160, generator=torch.Generator().manual_seed(1)).to(device, reference.dtype)
        seconds, peak, expected = timed(reference, features, args.repeats, device)
        print(f"| {dtype} | transformers | {seconds:.3f} | {peak:.2f} | |", flush=True)
        seconds, peak, states = timed(ours, features, args.repeats, device)
        diff = max((a.float() - b.float()).abs().max().item() for a, b in zip(states, expected))
        print(f"| {dtype} | ours | {seconds:.3f} | {peak:.2f} | {diff:.2e} |", flush=True)
        del reference, ours, expected, states


if __name__ == "__main__":
    main()
