"""Brain-model forward time and peak memory, release geometry (177 M parameters).

Workloads: one 100-s window (200 feature samples -> 100 TRs) and 36 windows (one hour), in batches of 8 as
the reference's loader. Variants of our model, all in one run so they share the machine's state:

* ``ours (head, then pool)``: the reference's order, the head applied at 2 Hz then pooled to 1 Hz;
* ``ours (pool, then head)``: the default forward; pooling is an average and the head affine, so pooling
  first is exact and halves the head's work;
* ``ours (pool, merged head)``: low-rank head and subject layer multiplied into one (H, V) matrix;
* ``reference``: the upstream ``FmriEncoder`` on x-transformers 1.27.20 (its own virtual environment, see
  ``../shared/parity/README.md``), loaded with the same weights; CPU only.

Each measurement runs in a fresh process so peak memory is its own. Usage::

    python benchmarks/bench_model.py                                  # CPU, float32
    python benchmarks/bench_model.py --reference-python /path/ref/bin/python
    python benchmarks/bench_model.py --device cuda --dtypes float32,bfloat16
    python benchmarks/bench_model.py --threads 2                      # torch.set_num_threads(2)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

VARIANTS = ("head, then pool", "pool, then head", "pool, merged head")
BATCH = 8


# -- one measurement (worker process) ------------------------------------------------------------------------
def _features(config, n_windows: int, torch, device, dtype):
    generator = torch.Generator().manual_seed(0)
    return {
        name: torch.randn(n_windows, groups, dim, config.window_samples, generator=generator).to(device, dtype)
        for name, (groups, dim) in config.feature_dims.items()
    }


def _forward_fn(model, variant: str, torch):
    if variant == "head, then pool":
        return lambda batch: model.pool(model(batch, pool=False))
    if variant == "pool, then head":
        return lambda batch: model(batch)
    (row,) = model.subject_rows(None)  # the default subject, as model(batch)
    merged = model.low_rank_head.weight.T @ model.predictor.weights[row]  # (H, V)
    bias = model.predictor.bias[row]

    def forward(batch):
        encoded = model.encode(model.aggregate(batch))
        pooled = model.pool(encoded.transpose(1, 2)).transpose(1, 2)  # (B, T_out, H)
        return (pooled @ merged + bias).transpose(1, 2)[:, None]  # (B, 1, V, T_out), as model(batch)

    return forward


def _reset_peak_rss() -> float:
    """Reset the process's resident-set high-water mark (Linux) and return the current RSS in MiB."""
    Path("/proc/self/clear_refs").write_text("5")
    return _status_mib("VmRSS")


def _peak_rss_mib() -> float:
    return _status_mib("VmHWM")


def _status_mib(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"/proc/self/status has no {field}")


