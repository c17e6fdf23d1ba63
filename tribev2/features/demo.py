"""Tiny demo feature extractors that need no network: text, audio and video models built from small configs
with seeded random weights, saved once under ``<cache root>/demo/`` and loaded with ``from_pretrained``."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import torch

from ..cache import atomic_path, cache_dir
from ..progress import progress_bars
from .audio import AudioExtractor
from .text import TextExtractor
from .video import VideoExtractor

DEMO_EXTRACTORS_SEED = 2027
# Original sentences to train the demo tokenizer on: enough to learn common English merges, nothing more.
_DEMO_CORPUS = """\
The keeper climbed the stairs of the old lighthouse every night and lit the lamp before the ships came in.
She said the sea was calm, but nobody believed her: the wind had turned, and the boats were rocking gently.
We walked along the pier, counting ropes, anchors and gulls, and waited for the ferry to appear at noon.
A radio was playing somewhere behind us; my brother laughed, picked up the bags and ran toward the car.
Brains respond to words, sounds and pictures; a model predicts those responses from features of each one.
It was going to be a long, strange weekend. Why? Because it's the first time we've come here in years!
0 1 2 3 4 5 6 7 8 9 10 100 1000 2026
"""


def demo_extractors(*, per_modality: dict | None = None, **options) -> dict:
    """Tiny text, audio and video extractors: ``{"text": ..., "audio": ..., "video": ...}``.

    Llama, Wav2Vec2-BERT and V-JEPA2 models built from small configs with seeded random weights (and, for
    text, a byte-level BPE tokenizer trained with ``tokenizers``), saved once under ``<cache root>/demo/`` and
    loaded with ``from_pretrained`` like real models. Each gives 2 layer groups (widths 32, 24 and 16) and
    runs a 10-s clip in about a second on a CPU. ``options`` go to every extractor (``device``, ``cache``,
    ``progress``, ...), ``per_modality[m]`` to one (``{"text": {"mode": "windowed"}}``). Their features are
    *not* meaningful: they exercise the pipeline. A brain model that takes them::

        from tribev2.demo import demo_extractors, demo_model
        from tribev2.features import feature_dims

        extractors = demo_extractors()
        model = demo_model(feature_dims=feature_dims(extractors))
    """
    with progress_bars(options.get("progress")):  # transformers' "Writing model shards" on the first call
        folder = _saved_demo_extractors(options.get("cache_dir"))
    extra = per_modality or {}
    return {
        "text": TextExtractor(folder / "text", **options, **extra.get("text", {})),
        "audio": AudioExtractor(folder / "audio", **options, **extra.get("audio", {})),
        "video": VideoExtractor(folder / "video", **options, **extra.get("video", {})),
    }


def _demo_extractor_configs() -> dict:
    from transformers import LlamaConfig, VJEPA2Config, Wav2Vec2BertConfig

    # 3 layers = 4 hidden states, the fewest that give two layer groups at fractions (0.5, 0.75, 1.0)
    return {
        "text": LlamaConfig(
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=3,
            num_attention_heads=4,
            num_key_value_heads=2,
            max_position_embeddings=8192,
            initializer_range=0.1,
            tie_word_embeddings=True,
        ),
        "audio": Wav2Vec2BertConfig(
            hidden_size=24,
            intermediate_size=48,
            num_hidden_layers=3,
            num_attention_heads=2,
            output_hidden_size=24,
            conv_depthwise_kernel_size=5,
            initializer_range=0.1,
        ),
        "video": VJEPA2Config(
            hidden_size=16,
            num_hidden_layers=3,
            num_attention_heads=2,
            mlp_ratio=2.0,
            crop_size=32,
            frames_per_clip=4,
            pred_hidden_size=16,
            pred_num_hidden_layers=1,
            pred_num_attention_heads=2,
            initializer_range=0.1,
        ),
    }


def _saved_demo_extractors(root) -> Path:
    configs = _demo_extractor_configs()
    spec = json.dumps(
        [{m: c.to_dict() for m, c in configs.items()}, _DEMO_CORPUS, DEMO_EXTRACTORS_SEED], sort_keys=True, default=str
    )
    folder = cache_dir("demo", root) / f"extractors-{hashlib.sha256(spec.encode()).hexdigest()[:16]}"
    if (folder / "video" / "config.json").is_file():
        return folder
    from transformers import AutoModel, SeamlessM4TFeatureExtractor

    with atomic_path(folder) as tmp:
        tokenizer = _demo_tokenizer()
        tokenizer.save_pretrained(tmp / "text")
        configs["text"].update(
            {
                "vocab_size": len(tokenizer),
                "bos_token_id": tokenizer.bos_token_id,
                "eos_token_id": tokenizer.eos_token_id,
            }
        )
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(DEMO_EXTRACTORS_SEED)
            for modality, config in configs.items():
                AutoModel.from_config(config).save_pretrained(tmp / modality)
        SeamlessM4TFeatureExtractor().save_pretrained(tmp / "audio")
        crop = configs["video"].crop_size
        (tmp / "video" / "video_preprocessor_config.json").write_text(
            json.dumps(
                {
                    "video_processor_type": "VJEPA2VideoProcessor",
                    "do_resize": True,
                    "do_center_crop": True,
                    "size": {"shortest_edge": int(crop * 256 / 224)},
                    "crop_size": {"height": crop, "width": crop},
                    "do_rescale": True,
                    "rescale_factor": 1 / 255,
                    "do_normalize": True,
                    "resample": 2,
                    "image_mean": [0.485, 0.456, 0.406],
                    "image_std": [0.229, 0.224, 0.225],
                },
                indent=2,
            )
        )
    return folder


def _demo_tokenizer():
    """A Llama-3-style byte-level BPE tokenizer (same split pattern, no BOS added) trained on ``_DEMO_CORPUS``."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    special = ["<|begin_of_text|>", "<|end_of_text|>"]
    split = (
        r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
        r"|\s*[\r\n]+|\s+(?!\S)|\s+"
    )
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(split), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=512,
        special_tokens=special,
        show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tokenizer.train_from_iterator(_DEMO_CORPUS.splitlines(), trainer=trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, bos_token=special[0], eos_token=special[1], model_max_length=131072
    )
