"""The one door in and out of a brain model: ``TribeModel.from_pretrained`` / ``save_pretrained``.

Two on-disk forms are read, both with the experiment's ``config.yaml`` beside them (the attention head
count cannot be read from the weights):

* the hub's form: ``best.ckpt``, a Lightning checkpoint ``{"state_dict": {"model.<key>": tensor},
  "model_build_args": {...}}``, read with ``torch.load(weights_only=True)``;
* our form, written by ``save_pretrained``: ``model.safetensors`` (keys without the ``model.`` prefix) +
  ``build_args.json`` (which also names the subject rows and the default one).

Loading is strict: every key must match the model built from ``config.yaml`` in name and shape.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import os
import sys
import warnings
from collections.abc import Mapping
from pathlib import Path

import torch
import yaml

from ..cache import atomic_path, file_sha256
from ..checks import is_network_error
from ..devices import precision_dtype, resolve_device
from .config import BrainConfig, read_yaml

CONFIG_FILE = "config.yaml"
CHECKPOINT_FILE = "best.ckpt"
SAFETENSORS_FILE = "model.safetensors"
BUILD_ARGS_FILE = "build_args.json"
MODEL_FILES = (CONFIG_FILE, CHECKPOINT_FILE, SAFETENSORS_FILE, BUILD_ARGS_FILE)  # what a model folder holds
DEFAULT_SOURCE = "facebook/tribev2"
WEIGHTS_LICENSE = (
    "The released TRIBE v2 weights are licensed CC BY-NC 4.0 (non-commercial use only); "
    "see https://huggingface.co/facebook/tribev2."
)

_license_shown = False


class CheckpointError(ValueError):
    """Weights that do not fit the model described by ``config.yaml``."""


@dataclasses.dataclass(frozen=True)
class Provenance:
    """Where a model's weights came from, recorded in every Dataset it predicts."""

    source: str = ""  # hub id or folder, as given
    revision: str = ""  # hub commit
    weights_sha256: str = ""


class Pretrained:
    """``from_pretrained`` / ``save_pretrained`` for a module built as ``cls(config: BrainConfig)``."""

    config: BrainConfig
    provenance: Provenance = Provenance()
    experiment_config: dict | None = None  # the parsed config.yaml (extractor names, layers, timing)

    @property
    def source(self) -> str:
        return self.provenance.source

    @property
    def revision(self) -> str:
        return self.provenance.revision

    @property
    def weights_sha256(self) -> str:
        return self.provenance.weights_sha256

    @classmethod
    def from_pretrained(
        cls,
        source: str | os.PathLike = DEFAULT_SOURCE,
        *,
        revision: str | None = None,
        cache_dir: str | os.PathLike | None = None,
        device: str | torch.device = "auto",
        precision: str = "auto",
        dtype: str | torch.dtype | None = None,
    ):
        """Load a TRIBE v2 brain model.

        ``source`` is a local folder or a Hugging Face repo id (downloaded through ``huggingface_hub``, which
        honours its cache, ``revision`` and ``HF_HUB_OFFLINE``; ``cache_dir`` is the Hugging Face cache).
        ``precision``: ``"exact"`` (float32, the reference's numbers), ``"fast"`` (bfloat16) or ``"auto"`` (fast
        on CUDA, exact elsewhere); ``dtype`` (for experts) casts the floating-point weights to any dtype and must
        agree with an explicit ``precision``. The model is returned in eval mode on ``device``, with its
        :class:`Provenance` and its ``experiment_config``.
        """
        device = resolve_device(device)  # a bad device or dtype fails before any download
        dtype = precision_dtype(precision, device, dtype)
        files = locate_files(source, revision=revision, cache_dir=cache_dir)
        experiment = read_yaml(files["config"])
        state_dict, build_args = _read_weights(files)
        config = BrainConfig.from_files(
            experiment, build_args, source=str(files["config"]), n_subject_rows=_stored_subject_rows(state_dict)
        )
        model = cls(config)
        _load_strict(model, state_dict, files["weights"], dtype)
        model = model.to(device=device, dtype=dtype).eval()
        model.requires_grad_(False)
        model.provenance = Provenance(
            str(source), files.get("revision") or revision or "", file_sha256(files["weights"])
        )
        model.experiment_config = experiment
        if not experiment.get("tribev2_demo"):
            _show_license_once()
        return model

    def save_pretrained(self, folder: str | os.PathLike) -> Path:
        """Write ``model.safetensors`` + ``build_args.json`` + ``config.yaml`` into ``folder`` (replaced
        atomically), which :meth:`from_pretrained` loads to identical weights and subject names. The folder must
        be new, empty or a saved model: one holding other files is a ``ValueError`` (they would be lost)."""
        from safetensors.torch import save_file

        folder = Path(folder)
        others = sorted(p.name for p in folder.iterdir() if p.name not in MODEL_FILES) if folder.is_dir() else []
        if folder.is_file():
            raise ValueError(f"{folder}: is a file; a model is saved as a folder (name a new one)")
        if others:
            raise ValueError(
                f"{folder}: holds {_short_list(others)}: saving replaces the folder as a whole, so name a new or "
                f"empty folder (or one written by save_pretrained)"
            )
        experiment = copy.deepcopy(self.experiment_config) if self.experiment_config else self.config.to_experiment()
        with atomic_path(folder) as tmp:
            tmp.mkdir()
            save_file(
                {k: v.detach().cpu().contiguous() for k, v in self.state_dict().items()}, str(tmp / SAFETENSORS_FILE)
            )
            (tmp / BUILD_ARGS_FILE).write_text(json.dumps(self.config.to_build_args(), indent=2) + "\n")
            (tmp / CONFIG_FILE).write_text(yaml.safe_dump(experiment, sort_keys=False))
        return folder


