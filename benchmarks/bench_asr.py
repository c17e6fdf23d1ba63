"""Speech recognition per hour of speech: Whisper large-v3's architecture with random weights, decoded in order
and in batches (``tribev2.events.transcribe``'s two decoders).

The real large-v3 cannot reach the lent GPU, so its architecture is built from its config (32 + 32 layers of width
1280, 128 mel bins; the English-only vocabulary of the packaged tiny.en's tokenizer, 2 tokens fewer than
large-v3's) with random weights, converted with CTranslate2's converter (float16 on CUDA, int8 on a CPU) and
run through faster-whisper as ``transcribe`` runs it: in order (``batch_size=1``: 30-s windows, the voice-activity
filter on) and batched (``--batch-sizes``: speech chunks cut at the filter's pauses). Random weights decode random
tokens, so each window is made to decode what speech would: greedily (no temperature fallback, which random
weights would trigger on every window), without timestamp tokens, the end of text suppressed, and
``--tokens-per-second`` x 30 tokens a window at most (3.5 a second: about 2.5 words a second in Whisper's word
pieces); word timings are computed as ``transcribe`` asks. One hour = the measured time x 3,600 / the audio's
length. ``--size tiny`` builds tiny's architecture instead (a CPU smoke test of this script).

Speech: ``--audio``, else espeak-ng reading a generated text (as ``bench_events.py``). Usage::

    python benchmarks/bench_asr.py --device cuda --batch-sizes 8,16            # large-v3 architecture, float16
    python benchmarks/bench_asr.py --device cuda --tokenizer .devcarry/whisper-tokenizer.json   # lent GPU
    python benchmarks/bench_asr.py --size tiny --batch-sizes 8                 # CPU smoke test
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from bench_model import _machine  # noqa: E402

ARCHITECTURES = {  # transformers WhisperConfig fields
    "large-v3": dict(d_model=1280, layers=32, heads=20, ffn=5120, mels=128),
    "tiny": dict(d_model=384, layers=4, heads=6, ffn=1536, mels=80),
}


def random_whisper(size: str, folder: Path, quantization: str, tokenizer: Path | None = None) -> Path:
    """A CTranslate2 Whisper of ``size``'s architecture with seeded random weights, in ``folder``."""
    import torch
    from ctranslate2.converters import TransformersConverter
    from transformers import WhisperConfig, WhisperForConditionalGeneration

    from tribev2.events import packaged_tiny_whisper

    shape = ARCHITECTURES[size]
    config = WhisperConfig(
        vocab_size=51864,  # the English-only tokenizer's (tiny.en, packaged)
        num_mel_bins=shape["mels"],
        d_model=shape["d_model"],
        encoder_layers=shape["layers"],
        decoder_layers=shape["layers"],
        encoder_attention_heads=shape["heads"],
        decoder_attention_heads=shape["heads"],
        encoder_ffn_dim=shape["ffn"],
        decoder_ffn_dim=shape["ffn"],
        decoder_start_token_id=50257,
        bos_token_id=50256,
        eos_token_id=50256,
        pad_token_id=50256,
    )
    torch.manual_seed(0)
    hf = folder / "transformers"
    WhisperForConditionalGeneration(config).eval().save_pretrained(hf)
    shutil.copy(tokenizer or Path(packaged_tiny_whisper()) / "tokenizer.json", hf / "tokenizer.json")
    (hf / "preprocessor_config.json").write_text(json.dumps({"feature_size": shape["mels"]}))
    out = folder / "ctranslate2"
    TransformersConverter(str(hf), copy_files=["tokenizer.json", "preprocessor_config.json"]).convert(
        str(out), quantization=quantization
    )
    shutil.rmtree(hf)
    return out


def speech(audio: Path | None, seconds: float) -> Path:
    if audio is not None:
        return audio
    from bench_events import synthetic_words

    from tribev2.events import synthesize

    return synthesize(" ".join(synthetic_words(seconds / 60 * 1.1, seed=1)["text"]), name="bench-asr")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--size", choices=tuple(ARCHITECTURES), default="large-v3")
    parser.add_argument("--audio", type=Path, help="speech to recognise (default: 60 s of espeak-ng)")
    parser.add_argument("--seconds", type=float, default=60.0, help="length of the generated speech")
    parser.add_argument("--repeat", type=int, default=1, help="the speech played this many times in a row")
    parser.add_argument("--tokenizer", type=Path, help="Whisper's English tokenizer.json (default: tiny.en's)")
    parser.add_argument("--batch-sizes", default="8,16", help="batched variants, beside the in-order one")
    parser.add_argument("--tokens-per-second", type=float, default=3.5, help="decoded per second of speech")
    parser.add_argument("--json", help="write the rows here")
    args = parser.parse_args()
    if args.tokenizer is None:
        from tribev2.events import packaged_tiny_whisper

        if packaged_tiny_whisper() is None:  # on the lent GPU: device.sh carries the tokenizer instead
            parser.error("Whisper tiny.en is not installed here: pass --tokenizer (.devcarry/whisper-tokenizer.json)")

    from faster_whisper import BatchedInferencePipeline, WhisperModel, decode_audio

    cuda = args.device.startswith("cuda")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = random_whisper(args.size, Path(tmp), "float16" if cuda else "int8", args.tokenizer)
        model = WhisperModel(str(folder), device="cuda" if cuda else "cpu", compute_type="float16" if cuda else "int8")
        samples = np.tile(decode_audio(str(speech(args.audio, args.seconds)), sampling_rate=16000), args.repeat)
        duration = len(samples) / 16000
        # greedy, no fallback: random weights fail every quality check, and faster-whisper would decode each
        # window again at five temperatures (real weights rarely do)
        options = dict(
            language="en",
            word_timestamps=True,
            temperature=0.0,
            compression_ratio_threshold=None,
            log_prob_threshold=None,
            no_speech_threshold=None,
            without_timestamps=True,
            suppress_tokens=[-1, model.hf_tokenizer.token_to_id("<|endoftext|>")],
            max_new_tokens=round(30 * args.tokens_per_second),
        )
        variants = [("in order", lambda: model.transcribe(samples, vad_filter=True, **options))]
        for batch in (int(b) for b in args.batch_sizes.split(",")):
            pipeline = BatchedInferencePipeline(model)
            variants.append(
                (f"batches of {batch}", lambda p=pipeline, b=batch: p.transcribe(samples, batch_size=b, **options))
            )
        for name, run in variants:
            list(run()[0])  # warm-up
            began = time.perf_counter()
            segments = list(run()[0])
            seconds = time.perf_counter() - began
            tokens = sum(len(s.tokens) for s in segments)
            rows.append(
                {
                    "variant": name,
                    "audio_s": round(duration, 1),
                    "seconds": round(seconds, 3),
                    "tokens": tokens,
                    "hour_s": round(seconds * 3600 / duration, 1),
                }
            )
            print(
                f"  {name:14s} {seconds:7.2f} s for {duration:.0f} s of speech ({tokens} tokens): "
                f"{rows[-1]['hour_s']:.0f} s per hour of speech"
            )
    print(f"{_machine(args.device)}, Whisper {args.size} architecture, random weights")
    if args.json:
        Path(args.json).write_text(
            json.dumps({"machine": _machine(args.device), "args": vars(args), "rows": rows}, default=str)
        )


if __name__ == "__main__":
    main()
