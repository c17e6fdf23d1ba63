"""One hour of film on one GPU: stage by stage, fast against exact, with the reference's schemes as the baseline.

A realistic synthetic slice of film is made once under ``--workdir``: ``--seconds`` (120) of 1280x720 25-fps
H.264 (x264, CRF 23: a normal bit rate) with a speech-like AAC soundtrack, and a transcript at 2.5 words/s whose
words all lie past the 1,024-word context cap (the slice is taken from deep inside a film: every context is a
1,024-word sliding window). Models: ``full`` (default on CUDA) are the release architectures built from their
configs with random weights, as ``bench_features.py`` builds them (V-JEPA2 ViT-g/64 frames, w2v-BERT 2.0,
Llama-3.2-3B) plus the brain model in the release geometry (seeded random weights); ``demo`` the tiny ones (a
CPU smoke test of this script). The exact and fast variants of an extractor share one set of weights.

Media rows are cut into 60-s chunks, as ``events_from`` cuts them. Stages (``--stages``, comma-separated):

* ``speed`` = ``decode,video,text,audio``: per-stage throughput, each extrapolated to one hour of film (7,200
  clips, 9,000 words, 30 slices of audio). ``decode``: decoding, colour conversion and resize alone (CPU or GPU
  resize); ``video``: exact (float32, batches of 4; with ``--reference-rows``, the reference's scheme of one clip
  per pass) and fast variants (transformers' V-JEPA2 code against the package's attention and norms, CPU or GPU
  resize, every weight bfloat16, compiled layers), each with its states' correlation to float32's, the GPU kernels
  of the fast ones with ``--profile``, and V-JEPA2's attention alone on each SDPA kernel; ``text`` past the cap (the
  reference's scheme of one word per pass; exact float32 and bfloat16 at several batch sizes; windowed);
  ``audio`` (exact, fast, every weight bfloat16; features' correlation to exact);
* ``textfidelity``: bfloat16 text features against float32's, with and without cuBLAS's reduced-precision
  reductions;
* ``fidelity``: ``tribev2.predict`` over the whole slice (the features cache on, as predict runs) in exact, fast
  and fast + windowed text, timed per stage; the median over vertices of the per-vertex correlation (over
  time) of fast against exact predictions, and the text features' correlation;
* ``brain``: the brain model over one hour of windows (float32, bfloat16, and bfloat16 in one CUDA-graphed batch);
* ``film``: one real fast run of ``tribev2.predict`` (windowed text; the video layers compiled as
  ``compile="auto"`` decides, or always with ``--film-compile``) on a ``--film-seconds`` film, the slice's
  packets repeated, timed per stage, to check the extrapolation; ``--film-baseline`` runs it again with the
  extractors one after another instead of on threads of their own, then on threads again (the first run pays the
  compilation: the last two compare the two ways warm).

Speech recognition is ``bench_asr.py``'s. On the lent GPU (no package index) ``benchmarks/device.sh`` carries
PyAV, julius, CTranslate2 and faster-whisper. Usage::

    python benchmarks/bench_end_to_end.py --device cuda --stages speed,brain --profile --json out.json
    python benchmarks/bench_end_to_end.py --device cuda --stages fidelity
    python benchmarks/bench_end_to_end.py --device cuda --stages film --film-seconds 900
    python benchmarks/bench_end_to_end.py --device cpu --models demo --seconds 12 \
        --fast-bins 8 --exact-bins 4 --no-compile                                    # smoke test
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import functools
import json
import os
import sys
import time
from pathlib import Path
from unittest import mock

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_features import full_extractor  # noqa: E402  (the release architectures with random weights)

HOUR_S = 3600
WORDS_PER_S = 2.5
CONTEXT_CAP = 1024


# -- the synthetic film -----------------------------------------------------------------------------------------
def make_film(folder: Path, seconds: float, width: int = 1280, height: int = 720, fps: int = 25) -> Path:
    """H.264 (CRF 23) of moving textured shapes over a drifting gradient, with a speech-like AAC track."""
    import av

    path = folder / f"film-{seconds:g}s-{height}p.mp4"
    if path.is_file():
        return path
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    texture = rng.integers(0, 40, (height, width, 3), dtype=np.uint8)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    red, green = (xx / width * 200).astype(np.uint8), (yy / height * 180).astype(np.uint8)  # wrap around: uint8
    angle = xx / 90 + yy / 70
    sin_a, cos_a = np.sin(angle), np.cos(angle)
    disc = (np.mgrid[-60:61, -60:61] ** 2).sum(0)
    rate = 48000
    tmp = path.with_suffix(".tmp.mp4")
    with av.open(str(tmp), "w") as container:
        video = container.add_stream("libx264", rate=fps, options={"crf": "23", "preset": "veryfast"})
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        audio = container.add_stream("aac", rate=rate)
        audio.layout = "mono"
        frame = np.empty((height, width, 3), np.uint8)
        for k in range(int(seconds * fps)):
            t = k / fps
            frame[..., 0] = red + np.uint8(int(30 * t) % 256)
            frame[..., 1] = green + np.uint8(int(20 * t) % 256)
            frame[..., 2] = 128 + 100 * (sin_a * np.cos(t) + cos_a * np.sin(t))
            for j in range(4):  # four bright discs crossing the frame
                cx = int(width * (0.2 + 0.2 * j) + 120 * np.sin(t * (0.7 + 0.2 * j)))
                cy = int(height * (0.5 + 0.3 * np.cos(t + j)))
                patch = frame[max(cy - 60, 0) : cy + 61, max(cx - 60, 0) : cx + 61]
                inside = disc[: patch.shape[0], : patch.shape[1]] < (40 + 5 * j) ** 2
                patch[inside] = (230, 200 - 40 * j, 60 + 50 * j)
            shown = np.minimum(frame, 215) + texture
            for packet in video.encode(av.VideoFrame.from_ndarray(shown, format="rgb24")):
                container.mux(packet)
        for packet in video.encode(None):
            container.mux(packet)
        speech = _speech_like(seconds, rate, rng)
        for first in range(0, len(speech), 1024):
            chunk = av.AudioFrame.from_ndarray(speech[None, first : first + 1024], format="flt", layout="mono")
            chunk.sample_rate = rate
            for packet in audio.encode(chunk):
                container.mux(packet)
        for packet in audio.encode(None):
            container.mux(packet)
    tmp.rename(path)
    return path


def _speech_like(seconds: float, rate: int, rng) -> np.ndarray:
    """Syllables of voiced sound (a gliding pitch with formant-like harmonics) separated by pauses."""
    t = np.arange(int(seconds * rate)) / rate
    pitch = 120 + 30 * np.sin(2 * np.pi * 0.3 * t)
    phase = 2 * np.cumsum(np.pi * pitch / rate)
    voiced = sum(np.sin(h * phase) / h * (1 + np.sin(2 * np.pi * (0.5 + h / 7) * t)) for h in range(1, 12))
    syllables = (np.sin(2 * np.pi * 4 * t) > -0.2) * (np.sin(2 * np.pi * 0.4 * t + 1) > -0.6)
    noise = 0.02 * rng.standard_normal(len(t))
    return (0.08 * voiced * syllables + noise).astype(np.float32)


def transcript(tokenizer, seconds: float) -> pd.DataFrame:  # noqa: F821
    """Word rows at 2.5 words/s with the contexts of the events pipeline: each is the running text's last 1,024
    words before it and the word (every word of the slice lies past the cap)."""
    import pandas as pd

    from tribev2.events.language import contexts

    vocabulary = [
        t[1:]
        for t in tokenizer.convert_ids_to_tokens(range(len(tokenizer)))
        if t.startswith("Ġ") and t[1:].isalpha() and len(t) > 3
    ]
    n = int(seconds * WORDS_PER_S)
    stream = [vocabulary[(7 * i + i // 5) % len(vocabulary)] for i in range(CONTEXT_CAP + n)]
    chars = np.cumsum([0] + [len(w) + 1 for w in stream[:-1]]).tolist()
    text = " ".join(stream)
    context = contexts(text, chars, [len(w) for w in stream], [len(text)] * len(stream))[CONTEXT_CAP:]
    starts = np.arange(n) / WORDS_PER_S
    return pd.DataFrame(
        {"type": "Word", "start": starts, "duration": 0.3, "text": stream[CONTEXT_CAP:], "context": context}
    )


def events_table(film: Path, words, seconds: float):
    """Video and Audio events as ``events_from`` makes them: the audio read from the film's soundtrack, a WAV
    decoded once into the cache (reading each chunk's span from the MP4 would decode the whole track per
    chunk), cut into 60-s chunks."""
    from tribev2.events.chunks import chunk_media
    from tribev2.events.table import make_table

    audio = film_soundtrack(film)
    media = [
        {"type": kind, "start": 0.0, "duration": float(seconds), "offset": 0.0, "filepath": str(path)}
        for kind, path in (("Video", film), ("Audio", audio))
    ]
    return chunk_media(make_table(media + words.to_dict("records")))  # 60-s chunks, as events_from cuts media


def film_soundtrack(film: Path) -> Path:
    """The film's audio track as ``events_from`` hands it to the audio features: a WAV in the cache, decoded once."""
    from tribev2.events.media import soundtrack
    from tribev2.media import probe

    return soundtrack(probe(film))


