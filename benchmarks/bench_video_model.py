"""V-JEPA2 ViT-g's forward alone (full size, random weights) on fixed clips already on the device: the fast
path's variants, each as ms a clip of wall time and of GPU kernels (the gap is the GPU waiting on the host), and
its states' correlation with float32's. No decoding: what the model costs, and what each change saves.

Variants build on one another: the fast path as it is (autocast, float32 rotary tables), the tables in
bfloat16, the layer norms in the activations' dtype (``features.base.layer_norms_in_input_dtype``), each
encoder layer compiled (``torch.compile``, default mode or ``reduce-overhead``: CUDA graphs), and every weight
bfloat16 without autocast. Compiled variants print dynamo's counters (graphs, recompiles, graph breaks).

    python benchmarks/bench_video_model.py --device cuda --json video_model.json
    python benchmarks/bench_video_model.py --device cpu --depth 2 --clips 2 --no-compile   # smoke test
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))


def variants(compile: bool) -> list[tuple[str, dict]]:
    """``(name, recipe)``: ``tables`` the rotary tables' dtype (None: transformers' rotary), ``norms`` layer
    norms in the input's dtype, ``compile`` a ``torch.compile`` mode, ``weights`` every weight in bfloat16."""
    fast = dict(tables="float32")
    chain = [
        ("fast as it is: autocast, float32 tables", fast),
        ("+ bfloat16 tables", dict(tables="bfloat16")),
        ("+ bfloat16 tables, norms in bfloat16", dict(tables="bfloat16", norms=True)),
        ("every weight bfloat16, bfloat16 tables (no autocast)", dict(tables="bfloat16", weights=True)),
    ]
    if compile:
        chain += [
            ("fast as it is, compiled layers", dict(fast, compile="default")),
            (
                "bfloat16 tables, norms in bfloat16, compiled layers",
                dict(tables="bfloat16", norms=True, compile="default"),
            ),
            (
                "bfloat16 tables, norms in bfloat16, compiled layers + CUDA graphs",
                dict(tables="bfloat16", norms=True, compile="reduce-overhead"),
            ),
        ]
    return chain


def build(video, recipe: dict):
    """A bfloat16 extractor over a copy of ``video``'s float32 weights, made as ``recipe`` says."""
    import torch
    from bench_end_to_end import cast_copy

    from tribev2.features.base import MATMUL_LAYERS, layer_norms_in_input_dtype
    from tribev2.features.vjepa2 import precompute_rotary

    bf16 = torch.bfloat16
    options = dict(weights=bf16) if recipe.get("weights") else {}
    other = type(video)(
        video.source, device=str(video.device), dtype=bf16, cache=False, progress=False, batch_size=8, **options
    )
    held = video.model
    model = cast_copy(held, bf16, only=MATMUL_LAYERS) if other.autocasts else cast_copy(held, bf16)
    if recipe.get("tables"):
        precompute_rotary(model, getattr(torch, recipe["tables"]))
    if recipe.get("norms"):
        layer_norms_in_input_dtype(model)
    if recipe.get("compile"):
        for layer in model.encoder.layer:
            layer.forward = torch.compile(layer.forward, dynamic=False, mode=recipe["compile"])
    other._model = model
    return other


def kernel_ms(run) -> float:
    """GPU kernel time of one ``run()``, ms."""
    import torch
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        run()
        torch.cuda.synchronize()
    return sum(e.self_device_time_total for e in prof.key_averages() if e.device_time_total > 0) / 1e3


def measure(name: str, recipe: dict, video, pixels, exact, args) -> dict:
    """One variant's row: wall and kernel ms a clip, states r vs float32, warm-up seconds, dynamo's counters."""
    import torch
    from bench_end_to_end import state_r, timed

    torch._dynamo.reset()
    torch._dynamo.utils.counters.clear()
    extractor = build(video, recipe)
    graphs = recipe.get("compile") == "reduce-overhead"

    def run():
        if graphs:  # one forward pass is one step of the CUDA graphs' tree
            torch.compiler.cudagraph_mark_step_begin()
        return extractor.clip_state_means(pixels)

    start = time.perf_counter()
    for _ in range(3 if graphs else 1):  # CUDA graphs record on a later call
        run()
    if args.device.startswith("cuda"):
        torch.cuda.synchronize()
    warmup = time.perf_counter() - start
    seconds = []
    for _ in range(args.repeats):
        t, states = timed(run, args.device)
        seconds.append(t)
    wall = min(seconds) / args.clips * 1e3
    kernels = kernel_ms(run) / args.clips if args.device.startswith("cuda") else float("nan")
    r = state_r(states.cpu().float(), exact)
    counters = {
        k: dict(v) for k, v in torch._dynamo.utils.counters.items() if k in ("stats", "graph_break", "recompiles")
    }
    print(
        f"  {name}: {wall:.1f} ms a clip (kernels {kernels:.1f}), states r {r:.6f}, warm-up {warmup:.1f} s"
        + (f", dynamo {counters}" if recipe.get("compile") else ""),
        file=sys.stderr,
        flush=True,
    )
    return dict(
        variant=name,
        wall_ms=wall,
        median_ms=sorted(seconds)[len(seconds) // 2] / args.clips * 1e3,
        kernels_ms=kernels,
        states_r=r,
        warmup_s=warmup,
        dynamo=counters,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--clips", type=int, default=8, help="clips per forward pass")
    parser.add_argument("--repeats", type=int, default=5, help="timed forward passes per variant")
    parser.add_argument("--depth", type=int, help="encoder layers (smoke test; default: the release's 40)")
    parser.add_argument("--no-compile", dest="compile", action="store_false")
    parser.add_argument("--only", help="comma-separated variant numbers (1-based) to run")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    import torch
    from bench_features import full_extractor

    torch.manual_seed(0)
    folder = Path(tempfile.mkdtemp(prefix="bench-video-model-"))
    video = full_extractor("video", folder, args.device, torch.float32, depth=args.depth)
    shape = (args.clips, video.frames_per_clip, 3, video.crop_size, video.crop_size)
    pixels = torch.randn(shape, generator=torch.Generator().manual_seed(1)).to(args.device)
    card = torch.cuda.get_device_name() if args.device.startswith("cuda") else "CPU"
    print(f"V-JEPA2 ({len(video.model.encoder.layer)} layers), {args.clips} clips a pass, {card}", file=sys.stderr)

    exact = video.clip_state_means(pixels).cpu()  # float32, transformers' code
    rows = []
    chosen = variants(args.compile)
    if args.only:
        chosen = [chosen[int(i) - 1] for i in args.only.split(",")]
    for name, recipe in chosen:
        try:
            rows.append(measure(name, recipe, video, pixels, exact, args))
        except Exception as err:  # one variant's failure (a compiler's) must not lose the others' rows
            print(f"  {name}: failed: {type(err).__name__}: {str(err)[:300]}", file=sys.stderr, flush=True)
        if args.json:
            args.json.write_text(json.dumps({"device": card, "clips": args.clips, "rows": rows}, indent=1))
        if args.device.startswith("cuda"):
            torch.cuda.empty_cache()
    print(f"\n| variant ({card}) | ms a clip | GPU kernels, ms a clip | states r vs float32 |")
    print("|---|---|---|---|")
    for row in rows:
        print(f"| {row['variant']} | {row['wall_ms']:.1f} | {row['kernels_ms']:.1f} | {row['states_r']:.6f} |")


if __name__ == "__main__":
    main()