# -- locating files --------------------------------------------------------------------------------------------
def locate_files(source, *, revision=None, cache_dir=None) -> dict:
    if not str(source).strip():
        raise ValueError("model source is empty: pass a folder, a Hugging Face repo id or 'demo'")
    path = Path(source).expanduser()
    if path.is_dir():
        if revision is not None:
            warnings.warn(
                f"revision={revision!r} names a hub revision; the folder {path} is used as it is", stacklevel=4
            )
        return _files_in_folder(path)
    if path.exists() or str(source).startswith((".", "/", "~")) or str(source).count("/") != 1:
        raise FileNotFoundError(
            f"{source}: not a folder holding {CONFIG_FILE} and weights, nor a Hugging Face "
            f"repo id like '{DEFAULT_SOURCE}'"
        )
    return _files_from_hub(str(source), revision=revision, cache_dir=cache_dir)


def _files_in_folder(folder: Path) -> dict:
    config = folder / CONFIG_FILE
    if not config.is_file():
        raise FileNotFoundError(
            f"{folder}: no {CONFIG_FILE}; it is required beside the weights (the head count cannot be read from them)"
        )
    if (folder / CHECKPOINT_FILE).is_file():
        return {"config": config, "weights": folder / CHECKPOINT_FILE, "format": "ckpt"}
    if (folder / SAFETENSORS_FILE).is_file():
        build_args = folder / BUILD_ARGS_FILE
        if not build_args.is_file():
            raise FileNotFoundError(
                f"{folder}: {SAFETENSORS_FILE} needs {BUILD_ARGS_FILE} beside it "
                f"(feature_dims, n_outputs, n_output_timesteps)"
            )
        return {
            "config": config,
            "weights": folder / SAFETENSORS_FILE,
            "build_args": build_args,
            "format": "safetensors",
        }
    raise FileNotFoundError(
        f"{folder}: no weights; expected {CHECKPOINT_FILE} or {SAFETENSORS_FILE} + {BUILD_ARGS_FILE}"
    )


def _files_from_hub(repo_id: str, *, revision=None, cache_dir=None) -> dict:
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import (
        EntryNotFoundError,
        GatedRepoError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
    )

    def fetch(name: str) -> Path:
        try:
            return Path(hf_hub_download(repo_id, name, revision=revision, cache_dir=cache_dir))
        except (EntryNotFoundError, GatedRepoError, RepositoryNotFoundError):
            raise  # the hub answered, or the file is not cached offline: the caller says what that means
        except Exception as err:  # the network stack's own classes (httpx, ssl, proxies) are not all OSErrors
            if not is_network_error(err):
                raise
            raise FileNotFoundError(
                f"{repo_id}: the Hugging Face Hub cannot be reached ({type(err).__name__}: {err}) "
                f"and {name} is not cached; check the network, or pass a local folder"
            ) from err

    try:
        config = fetch(CONFIG_FILE)
    except LocalEntryNotFoundError as err:  # before EntryNotFoundError: it is a subclass
        raise FileNotFoundError(
            f"{repo_id}: {CONFIG_FILE} is not in the Hugging Face cache and cannot be downloaded "
            f"(offline, or no network). Connect once, or pass a local folder."
        ) from err
    except EntryNotFoundError as err:
        raise FileNotFoundError(f"{repo_id}: the repo has no {CONFIG_FILE}; it is required beside the weights") from err
    except (GatedRepoError, RepositoryNotFoundError) as err:
        raise FileNotFoundError(
            f"{repo_id}: the repo is gated or does not exist for this account. Request access on its Hugging Face "
            f"page, log in with `hf auth login` (or set HF_TOKEN), or pass a local folder."
        ) from err
    files = {"config": config, "revision": _snapshot_revision(config)}
    try:
        files.update(weights=fetch(CHECKPOINT_FILE), format="ckpt")
    except (EntryNotFoundError, LocalEntryNotFoundError) as ckpt_err:
        try:
            files.update(weights=fetch(SAFETENSORS_FILE), build_args=fetch(BUILD_ARGS_FILE), format="safetensors")
        except (EntryNotFoundError, LocalEntryNotFoundError):
            raise FileNotFoundError(
                f"{repo_id}: found neither {CHECKPOINT_FILE} nor {SAFETENSORS_FILE} + "
                f"{BUILD_ARGS_FILE} (in the cache or on the hub)"
            ) from ckpt_err
    return files