# -- models --------------------------------------------------------------------------------------------------------
def extractors(models: str, device: str, folder: Path, modalities: list[str]) -> dict:
    """``{modality: float32 extractor}`` for ``modalities``; :func:`variant` derives others sharing the weights."""
    import torch

    if models == "demo":
        from tribev2.demo import demo_extractors

        built = demo_extractors(device=device, dtype=torch.float32, cache=False, progress=False)
        return {m: built[m] for m in modalities}
    return {m: full_extractor(m, folder, device, torch.float32) for m in modalities}


_weights: dict = {}


def variant(extractor, dtype, *, own_attention: bool | None = None, **options):
    """Another extractor over the same float32 weights, with other options: the weights shared where the variant
    holds them in float32 (autocast), cast once where it holds them in its own dtype (a checkpoint stored so),
    then adapted as the extractor adapts a loaded model (its own attention, compilation). A video variant with
    ``own_attention=False`` runs transformers' V-JEPA2 code instead; each adapted model is a copy of its own."""
    from tribev2.features.base import MATMUL_LAYERS

    other = type(extractor)(
        extractor.source, device=str(extractor.device), dtype=dtype, cache=False, progress=False, **options
    )
    own = getattr(other, "own_attention", False) if own_attention is None else own_attention
    compiled = getattr(other, "compile", False)
    key = (id(extractor), other.dtype, other.weights_dtype, own, compiled)
    if key not in _weights:
        held = extractor.model
        if other.autocasts and other.weights_dtype == held.dtype:  # as the extractor holds them
            model = cast_copy(held, other.dtype, only=MATMUL_LAYERS)
        else:
            model = held if other.weights_dtype == held.dtype else cast_copy(held, other.weights_dtype)
        if (own or compiled) and model is held:  # the others keep the float32 eager model
            model = copy.deepcopy(held)
        _weights[key] = other.adapt(model) if (own or compiled) else model
    other._model = _weights[key]
    return other


