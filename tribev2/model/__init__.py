"""The TRIBE v2 brain model: configuration, modules, and the one door in and out (``from_pretrained`` /
``save_pretrained``); ``load_model`` and ``convert`` are the same door under the names of version 0.1."""

from __future__ import annotations

import os
from pathlib import Path

from .config import AVERAGE_SUBJECT, BrainConfig, ConfigError, read_yaml
from .inputs import check_features
from .pretrained import CHECKPOINT_FILE, DEFAULT_SOURCE, CheckpointError, Provenance, locate_files
from .tribe import ForwardStages, TribeModel


def load_model(source: str | os.PathLike = DEFAULT_SOURCE, **options) -> TribeModel:
    """``TribeModel.from_pretrained(source, **options)``: a hub id or a local folder (see there)."""
    return TribeModel.from_pretrained(source, **options)


def convert(src: str | os.PathLike, dst: str | os.PathLike) -> Path:
    """A ``best.ckpt`` folder (or hub repo id) written in our form into ``dst``: ``from_pretrained`` on the
    CPU then ``save_pretrained`` (float32 weights; they load back identical)."""
    if locate_files(src)["format"] != "ckpt":
        raise CheckpointError(f"{src}: already in the converted form (model.safetensors)")
    return load_model(src, device="cpu").save_pretrained(dst)


__all__ = [
    "AVERAGE_SUBJECT",
    "CHECKPOINT_FILE",
    "DEFAULT_SOURCE",
    "BrainConfig",
    "CheckpointError",
    "ConfigError",
    "ForwardStages",
    "Provenance",
    "TribeModel",
    "check_features",
    "convert",
    "load_model",
    "read_yaml",
]