def _snapshot_revision(path: Path) -> str:
    parts = path.parts
    if "snapshots" in parts:
        return parts[parts.index("snapshots") + 1]
    return ""


# -- reading and checking weights ------------------------------------------------------------------------------
def _read_weights(files: dict) -> tuple[dict[str, torch.Tensor], Mapping]:
    weights = files["weights"]
    if files["format"] == "ckpt":
        try:
            ckpt = torch.load(weights, map_location="cpu", weights_only=True, mmap=True)
        except Exception as err:
            raise CheckpointError(f"{weights}: cannot be read as a PyTorch checkpoint ({err})") from err
        if not isinstance(ckpt, dict) or "state_dict" not in ckpt:
            raise CheckpointError(f"{weights}: expected a Lightning checkpoint with a 'state_dict' entry")
        if "model_build_args" not in ckpt:
            raise CheckpointError(
                f"{weights}: no 'model_build_args' entry (feature_dims, n_outputs, n_output_timesteps)"
            )
        state_dict = {k.removeprefix("model."): v for k, v in ckpt["state_dict"].items()}
        return state_dict, ckpt["model_build_args"]
    from safetensors.torch import load_file

    try:
        state_dict = load_file(str(weights))
    except Exception as err:
        raise CheckpointError(f"{weights}: cannot be read as safetensors ({err})") from err
    try:
        build_args = json.loads(Path(files["build_args"]).read_text())
    except json.JSONDecodeError as err:
        raise CheckpointError(f"{files['build_args']}: not valid JSON ({err})") from err
    return state_dict, build_args


def _stored_subject_rows(state_dict: Mapping[str, torch.Tensor]) -> int | None:
    weights = state_dict.get("predictor.weights")
    return int(weights.shape[0]) if weights is not None and weights.dim() == 3 else None


def _load_strict(
    model: torch.nn.Module, state_dict: Mapping[str, torch.Tensor], weights: Path, dtype: torch.dtype
) -> None:
    expected = model.state_dict()
    missing = [k for k in expected if k not in state_dict]
    unexpected = [k for k in state_dict if k not in expected]
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"missing key(s) {_short_list(missing)}")
        if unexpected:
            parts.append(f"unexpected key(s) {_short_list(unexpected)}")
        raise CheckpointError(
            f"{weights}: the weights do not match the model described by {CONFIG_FILE}: " + "; ".join(parts)
        )
    for key, target in expected.items():
        found = state_dict[key]
        if tuple(found.shape) != tuple(target.shape):
            raise CheckpointError(
                f"{weights}: key '{key}' has shape {tuple(found.shape)}, expected "
                f"{tuple(target.shape)} from {CONFIG_FILE}"
            )
        if not found.is_floating_point():
            raise CheckpointError(f"{weights}: key '{key}' has dtype {found.dtype}; expected floating point")
        if not bool(torch.isfinite(found).all()):
            bad = int((~torch.isfinite(found)).sum())
            raise CheckpointError(
                f"{weights}: key '{key}' holds {bad} NaN or infinite value(s) of {found.numel()}; "
                f"the checkpoint is damaged (predictions would be NaN)"
            )
    model.load_state_dict({k: v.to(dtype) for k, v in state_dict.items()}, strict=True)


def _short_list(keys: list[str], limit: int = 5) -> str:
    shown = ", ".join(f"'{k}'" for k in keys[:limit])
    return shown + (f" and {len(keys) - limit} more" if len(keys) > limit else "")


def _show_license_once() -> None:
    global _license_shown
    if not _license_shown:
        print(WEIGHTS_LICENSE, file=sys.stderr)
        _license_shown = True