def _sync(torch, device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def worker(args) -> dict:
    import torch

    import tribev2

    torch.set_grad_enabled(False)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    dtype = getattr(torch, args.dtype)
    model = tribev2.load_model(args.weights, device=device, dtype=dtype)
    forward = _forward_fn(model, args.variant, torch)
    features = _features(model.config, args.windows, torch, device, dtype)
    rss_before = _reset_peak_rss()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()

    def run():
        outs = [forward({k: v[i : i + BATCH] for k, v in features.items()}) for i in range(0, args.windows, BATCH)]
        _sync(torch, device)
        return outs

    run()  # warm-up
    times = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        outs = run()
        times.append(time.perf_counter() - start)
    result = {"seconds": min(times), "all_seconds": times}
    if device.type == "cuda":
        result["peak_mib"] = (torch.cuda.max_memory_allocated() - base) / 2**20
    else:
        result["peak_mib"] = _peak_rss_mib() - rss_before
    if args.save_output:
        torch.save(torch.cat(outs).float().cpu(), args.save_output)
    return result


REFERENCE_WORKER = textwrap.dedent("""
    import json, sys, time, types, importlib.abc, importlib.machinery
    # torchvision does not import beside torch 2.13's CPU wheel and the model never calls it: a stand-in.
    class _Dummy:
        def __init__(self, *a, **k): pass
    class _Finder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
        def find_spec(self, name, path, target=None):
            if name == "torchvision" or name.startswith("torchvision."):
                return importlib.machinery.ModuleSpec(name, self, is_package=True)
        def create_module(self, spec):
            module = types.ModuleType(spec.name); module.__path__ = []
            module.__getattr__ = lambda attr: _Dummy
            return module
        def exec_module(self, module): pass
    sys.meta_path.insert(0, _Finder())
    import torch, yaml
    from tribev2.model import FmriEncoder   # the upstream model.py as carried by cognitive-scoring
    torch.set_grad_enabled(False)
    folder, save = sys.argv[1], sys.argv[5]
    windows, repeats, batch_size = int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    config = yaml.safe_load(open(folder + "/config.yaml"))
    ckpt = torch.load(folder + "/best.ckpt", weights_only=True)
    args = ckpt["model_build_args"]
    model = FmriEncoder(**config["brain_model_config"]).build(**args)
    model.load_state_dict({k.removeprefix("model."): v.float() for k, v in ckpt["state_dict"].items()})
    model.eval()
    g = torch.Generator().manual_seed(0)
    n = round(args["n_output_timesteps"] * 2)
    feats = {m: torch.randn(windows, l, d, n, generator=g) for m, (l, d) in args["feature_dims"].items()}
    def status(field):
        return next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith(field + ":")) / 1024
    open("/proc/self/clear_refs", "w").write("5")
    before = status("VmRSS")
    def run():
        return [model(types.SimpleNamespace(data={k: v[i:i + batch_size] for k, v in feats.items()},
                                            subject_id=torch.zeros(min(batch_size, windows - i), dtype=torch.long)))
                for i in range(0, windows, batch_size)]
    run()
    times = []
    for _ in range(repeats):
        t = time.perf_counter(); outs = run(); times.append(time.perf_counter() - t)
    if save:
        torch.save(torch.cat(outs), save)
    peak = status("VmHWM") - before
    print(json.dumps({"seconds": min(times), "all_seconds": times, "peak_mib": peak}))
""")


# -- driver ---------------------------------------------------------------------------------------------------
def _measure(cmd: list[str], cwd: str | None = None) -> dict:
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, cwd=cwd)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _machine(device: str) -> str:
    if device.startswith("cuda"):
        import torch

        return torch.cuda.get_device_name(0)
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} cores"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtypes", default="float32", help="comma-separated, e.g. float32,bfloat16")
    parser.add_argument("--windows", default="1,36", help="comma-separated window counts")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--reference-python", help="python of the reference environment (CPU comparison)")
    parser.add_argument("--weights", help="brain-model folder (default: the seeded demo weights, release geometry)")
    parser.add_argument("--threads", type=int, help="torch.set_num_threads in each measurement (default: torch's)")
    parser.add_argument("--json", help="write the results here as JSON")
    parser.add_argument(
        "--bf16-fixture",
        help="a parity case folder (e.g. ../shared/parity/wide): report the "
        "bfloat16 error against its float32 reference output",
    )
    parser.add_argument("--worker", nargs=3, metavar=("VARIANT", "WINDOWS", "DTYPE"), help=argparse.SUPPRESS)
    parser.add_argument("--save-output", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.worker:
        args.variant, args.windows, args.dtype = args.worker[0], int(args.worker[1]), args.worker[2]
        print(json.dumps(worker(args)))
        return

    if args.bf16_fixture:
        print(bfloat16_error(Path(args.bf16_fixture), args.device))
    if args.weights is None:
        from tribev2.demo import demo_model

        args.weights = str(Path(demo_model(device="cpu").source))
    machine = _machine(args.device)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for windows in [int(w) for w in args.windows.split(",")]:
            if args.reference_python:
                ref_out = os.path.join(tmp, f"ref-{windows}.pt")
                script = os.path.join(tmp, "reference_worker.py")
                Path(script).write_text(REFERENCE_WORKER)
                result = _measure(
                    [args.reference_python, script, args.weights, str(windows), str(args.repeats), str(BATCH), ref_out],
                    cwd=tmp,
                )
                rows.append(
                    {"variant": "reference (x-transformers 1.27.20)", "dtype": "float32", "windows": windows, **result}
                )
            for dtype in args.dtypes.split(","):
                for variant in VARIANTS:
                    ours_out = _output_file(tmp, windows, dtype, variant)
                    result = _measure(
                        [
                            sys.executable,
                            __file__,
                            "--device",
                            args.device,
                            "--weights",
                            args.weights,
                            "--repeats",
                            str(args.repeats),
                            "--worker",
                            variant,
                            str(windows),
                            dtype,
                            "--save-output",
                            ours_out,
                            *(["--threads", str(args.threads)] if args.threads else []),
                        ]
                    )
                    result.update(_compare(ours_out, tmp, windows, args.reference_python is not None))
                    default_out = _output_file(tmp, windows, "float32", "pool, then head")
                    if os.path.exists(default_out) and default_out != ours_out:
                        result["max_abs_diff_vs_default"] = _max_abs_diff(ours_out, default_out)
                    rows.append({"variant": f"ours ({variant})", "dtype": dtype, "windows": windows, **result})
    baseline = {
        r["windows"]: r["seconds"] for r in rows if r["variant"] == "ours (head, then pool)" and r["dtype"] == "float32"
    }
    threads = f", torch.set_num_threads({args.threads})" if args.threads else ""
    print(f"\nBrain model, release geometry, {args.device} ({machine}{threads}), batches of {BATCH} windows")
    print(
        "| workload | variant | dtype | seconds | speed-up vs ours fp32 eager | peak MiB | max abs Δ vs fp32 "
        "| max abs Δ vs default (fp32 pool, then head) |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        speedup = baseline.get(r["windows"], float("nan")) / r["seconds"]
        workload = (
            "1 window (100 s)" if r["windows"] == 1 else f"{r['windows']} windows ({r['windows'] * 100 / 3600:g} h)"
        )
        delta = f"{r['max_abs_diff']:.2e}" if "max_abs_diff" in r else ""
        vs_default = f"{r['max_abs_diff_vs_default']:.2e}" if "max_abs_diff_vs_default" in r else ""
        print(
            f"| {workload} | {r['variant']} | {r['dtype']} | {r['seconds']:.3f} | {speedup:.2f}x | "
            f"{r['peak_mib']:.0f} | {delta} | {vs_default} |"
        )
    if args.json:
        Path(args.json).write_text(json.dumps({"device": args.device, "machine": machine, "rows": rows}, indent=2))


def bfloat16_error(model_folder: Path, device: str) -> str:
    """Error of the bfloat16 forward on every case of a parity model folder, against the reference's float32."""
    import torch
    from safetensors.torch import load_file

    import tribev2

    model = tribev2.load_model(model_folder, device=device, dtype=torch.bfloat16)
    lines = []
    for case in sorted((model_folder / "cases").iterdir()):
        inputs = {k: v.to(device) for k, v in load_file(case / "inputs.safetensors").items()}
        expected = load_file(case / "expected.safetensors")["output"].float()
        with torch.inference_mode():
            out = model(inputs)[:, 0].float().cpu()  # (B, V, T_out): the one subject row
        diff = out - expected
        lines.append(
            f"bfloat16 vs reference float32, {model_folder.name}/{case.name} on {device}: max |Δ| "
            f"{diff.abs().max():.3g}, ‖Δ‖/‖ref‖ {diff.norm() / expected.norm():.3g}, "
            f"output max |ref| {expected.abs().max():.3g}"
        )
    return "\n".join(lines)


def _compare(path: str, tmp: str, windows: int, have_reference: bool) -> dict:
    """Max |Δ| of this output against the reference's (or, without it, our fp32 head-then-pool run)."""
    candidates = [os.path.join(tmp, f"ref-{windows}.pt")] if have_reference else []
    candidates.append(_output_file(tmp, windows, "float32", "head, then pool"))
    for baseline in candidates:
        if os.path.exists(baseline) and baseline != path:
            return {"max_abs_diff": _max_abs_diff(path, baseline)}
    return {}


def _output_file(tmp: str, windows: int, dtype: str, variant: str) -> str:
    return os.path.join(tmp, f"ours-{windows}-{dtype}-{VARIANTS.index(variant)}.pt")


def _max_abs_diff(path: str, baseline: str) -> float:
    import torch

    return (torch.load(path) - torch.load(baseline)).abs().max().item()


if __name__ == "__main__":
    main()