def cast_copy(model, dtype, only: tuple = ()):
    """``copy.deepcopy(model).to(dtype)`` without the full-precision copy in between (a 3B model's float32 copy
    would not fit beside the original in a 24-GB machine): each tensor is cast as it is copied. With ``only``
    (module types), only those modules' tensors are cast, the others copied as they are
    (``tribev2.features.base.cast_matmul_weights``'s rounding)."""
    import torch

    def cast(module) -> bool:
        return not only or isinstance(module, only)

    memo: dict = {}
    for module in model.modules():
        for p in module.parameters(recurse=False):
            memo[id(p)] = torch.nn.Parameter(p.detach().to(dtype) if cast(module) else p.detach().clone(), False)
        for b in module.buffers(recurse=False):
            memo[id(b)] = b.to(dtype) if cast(module) and b.is_floating_point() else b.clone()
    return copy.deepcopy(model, memo)


def brain(feature_dims: dict, device: str, dtype, cache_dir: Path):
    from tribev2.demo import demo_model

    return demo_model(feature_dims=feature_dims, device=device, dtype=dtype, cache_dir=cache_dir)


# -- timing --------------------------------------------------------------------------------------------------------
def timed(run, device: str):
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()
    start = time.perf_counter()
    out = run()
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return time.perf_counter() - start, out


def _row(rows: list):
    def row(stage, variant_name, dtype, measured, unit_s, units_per_hour, **extra):
        rows.append(
            {
                "stage": stage,
                "variant": variant_name,
                "dtype": str(dtype).removeprefix("torch."),
                "measured_s": measured,
                "units": extra.pop("units"),
                "per_unit_s": unit_s,
                "hour_s": unit_s * units_per_hour,
                **extra,
            }
        )
        print(
            f"  {stage} | {variant_name} | {rows[-1]['dtype']}: {unit_s * 1e3:.2f} ms/unit, "
            f"{rows[-1]['hour_s']:.1f} s per film hour",
            file=sys.stderr,
            flush=True,
        )

    return row


