"""Loading Llama-3.2-3B for precision="fast": host memory and seconds, as stored (bfloat16) against widened first.

Llama-3.2-3B stores its weights in bfloat16; precision="fast" holds its linear layers in bfloat16 and the rest
(embeddings, norms) in float32 under autocast. Two ways to get there, each in its own process (its peak resident
memory its own), on the same checkpoint:

* ``widened first`` (the baseline, the package until this script): every weight loaded in float32, then the
  linear layers rounded back to bfloat16 (``Extractor.prepare``);
* ``as stored`` (``Extractor.loads_as_stored``): loaded in bfloat16, then all but the linear layers widened.

The checkpoint is the release architecture (``bench_features.full_configs``) with seeded random bfloat16
weights, saved once under ``--workdir`` (6.4 GB) with the demo tokenizer. Each process reports the seconds
``TextExtractor(...).model`` took, its peak resident memory, and a digest of every parameter and buffer
(names, dtypes, bytes), which must agree. Usage::

    python benchmarks/bench_text_load.py --workdir /tmp/bench-text-load
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from bench_features import copy_demo_files, full_configs  # noqa: E402
from bench_model import _machine, _peak_rss_mib  # noqa: E402

WAYS = ("widened first", "as stored")


def save_checkpoint(target: Path) -> None:
    """The release architecture with seeded random bfloat16 weights and the demo tokenizer, saved once."""
    if (target / "config.json").exists():
        return
    import torch
    from transformers import AutoModel

    torch.manual_seed(0)
    model = AutoModel.from_config(full_configs()["text"], dtype=torch.bfloat16)
    partial = target.with_name(target.name + ".partial")
    model.save_pretrained(partial)
    copy_demo_files("text", partial)
    partial.rename(target)


def load(checkpoint: Path, way: str) -> dict:
    """``TextExtractor(checkpoint, precision="fast").model`` on the CPU the chosen way, timed, with its digest."""
    import torch

    from tribev2.features import TextExtractor

    if way == "widened first":
        TextExtractor.loads_as_stored = property(lambda self: False)
    extractor = TextExtractor(checkpoint, device="cpu", precision="fast", cache=False, progress=False)
    start = time.perf_counter()
    model = extractor.model
    seconds = time.perf_counter() - start
    digest = hashlib.sha256()
    tensors = dict(model.named_parameters()) | dict(model.named_buffers())
    for name in sorted(tensors):
        tensor = tensors[name].detach().contiguous()
        digest.update(f"{name}:{tensor.dtype}".encode())
        digest.update(tensor.view(torch.uint8).numpy().tobytes() if tensor.numel() else b"")
    dtypes = sorted({str(t.dtype) for t in tensors.values()})
    return {
        "way": way,
        "seconds": seconds,
        "peak_gib": _peak_rss_mib() / 1024,
        "digest": digest.hexdigest(),
        "dtypes": dtypes,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, required=True, help="folder for the 6.4-GB checkpoint")
    parser.add_argument("--way", choices=WAYS, help=argparse.SUPPRESS)  # one measurement, in a child process
    parser.add_argument("--repeats", type=int, default=2, help="processes per way, alternating (default 2)")
    args = parser.parse_args()
    checkpoint = args.workdir / "llama-3.2-3b-random-bf16"
    if args.way:
        print(json.dumps(load(checkpoint, args.way)))
        return
    args.workdir.mkdir(parents=True, exist_ok=True)
    save_checkpoint(checkpoint)
    rows = []
    for _ in range(args.repeats):
        for way in WAYS:
            command = [sys.executable, __file__, "--workdir", str(args.workdir), "--way", way]
            out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
            rows.append(json.loads(out.strip().splitlines()[-1]))
            print(json.dumps(rows[-1]), flush=True)
    if len({row["digest"] for row in rows}) != 1:
        raise SystemExit("the two ways hold different tensors")
    print(f"machine: {_machine('cpu')}")
    for way in WAYS:
        mine = [row for row in rows if row["way"] == way]
        print(
            f"{way:>14}: {min(r['seconds'] for r in mine):6.1f} s (best of {len(mine)}), "
            f"peak {max(r['peak_gib'] for r in mine):5.1f} GiB; same tensors: yes"
        )


if __name__ == "__main__":
    main()
