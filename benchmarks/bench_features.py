"""Feature-extraction cost: seconds of compute per minute of stimulus, peak memory, FLOPs, fraction of peak.

Two model sets:

* ``demo`` (default on CPU): the tiny extractors of :func:`tribev2.demo.demo_extractors`;
* ``full`` (default on CUDA): the release architectures built from their configs (``upstream.md`` §10:
  Llama-3.2-3B, w2v-BERT 2.0, V-JEPA2 ViT-g/64 frames/256 px) with random weights, created directly on the
  device (cost does not depend on the weights), run through the same extractor code as real weights.

Workloads, on synthetic media made once under ``--workdir``:

* ``video``: ``--video-bins`` 0.5-s bins from the middle of a 30-s 640x360 25-fps clip (decode, resize, crop,
  V-JEPA2), scaled to 120 bins per minute;
* ``audio``: one 60-s 44.1-kHz stereo event (resample, filterbank, w2v-BERT);
* ``text (shared passes)``: the 150 words of the minute just before the 1,024-word context cap (contexts of
  875..1,024 words, which extend each other), as this package runs them: one forward pass for all;
* ``text (one pass per word)``: the same words, one forward pass per word, as the reference runs them
  (``--text-words`` of them, scaled to 150);
* ``text (sliding 1024-word contexts)``: after the cap every context is a new 1,024-word window, so each
  word needs its own pass (``--text-words`` of them, scaled to 150).

FLOPs come from ``torch.utils.flop_counter`` on the warm-up run (matmuls, convolutions, attention); the
fraction of peak divides the achieved rate by a large matmul's rate measured on the same device and dtype.
Each measurement runs in its own process. Usage::

    python benchmarks/bench_features.py                                   # CPU, demo extractors, float32
    python benchmarks/bench_features.py --device cuda --dtypes float32,bfloat16   # full-size, random weights
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from bench_model import _machine, _peak_rss_mib, _reset_peak_rss  # same machine name and memory probes

WORKLOADS = ("video", "audio", "text (shared passes)", "text (one pass per word)", "text (sliding 1024-word contexts)")
WORDS_PER_MINUTE = 150  # 2.5 words per second, a typical speech rate
CONTEXT_CAP = 1024  # words of context the events pipeline keeps (upstream.md §4.1)


# -- full-size architectures (upstream.md §10) ------------------------------------------------------------------
def full_configs() -> dict:
    from transformers import LlamaConfig, VJEPA2Config, Wav2Vec2BertConfig

    return {
        "text": LlamaConfig(
            hidden_size=3072,
            intermediate_size=8192,
            num_hidden_layers=28,
            num_attention_heads=24,
            num_key_value_heads=8,
            head_dim=128,
            vocab_size=128256,
            max_position_embeddings=131072,
            rms_norm_eps=1e-5,
            tie_word_embeddings=True,
            dtype="bfloat16",  # as meta-llama/Llama-3.2-3B stores its weights
            rope_parameters={
                "rope_type": "llama3",
                "rope_theta": 500000.0,
                "factor": 32.0,
                "low_freq_factor": 1.0,
                "high_freq_factor": 4.0,
                "original_max_position_embeddings": 8192,
            },
        ),
        "audio": Wav2Vec2BertConfig(),  # its defaults are w2v-bert-2.0's geometry
        "video": VJEPA2Config(
            hidden_size=1408,
            num_hidden_layers=40,
            num_attention_heads=22,
            mlp_ratio=48 / 11,
            patch_size=16,
            tubelet_size=2,
            crop_size=256,
            frames_per_clip=64,
        ),
    }


def full_extractor(modality: str, folder: Path, device: str, dtype, depth: int | None = None):
    """An extractor of the full-size architecture: the config (and the demo's tokenizer, whose tokens are
    whole words, or filterbank settings) saved in ``folder``, the model built directly on ``device`` with
    random weights, each a number the release's checkpoint could hold (Llama-3.2-3B stores bfloat16; the
    others float32), then prepared as the extractor prepares a loaded model (``Extractor.prepare``: its own
    code, and under autocast its linear and convolution layers rounded once). ``depth`` overrides the layer
    count (a smoke test of this script, not the release cost)."""
    import torch
    from transformers import AutoModel

    from tribev2.devices import DTYPES
    from tribev2.features import Extractor

    config = full_configs()[modality]
    if depth is not None:
        config.num_hidden_layers = depth
    target = folder / f"full-{modality}-{depth or 'release'}"
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    config.save_pretrained(target)
    if modality != "video":  # the video resize and crop follow the config's crop size
        copy_demo_files(modality, target)
    extractor = Extractor.registry[modality](target, device=device, dtype=dtype, cache=False, progress=False)
    with torch.device(device):
        model = AutoModel.from_config(config, dtype=extractor.weights_dtype)
    stored = DTYPES.get(str(getattr(config, "dtype", None) or "").removeprefix("torch."))  # as the release stores
    if stored is not None and stored != extractor.weights_dtype:  # random weights that the release could store
        for parameter in model.parameters():
            parameter.data = parameter.data.to(stored).to(extractor.weights_dtype)
    extractor._model = extractor.prepare(model)
    return extractor


def copy_demo_files(modality: str, target: Path) -> None:
    """The demo extractor's files but its config and weights (the tokenizer, or the filterbank settings) copied
    into ``target``, beside a full-size config."""
    from tribev2.demo import demo_extractors

    for extra in Path(demo_extractors()[modality].source).iterdir():
        if extra.name not in ("config.json", "model.safetensors"):
            (target / extra.name).write_bytes(extra.read_bytes())


# -- synthetic stimuli ------------------------------------------------------------------------------------------
def make_stimuli(folder: Path) -> dict[str, Path]:
    """A 30-s 640x360 25-fps H.264 clip of moving shapes and a 60-s 44.1-kHz stereo WAV (made once)."""
    import av
    import numpy as np
    import soundfile

    folder.mkdir(parents=True, exist_ok=True)
    video, audio = folder / "clip.mp4", folder / "speech.wav"
    if not audio.is_file():
        rate = 44100
        t = np.arange(60 * rate) / rate
        tone = 0.3 * np.sin(2 * np.pi * (180 + 40 * np.sin(2 * np.pi * 0.5 * t)) * t)
        noise = 0.05 * np.random.default_rng(0).standard_normal((len(t), 2))
        soundfile.write(str(audio), (tone[:, None] + noise).astype(np.float32), rate, subtype="PCM_16")
    if not video.is_file():
        height, width, fps = 360, 640, 25
        yy, xx = np.mgrid[0:height, 0:width]
        with av.open(str(video), "w") as container:
            stream = container.add_stream("libx264", rate=fps)
            stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
            for k in range(30 * fps):
                phase = k / fps
                frame = np.stack(
                    [(xx + 40 * phase) % 256, (yy + 25 * phase) % 256, 128 + 127 * np.sin(xx / 40 + phase)], axis=-1
                ).astype(np.uint8)
                for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                    container.mux(packet)
            for packet in stream.encode(None):
                container.mux(packet)
    return {"video": video, "audio": audio}


def words_and_contexts(tokenizer, n_words: int, *, sliding: bool) -> tuple[list[str], list[str]]:
    """``n_words`` words with the contexts the events pipeline gives them: the running text (words 875..,
    contexts extending each other) or, past the cap, 1,024-word windows that slide by one word."""
    vocabulary = [
        t[1:]
        for t in tokenizer.convert_ids_to_tokens(range(len(tokenizer)))
        if t.startswith("Ġ") and t[1:].isalpha() and len(t) > 3
    ]
    total = CONTEXT_CAP + n_words
    stream = [vocabulary[(7 * i) % len(vocabulary)] + ("." if i % 15 == 14 else "") for i in range(total)]
    texts, contexts = [], []
    for k in range(n_words):
        end = (CONTEXT_CAP + k + 1) if sliding else (CONTEXT_CAP - n_words + k + 1)
        start = end - CONTEXT_CAP if sliding else 0
        texts.append(stream[end - 1].rstrip("."))
        contexts.append(" ".join(stream[start:end]).rstrip("."))
    return texts, contexts


# -- one measurement (worker process) ----------------------------------------------------------------------------
def _register_cpu_attention_flops():
    """torch's flop counter knows the CUDA attention kernels; teach it the CPU flash kernel as well."""
    import torch
    from torch.utils import flop_counter

    aten = torch.ops.aten
    flop_counter.flop_registry.setdefault(
        aten._scaled_dot_product_flash_attention_for_cpu,
        flop_counter.flop_registry[aten._scaled_dot_product_flash_attention],
    )