def speed(args, film: Path, words, base: dict, rows: list) -> None:
    import torch

    device, bf16, f32 = args.device, torch.bfloat16, torch.float32
    seconds = args.seconds

    row = _row(rows)

    def wants(part: str) -> bool:
        return "speed" in args.stages.split(",") or part in args.stages.split(",")

    # video: clips from the middle of the slice; the float32 variants run on the first of the bfloat16 ones' clips
    video = base.get("video")
    n_bins = int(round(2 * seconds))
    first_bin = n_bins // 2 - args.fast_bins // 2

    def clips(extractor, n, *, decode_only=False):
        bins = list(range(first_bin, first_bin + n))
        if decode_only:
            requests = extractor.frame_requests(str(film), 0.0, seconds)[bins]
            return lambda: sum(int(c.shape[0]) for c in extractor._clips(str(film), requests))
        return lambda: extractor.event_state_means(str(film), 0.0, seconds, bins=bins)

    per_hour = HOUR_S * 2
    for name, options, n in [
        ("decode + CPU resize alone", dict(dtype=f32, pixels="cpu", compile=False), args.fast_bins),
        ("decode + GPU resize alone", dict(dtype=bf16, pixels="device", compile=False), args.fast_bins),
    ]:
        if not wants("decode"):
            break
        extractor = variant(video, **options)
        clips(extractor, 4, decode_only=True)()  # warm-up
        t, _ = timed(clips(extractor, n, decode_only=True), device)
        workers = extractor.conversion_workers
        row("video", name, extractor.dtype, t, t / n, per_hour, units=f"{n} clips", workers=workers)
    eager = dict(compile=False)  # each row says whether it compiles (the package's default decides by length)
    cpu8, gpu8 = dict(eager, pixels="cpu", batch_size=8), dict(eager, pixels="device", batch_size=8)
    variants = [
        *(
            [("reference scheme: 1 clip per pass, CPU resize", f32, dict(cpu8, batch_size=1), args.exact_bins)]
            if args.reference_rows
            else []
        ),
        ("exact: batches of 4, CPU resize", f32, dict(cpu8, batch_size=4), args.exact_bins),
        ("fast: batches of 8, GPU resize, transformers' code", bf16, dict(gpu8, own_attention=False), args.fast_bins),
        ("fast: batches of 8, CPU resize", bf16, cpu8, args.fast_bins),
        ("fast: batches of 8, GPU resize", bf16, gpu8, args.fast_bins),
        ("fast: batches of 8, GPU resize, every weight bfloat16", bf16, dict(gpu8, weights=bf16), args.fast_bins),
    ]
    if args.compile:
        variants += [
            ("fast: batches of 8, GPU resize, compiled layers", bf16, dict(gpu8, compile=True), args.fast_bins),
        ]
    exact_states = None
    for name, dtype, options, n in variants if wants("video") else []:
        extractor = variant(video, dtype, **options)
        # warm-up (and compilation); compiled layers run their first call after compiling slower (stop 22: 81-128
        # against 73 ms a clip), so they warm up on as many clips as are timed
        t0, _ = timed(clips(extractor, n if options.get("compile") is True else options["batch_size"]), device)
        t, states = timed(clips(extractor, n), device)
        extra = {}
        if dtype == f32:
            exact_states = states
        elif exact_states is not None:  # the bins' token-averaged states against float32's
            extra["states_r_vs_exact"] = state_r(states[: len(exact_states)], exact_states)
        row("video", name, dtype, t, t / n, per_hour, units=f"{n} clips", warmup_s=t0, **extra)
        if args.profile and dtype == bf16 and "CPU resize" not in name:
            try:
                print(kernel_profile(clips(extractor, 8), name), file=sys.stderr, flush=True)
            except Exception as err:  # the profile is a diagnosis: its failure must not end the benchmark
                print(f"  no profile for {name}: {err!r}", file=sys.stderr)
    if device.startswith("cuda") and wants("video"):
        attention_backends(rows, video.model.config, device)

    # text past the cap
    text = base.get("text")
    texts, contexts = (words["text"].tolist(), words["context"].tolist()) if wants("text") else ([], [])
    text_variants = [
        ("reference scheme: 1 word per pass", f32, dict(batch_size=1), args.exact_words),
        ("exact: batches of 8", f32, dict(batch_size=8), args.exact_words),
        ("exact: batches of 8", bf16, dict(batch_size=8), args.fast_words),
        ("exact: batches of 16", bf16, dict(batch_size=16), args.fast_words),
        ("exact: batches of 32", bf16, dict(batch_size=32), args.fast_words),
        ("windowed (stride 128)", bf16, dict(mode="windowed", batch_size=8), len(texts)),
        ("windowed (stride 128)", f32, dict(mode="windowed", batch_size=8), len(texts)),
    ]
    for name, dtype, options, n in text_variants if wants("text") else []:
        extractor = variant(text, dtype, **options)
        extractor.word_features(contexts[:2], texts[:2])  # warm-up
        t, _ = timed(lambda: extractor.word_features(contexts[:n], texts[:n]), device)
        row("text", name, dtype, t, t / n, HOUR_S * WORDS_PER_S, units=f"{n} words")

    # audio: the whole slice, read from the soundtrack WAV as events_from points Audio events at it
    track = str(film_soundtrack(film)) if wants("audio") else None
    audio_variants = [("exact", f32, {}), ("fast", bf16, {}), ("fast, every weight bfloat16", bf16, {"weights": bf16})]
    exact_features = None
    for name, dtype, options in audio_variants if wants("audio") else []:
        extractor = variant(base["audio"], dtype, **options)
        extractor.event_features(track, 0.0, min(seconds, 10.0))  # warm-up
        t, features = timed(lambda: extractor.event_features(track, 0.0, seconds), device)  # (groups, dim, time)
        exact_features = features if exact_features is None else exact_features
        r = state_r(*(torch.from_numpy(f).permute(2, 0, 1) for f in (features, exact_features)))
        row("audio", name, dtype, t, t, HOUR_S / seconds, units=f"{seconds:g} s", features_r_vs_exact=r)


def state_r(states, exact) -> float:
    """The mean over hidden states of the correlation of ``(bins, width)`` states with float32's, each channel
    centred over the bins (the features' variation over time, not their offsets)."""
    a, b = states.float().numpy(), exact.float().numpy()  # (bins, states, width)
    a, b = a - a.mean(0), b - b.mean(0)
    r = (a * b).sum((0, 2)) / np.sqrt((a * a).sum((0, 2)) * (b * b).sum((0, 2)))
    return float(r.mean())


