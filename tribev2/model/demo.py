"""Untrained demo weights that need no network: seeded, in the release's geometry (or a smaller one).

``demo_model()`` builds a brain model from a fixed seed, saves it once under ``<cache root>/demo/`` in the hub's
form (``config.yaml`` + ``best.ckpt``) and loads it back through :meth:`TribeModel.from_pretrained`, the path
real weights take. Its predictions are *not* brain responses: they show the shapes, the timing and the tools.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
from importlib import resources
from pathlib import Path

import numpy as np
import torch
import yaml

from ..cache import atomic_path, cache_dir
from ..checks import check_free_space
from .config import BrainConfig
from .tribe import TribeModel

DEMO_SEED = 2026


def release_experiment_config() -> dict:
    """The release geometry as a ``config.yaml`` mapping, with its build arguments under ``model_build_args``."""
    text = resources.files("tribev2.data").joinpath("release_brain_config.yaml").read_text()
    return yaml.safe_load(text)


def demo_model(
    *,
    feature_dims: dict[str, tuple[int, int]] | None = None,
    n_outputs: int | None = None,
    n_output_timesteps: int | None = None,
    hidden: int | None = None,
    depth: int | None = None,
    heads: int | None = None,
    low_rank_head: int | None = None,
    max_seq_len: int | None = None,
    device: str = "auto",
    precision: str = "auto",
    dtype: torch.dtype | None = None,
    cache_dir: str | os.PathLike | None = None,
) -> TribeModel:
    """Seeded random weights in the release geometry (or a smaller one given by the keyword arguments),
    saved once under the cache root (``cache_dir``; default ``$TRIBEV2_CACHE``) in the hub's form and loaded
    through :meth:`TribeModel.from_pretrained`."""
    experiment = release_experiment_config()
    build_args = experiment.pop("model_build_args")
    brain = experiment["brain_model_config"]
    for key, value in {"hidden": hidden, "low_rank_head": low_rank_head, "max_seq_len": max_seq_len}.items():
        if value is not None:
            brain[key] = value
    for key, value in {"depth": depth, "heads": heads}.items():
        if value is not None:
            brain["encoder"][key] = value
    for key, value in {
        "feature_dims": feature_dims,
        "n_outputs": n_outputs,
        "n_output_timesteps": n_output_timesteps,
    }.items():
        if value is not None:
            build_args[key] = {m: list(v) for m, v in value.items()} if key == "feature_dims" else value
    experiment["data"]["duration_trs"] = build_args["n_output_timesteps"]
    experiment["tribev2_demo"] = True
    return TribeModel.from_pretrained(
        _saved_demo_folder(experiment, build_args, cache_dir), device=device, precision=precision, dtype=dtype
    )


def _saved_demo_folder(experiment: dict, build_args: dict, root) -> Path:
    key = hashlib.sha256(json.dumps([experiment, build_args, DEMO_SEED], sort_keys=True).encode()).hexdigest()
    folder = cache_dir("demo", root) / f"brain-{key[:16]}"
    if (folder / "best.ckpt").is_file():
        return folder
    config = BrainConfig.from_files(experiment, build_args, source="demo config")
    model = _seeded_model(config)
    with atomic_path(folder, "demo weights", cache=True) as tmp:
        tmp.mkdir()
        (tmp / "config.yaml").write_text(yaml.safe_dump(experiment, sort_keys=False))
        state = {f"model.{k}": v.to(torch.float16) for k, v in model.state_dict().items()}
        # torch's own message for a full disk never says so: check the space first (same bytes as before)
        check_free_space(tmp, sum(v.nbytes for v in state.values()) + 2**20, "demo weights")
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
                param.copy_(torch.randn(param.shape, generator=generator) / fan_in**0.5)
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