def worker(args) -> dict:
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from tribev2.demo import demo_extractors
    from tribev2.devices import as_dtype

    torch.set_grad_enabled(False)
    _register_cpu_attention_flops()
    device = torch.device(args.device)
    dtype = as_dtype(args.dtype)
    stimuli = make_stimuli(Path(args.workdir))
    modality = args.workload.split()[0]
    rss_before = _reset_peak_rss()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    if args.models == "full":
        extractor = full_extractor(modality, Path(args.workdir), args.device, dtype, args.depth)
    else:
        extractor = demo_extractors(device=args.device, dtype=dtype, cache=False, progress=False)[modality]
        _ = extractor.model  # load now, outside the timed runs

    if modality == "video":
        bins = list(range(40, 40 + args.video_bins))
        run = lambda: extractor.event_state_means(str(stimuli["video"]), 0.0, 30.0, bins=bins)  # noqa: E731
        stimulus_s, per_minute = 0.5 * len(bins), 120 / len(bins)
    elif modality == "audio":
        run = lambda: extractor.event_features(str(stimuli["audio"]), 0.0, 60.0)  # noqa: E731
        stimulus_s, per_minute = 60.0, 1.0
    else:
        shared = "shared" in args.workload
        n_words = WORDS_PER_MINUTE if shared else args.text_words
        texts, contexts = words_and_contexts(extractor.tokenizer, n_words, sliding="sliding" in args.workload)
        extractor._causal = shared  # False: one pass per word, as the reference
        run = lambda: extractor.hidden_state_means(contexts, texts)  # noqa: E731
        stimulus_s, per_minute = n_words / WORDS_PER_MINUTE * 60, WORDS_PER_MINUTE / n_words

    def timed() -> float:
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        run()
        if device.type == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - start

    try:
        with FlopCounterMode(display=False) as counter:
            timed()  # warm-up, counting FLOPs
        flops_per_stimulus_s = counter.get_total_flops() / stimulus_s
    except AssertionError:  # torch's counter rejects some masked half-precision attention kernels
        timed()
        flops_per_stimulus_s = None  # the same as in float32: the table borrows that row's count
    seconds = min(timed() for _ in range(args.repeats))
    peak = torch.cuda.max_memory_allocated() / 2**20 if device.type == "cuda" else _peak_rss_mib() - rss_before
    return {
        "seconds": seconds,
        "seconds_per_minute": seconds * per_minute,
        "stimulus_s": stimulus_s,
        "flops_per_stimulus_s": flops_per_stimulus_s,
        "peak_mib": peak,
        "peak_tflops": _matmul_peak(torch, device, dtype),
    }