def kernel_profile(run, name: str, top: int = 12) -> str:
    """The GPU kernels of one ``run()``: the ``top`` by time, and the shares of matmuls, attention and the rest."""
    import torch
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        run()
        torch.cuda.synchronize()
    kernels = [e for e in prof.key_averages() if e.device_time_total > 0]
    total = sum(e.self_device_time_total for e in kernels)

    def kind(name: str) -> str:
        lowered = name.lower()
        if any(k in lowered for k in ("flash", "fmha", "attn", "attention", "cudnn_generated")):
            return "attention"
        if any(k in lowered for k in ("gemm", "xmma", "nvjet", "cutlass", "matmul", "conv")):
            return "matmul / conv"
        return "element-wise and the rest"

    shares: dict = {}
    for e in kernels:
        shares[kind(e.key)] = shares.get(kind(e.key), 0.0) + e.self_device_time_total
    lines = [f"kernels of one batch of 8 clips, {name}: {total / 1e3:.1f} ms in all"]
    lines += [f"  {k}: {v / total:.0%}" for k, v in sorted(shares.items(), key=lambda kv: -kv[1])]
    for e in sorted(kernels, key=lambda e: -e.self_device_time_total)[:top]:
        lines.append(f"  {e.self_device_time_total / 1e3:8.2f} ms  x{e.count:<5d} {e.key[:110]}")
    return "\n".join(lines)