def _matmul_peak(torch, device, dtype) -> float:
    """TFLOP/s of a large matmul on this device and dtype (the best of a few runs)."""
    n = 8192 if device.type == "cuda" else 2048
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    best = float("inf")
    for _ in range(5):
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        a @ b
        if device.type == "cuda":
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - start)
    return 2 * n**3 / best / 1e12


# -- driver -----------------------------------------------------------------------------------------------------
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtypes", "--dtype", default="float32", help="comma-separated, e.g. float32,bfloat16")
    parser.add_argument("--models", choices=("demo", "full"), help="default: full on CUDA, demo elsewhere")
    parser.add_argument("--workloads", default=",".join(WORKLOADS), help="comma-separated subset of the workloads")
    parser.add_argument("--video-bins", type=int, default=8, help="bins (clips of 64 frames) per video run")
    parser.add_argument("--text-words", type=int, default=16, help="words per one-pass-per-word text run")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--depth", type=int, help="layers of the full-size models (smoke test only)")
    parser.add_argument("--workdir", default=str(Path(os.environ.get("TMPDIR", "/tmp")) / "tribev2-bench-features"))
    parser.add_argument("--json", help="write the results here as JSON")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.models = args.models or ("full" if args.device.startswith("cuda") else "demo")

    if args.worker:
        args.workload, args.dtype = args.worker.split("|")
        print(json.dumps(worker(args)))
        return

    machine = _machine(args.device)
    make_stimuli(Path(args.workdir))
    rows = []
    for dtype in args.dtypes.split(","):
        for workload in args.workloads.split(","):
            command = [
                sys.executable,
                __file__,
                "--device",
                args.device,
                "--models",
                args.models,
                "--workdir",
                args.workdir,
                "--repeats",
                str(args.repeats),
                "--video-bins",
                str(args.video_bins),
                "--text-words",
                str(args.text_words),
                "--worker",
                f"{workload}|{dtype}",
            ]
            if args.depth:
                command += ["--depth", str(args.depth)]
            out = subprocess.run(command, capture_output=True, text=True)
            if out.returncode:
                print(f"{workload} {dtype} failed:\n{out.stderr[-3000:]}", file=sys.stderr)
                continue
            rows.append({"workload": workload, "dtype": dtype, **json.loads(out.stdout.strip().splitlines()[-1])})
            print(f"  {workload} {dtype}: {rows[-1]['seconds_per_minute']:.3g} s per minute", file=sys.stderr)
    depth = f", depth overridden to {args.depth} (smoke test)" if args.depth else ""
    print(f"\nFeature extraction, {args.models} models{depth}, {args.device} ({machine})")
    print(
        "| workload | dtype | s per min of stimulus | measured on | peak MiB | GFLOP per stimulus s "
        "| achieved TFLOP/s | % of matmul peak |"
    )
    print("|---|---|---|---|---|---|---|---|")
    counted = {r["workload"]: r["flops_per_stimulus_s"] for r in rows if r["flops_per_stimulus_s"]}
    for r in rows:
        flops = r["flops_per_stimulus_s"] or counted.get(r["workload"])
        if flops is None:
            rate = "| — | — | — |"
        else:
            achieved = flops * r["stimulus_s"] / r["seconds"] / 1e12
            r["achieved_tflops"] = achieved
            rate = (
                f"| {flops / 1e9:.4g} | {achieved:.3g} | "
                f"{100 * achieved / r['peak_tflops']:.1f} (of {r['peak_tflops']:.3g}) |"
            )
        print(
            f"| {r['workload']} | {r['dtype']} | {r['seconds_per_minute']:.3g} | {r['stimulus_s']:g} s | "
            f"{r['peak_mib']:.0f} {rate}"
        )
    if args.json:
        Path(args.json).write_text(
            json.dumps({"device": args.device, "machine": machine, "models": args.models, "rows": rows}, indent=2)
        )


if __name__ == "__main__":
    main()