def attention_backends(rows: list, config, device: str) -> None:
    """V-JEPA2's attention alone (a batch of 8 clips, bfloat16) on each SDPA kernel, scaled to one film hour."""
    import torch
    from torch.nn.attention import SDPBackend, sdpa_kernel

    row = _row(rows)
    tokens = (config.frames_per_clip // config.tubelet_size) * (config.crop_size // config.patch_size) ** 2
    heads = config.num_attention_heads
    head_dim = config.hidden_size // heads
    q, k, v = (torch.randn(8, heads, tokens, head_dim, device=device, dtype=torch.bfloat16) for _ in range(3))
    flops = 4 * 8 * heads * tokens**2 * head_dim
    sdpa = torch.nn.functional.scaled_dot_product_attention
    for backend in (None, SDPBackend.CUDNN_ATTENTION, SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION):
        name = "default choice" if backend is None else backend.name
        try:
            with sdpa_kernel(backend) if backend is not None else contextlib.nullcontext():
                sdpa(q, k, v)  # warm-up
                t, _ = timed(lambda: [sdpa(q, k, v) for _ in range(10)], device)
        except RuntimeError as err:
            print(f"  attention {name}: not available ({str(err).splitlines()[0][:100]})", file=sys.stderr)
            continue
        per_clip = t / 10 / 8 * config.num_hidden_layers  # every layer of one clip
        row(
            "attention alone",
            name,
            torch.bfloat16,
            t,
            per_clip,
            HOUR_S * 2,
            units="10 x 8 clips, 1 layer",
            tflops=flops * 10 / t / 1e12,
        )


def brain_speed(args, base: dict, rows: list) -> None:
    """The brain model over one hour of windows: as predict feeds it, in one batch, compiled with a CUDA graph."""
    import torch

    from tribev2.features import feature_dims
    from tribev2.predict import _predict_windows

    device, bf16, f32 = args.device, torch.bfloat16, torch.float32
    row = _row(rows)
    dims = feature_dims(base)
    for dtype in (f32, bf16):
        model = brain(dims, device, dtype, Path(args.workdir) / "cache")
        n_windows = HOUR_S // int(model.config.window_s)
        samples = model.config.window_samples
        rng = np.random.default_rng(0)
        windows = [
            {m: rng.standard_normal((g, d, samples), dtype=np.float32) for m, (g, d) in dims.items()}
            for _ in range(n_windows)
        ]
        rows_ = model.subject_rows(None)
        _predict_windows(model, windows[:8], rows=rows_, batch_size=8)
        t, _ = timed(lambda: _predict_windows(model, windows, rows=rows_, batch_size=8), device)
        row("brain model", "batches of 8 windows (predict), incl. copies", dtype, t, t, 1, units=f"{n_windows} windows")
        stacked = {m: torch.from_numpy(np.stack([w[m] for w in windows])).to(device) for m in dims}
        with torch.inference_mode():
            model(stacked, subjects=rows_)
            t, _ = timed(lambda: model(stacked, subjects=rows_), device)
        row(
            "brain model", f"one batch of {n_windows} windows, on the GPU", dtype, t, t, 1, units=f"{n_windows} windows"
        )
        if dtype == bf16 and device.startswith("cuda") and args.compile:
            graphed = torch.compile(model, mode="reduce-overhead", dynamic=False)
            with torch.inference_mode():
                t0, _ = timed(lambda: [graphed(stacked, subjects=rows_) for _ in range(3)], device)
                t, _ = timed(lambda: graphed(stacked, subjects=rows_), device)
            row(
                "brain model",
                f"one batch of {n_windows} windows, compiled + CUDA graph",
                dtype,
                t,
                t,
                1,
                units=f"{n_windows} windows",
                warmup_s=t0,
            )


def fidelity(args, film: Path, words, base: dict, rows: list, out: dict) -> None:
    import torch

    from tribev2.features import feature_dims

    device, seconds = args.device, args.seconds
    events = events_table(film, words, seconds)
    dims = feature_dims(base)
    runs = {
        "exact": (torch.float32, {"text": {}, "audio": {}, "video": {"pixels": "cpu"}}),
        "fast": (torch.bfloat16, {"text": {}, "audio": {}, "video": {"pixels": "device", "batch_size": 8}}),
        "fast + windowed text": (
            torch.bfloat16,
            {"text": {"mode": "windowed"}, "audio": {}, "video": {"pixels": "device", "batch_size": 8}},
        ),
    }
    predictions, text_features = {}, {}
    for name, (dtype, options) in runs.items():
        chosen = {m: variant(base[m], dtype, **options[m]) for m in ("text", "audio", "video")}
        t, stage_s, ds = timed_predict(events, chosen, brain(dims, device, dtype, Path(args.workdir) / "cache"), args)
        predictions[name] = ds.prediction.values[..., 0]  # (time, vertex)
        first = words.iloc[:128]  # the text features' correlation, on fewer words (float32 costs 0.13 s a word)
        text_features[name] = chosen["text"].word_features(first["context"].tolist(), first["text"].tolist())
        rows.append(
            {
                "stage": "predict (whole slice)",
                "variant": name,
                "dtype": str(dtype).removeprefix("torch."),
                "measured_s": t,
                "stage_s": stage_s,
                "per_unit_s": t,
                "units": f"{seconds:g} s",
                "hour_s": t * HOUR_S / seconds,
                "precision_attr": ds.attrs["precision"],
            }
        )
        print(f"  predict {name}: {t:.1f} s ({stage_s})", file=sys.stderr, flush=True)
    exact = predictions["exact"]
    for name in ("fast", "fast + windowed text"):
        r = per_vertex_r(predictions[name], exact)
        out.setdefault("fidelity", {})[name] = {
            "median_vertex_r": float(np.median(r)),
            "p5_vertex_r": float(np.percentile(r, 5)),
            "min_vertex_r": float(r.min()),
            "relative_error": float(np.linalg.norm(predictions[name] - exact) / np.linalg.norm(exact)),
            "text_feature_r_vs_exact": float(
                np.corrcoef(text_features[name].ravel(), text_features["exact"].ravel())[0, 1]
            ),
        }
    out["fidelity"]["windowed vs fast (text features, same dtype)"] = {
        "text_feature_r": float(
            np.corrcoef(text_features["fast + windowed text"].ravel(), text_features["fast"].ravel())[0, 1]
        ),
        "median_vertex_r": float(np.median(per_vertex_r(predictions["fast + windowed text"], predictions["fast"]))),
    }
    print(json.dumps(out["fidelity"], indent=1), file=sys.stderr, flush=True)


def text_fidelity(args, words, base: dict, out: dict) -> None:
    """Text features past the cap, bfloat16 against float32 on ``--exact-words`` words: bfloat16 weights as
    cuBLAS runs them by default (reduced-precision reductions allowed) and with full-precision reductions, and
    under autocast (the bfloat16-stored weights held in float32: the matrix products in bfloat16 on the same
    weights, the residual stream, norms and embeddings in float32). Each variant's model is freed after it."""
    import torch

    n = args.exact_words
    contexts, texts = words["context"].tolist()[:n], words["text"].tolist()[:n]
    exact = variant(base["text"], torch.float32, batch_size=8).word_features(contexts, texts)  # (W, groups, D)
    matmul = torch.backends.cuda.matmul
    default = matmul.allow_bf16_reduced_precision_reduction
    results = {}
    try:
        for name, reduced, weights in [
            ("bfloat16", default, None),
            ("bfloat16, full-precision reductions", False, None),
            ("bfloat16 under autocast, float32 residual stream", default, torch.float32),
        ]:
            matmul.allow_bf16_reduced_precision_reduction = reduced
            extractor = variant(base["text"], torch.bfloat16, batch_size=8, weights=weights)
            t, fast = timed(lambda e=extractor: e.word_features(contexts, texts), args.device)
            for key in [key for key, model in _weights.items() if model is extractor.model]:
                del _weights[key]  # the variant's model, freed before the next is built
            del extractor
            a, b = fast - fast.mean(0), exact - exact.mean(0)
            results[name] = {
                "r": float(np.corrcoef(fast.ravel(), exact.ravel())[0, 1]),
                "r_centred_over_words": float((a * b).sum() / np.sqrt((a * a).sum() * (b * b).sum())),
                "relative_error": float(np.linalg.norm(fast - exact) / np.linalg.norm(exact)),
                "seconds_per_word": t / n,
            }
    finally:
        matmul.allow_bf16_reduced_precision_reduction = default
    out["text_fidelity"] = {"words": n, **results}
    print(json.dumps(out["text_fidelity"], indent=1), file=sys.stderr, flush=True)


def timed_predict(events, chosen: dict, model, args):
    """``tribev2.predict`` over ``events`` with the ``chosen`` extractors (the features cache on, as predict
    runs, in a folder of its own): (seconds, seconds per modality's extraction, the Dataset)."""
    import tribev2

    stage_s: dict = {}
    for modality, extractor in chosen.items():
        extractor.cache, extractor.cache_dir = True, Path(args.workdir) / "cache" / f"{modality}-{time.time()}"

        def wrap(extract, modality=modality):
            def run(*a, **k):
                t, value = timed(lambda: extract(*a, **k), args.device)
                stage_s[modality] = stage_s.get(modality, 0.0) + t
                return value

            return run

        vars(extractor).pop("extract", None)  # a previous run's wrapper
        extractor.extract = wrap(extractor.extract)
    t, ds = timed(
        lambda: tribev2.predict(
            events, model=model, extractors=list(chosen.values()), atlas=None, device=args.device, progress=False
        ),
        args.device,
    )
    return t, stage_s, ds


def extend_film(film: Path, repeats: int) -> Path:
    """``film`` played ``repeats`` times in one file, its packets copied (no re-encoding: the same bit rate and
    decoding cost), each stream's timestamps moved on by the length of the copies before."""
    import av

    path = film.with_name(f"{film.stem}-x{repeats}.mp4")
    if path.is_file():
        return path
    tmp = path.with_suffix(".tmp.mp4")
    with av.open(str(film)) as src, av.open(str(tmp), "w") as dst:
        kept = [stream for stream in src.streams if stream.type in ("video", "audio")]
        out = {stream.index: dst.add_stream_from_template(stream) for stream in kept}
        span: dict = {}  # per stream: (first pts, length), in its time base
        for stream in kept:
            packets = [p for p in src.demux(stream) if p.pts is not None]
            first = min(p.pts for p in packets)
            span[stream.index] = (first, max(p.pts + (p.duration or 0) for p in packets) - first)
            src.seek(0)
        last_dts: dict = {}
        for copy_index in range(repeats):
            src.seek(0)
            for packet in src.demux(*kept):
                if packet.dts is None:  # the demuxer's flush packet
                    continue
                index = packet.stream.index
                shift = copy_index * span[index][1]
                packet.pts, packet.dts = packet.pts + shift, packet.dts + shift
                if packet.dts <= last_dts.get(index, -(2**62)):
                    continue
                last_dts[index] = packet.dts
                packet.stream = out[index]
                dst.mux(packet)
    tmp.rename(path)
    return path


def film_run(args, film: Path, tokenizer, base: dict, rows: list, out: dict) -> None:
    """One real fast run of ``tribev2.predict`` on a ``--film-seconds`` film (the slice repeated), timed per
    stage, beside the speed stage's extrapolation for the same variants where it ran."""
    import torch

    from tribev2.features import extract_features, feature_dims

    seconds = args.film_seconds
    repeats = int(np.ceil(seconds / args.seconds))
    t, long = timed(lambda: extend_film(film, repeats), "cpu")
    print(f"film of {seconds:g} s: {long} ({long.stat().st_size / 2**20:.0f} MiB, made in {t:.0f} s)", file=sys.stderr)
    words = transcript(tokenizer, seconds)
    t_events, events = timed(lambda: events_table(long, words, seconds), "cpu")  # the soundtrack decoded
    video_options = dict(pixels="device", batch_size=8, compile=True if args.film_compile else "auto")
    chosen = {
        "text": variant(base["text"], torch.bfloat16, mode="windowed"),
        "audio": variant(base["audio"], torch.bfloat16),
        "video": variant(base["video"], torch.bfloat16, **video_options),
    }
    model = brain(feature_dims(base), args.device, torch.bfloat16, Path(args.workdir) / "cache")
    name = f"fast, windowed text, video compile={video_options['compile']!r}"
    # the extractors on threads of their own (predict's default on a GPU; the first run pays any compilation),
    # then, with --film-baseline, one after the other (as before) and on threads again, both on the warm models
    runs = (None, False, None) if args.film_baseline else (None,)
    for run, concurrent in enumerate(runs):
        how = "extractors on threads (on a GPU)" if concurrent is None else "extractors one after another"
        how += ", first run (pays the compilation)" if run == 0 and len(runs) > 1 else ", warm" if run else ""
        with mock.patch("tribev2.predict.extract_features", functools.partial(extract_features, concurrent=concurrent)):
            t, stage_s, ds = timed_predict(events, chosen, model, args)
        stage_s["soundtrack"] = t_events  # part of predict's cost on a film (events_from decodes it)
        t += t_events
        rows.append(
            {
                "stage": f"predict ({seconds / 60:g}-min film)",
                "variant": f"{name}, {how}",
                "dtype": "bfloat16",
                "measured_s": t,
                "stage_s": stage_s,  # on threads, the stages overlap: their sum exceeds the run's time
                "per_unit_s": t,
                "units": f"{seconds:g} s",
                "hour_s": t * HOUR_S / seconds,
                "time_points": int(ds.sizes["time"]),
            }
        )
        print(f"  predict, {seconds:g}-s film, {name}, {how}: {t:.1f} s ({stage_s})", file=sys.stderr, flush=True)
        out.setdefault("film", []).append({"seconds": seconds, "variant": f"{name}, {how}", "measured_s": t})


def per_vertex_r(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Correlation over time at each vertex of two ``(time, vertex)`` arrays."""
    a = a - a.mean(0)
    b = b - b.mean(0)
    return (a * b).sum(0) / np.sqrt((a * a).sum(0) * (b * b).sum(0))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--models", choices=("demo", "full"), help="default: full on CUDA, demo elsewhere")
    parser.add_argument("--stages", default="speed,brain,fidelity")
    parser.add_argument("--seconds", type=float, default=120.0, help="length of the synthetic slice")
    parser.add_argument("--exact-bins", type=int, default=8, help="clips for the float32 video variants")
    parser.add_argument("--fast-bins", type=int, default=96, help="clips for the bfloat16 video variants")
    parser.add_argument("--exact-words", type=int, default=16, help="words for the float32 per-word text variants")
    parser.add_argument("--fast-words", type=int, default=64, help="words for the bfloat16 per-word text variants")
    parser.add_argument("--no-compile", dest="compile", action="store_false", help="skip the torch.compile rows")
    parser.add_argument("--profile", action="store_true", help="print the GPU kernels of the fast video variants")
    parser.add_argument("--no-reference-rows", dest="reference_rows", action="store_false", help="skip them")
    parser.add_argument("--film-seconds", type=float, default=900.0, help="length of the film stage's film")
    parser.add_argument(
        "--film-compile", action="store_true", help="compile=True for the film (default: 'auto', by its length)"
    )
    parser.add_argument(
        "--film-baseline",
        action="store_true",
        help="the film again with the extractors one after another, then on threads again (both warm)",
    )
    parser.add_argument("--workdir", default=str(Path(os.environ.get("TMPDIR", "/tmp")) / "tribev2-bench-e2e"))
    parser.add_argument("--json", help="write the results here as JSON")
    parser.add_argument("--modalities", default="text,audio,video", help="the models to build (textfidelity: text)")
    args = parser.parse_args()
    args.models = args.models or ("full" if args.device.startswith("cuda") else "demo")

    import torch
    from bench_model import _machine

    torch.set_grad_enabled(False)
    workdir = Path(args.workdir)
    film = None
    if set(args.stages.split(",")) - {"text", "textfidelity", "brain"}:  # the stages that read the film
        t, film = timed(lambda: make_film(workdir, args.seconds), "cpu")
        print(f"film: {film} ({film.stat().st_size / 2**20:.1f} MiB, made in {t:.0f} s)", file=sys.stderr, flush=True)
    base = extractors(args.models, args.device, workdir, args.modalities.split(","))
    words = transcript(base["text"].tokenizer, args.seconds) if "text" in base else None  # audio or video alone
    out = {
        "device": args.device,
        "machine": _machine(args.device),
        "models": args.models,
        "seconds": args.seconds,
        "film_mib": None if film is None else film.stat().st_size / 2**20,
        "torch": torch.__version__,
    }
    rows: list = []
    try:
        if set(args.stages.split(",")) & {"speed", "decode", "video", "text", "audio"}:
            speed(args, film, words, base, rows)
        if "fidelity" in args.stages.split(","):
            fidelity(args, film, words, base, rows, out)
        if "textfidelity" in args.stages.split(","):
            text_fidelity(args, words, base, out)
        if "brain" in args.stages.split(","):
            brain_speed(args, base, rows)
        if "film" in args.stages.split(","):
            film_run(args, film, base["text"].tokenizer, base, rows, out)
    finally:
        out["rows"] = rows
        if args.json:
            Path(args.json).write_text(json.dumps(out, indent=2))
    print(f"\nEnd to end, {args.models} models, {args.device} ({out['machine']}), {args.seconds:g}-s slice")
    print("| stage | variant | dtype | measured on | per unit | s per film hour |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['stage']} | {r['variant']} | {r['dtype']} | {r['units']} | {r['per_unit_s'] * 1e3:.1f} ms | "
            f"{r['hour_s']:.0f} |"
        )
    if "fidelity" in out:
        print(json.dumps(out["fidelity"], indent=1))


if __name__ == "__main__":
    main()
