"""Where extractors' models come from: Hugging Face loading with clear errors, a model's identity for the
cache key, and the extractors a checkpoint's ``config.yaml`` names (``extractors_from_config``)."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..checks import is_network_error
from .identity import folder_identity

if TYPE_CHECKING:
    from .base import Extractor


class ExtractorLoadError(OSError):
    """A feature model that cannot be found, downloaded or read."""


def load_pretrained(loader: Callable[..., Any], source: str, revision: str | None, what: str, **kwargs) -> Any:
    """``loader.from_pretrained(source, revision=...)`` with one clear message for gated or missing models
    (the hub's errors, gated repos included, are ``OSError``s; a folder without a usable config gives a
    ``ValueError``)."""
    try:
        return loader.from_pretrained(source, revision=revision, **kwargs)
    except Exception as err:  # OSError, ValueError, or the network stack's own classes (httpx, ssl, proxies)
        if not isinstance(err, (OSError, ValueError)) and not is_network_error(err):
            raise
        path = Path(source).expanduser()
        if path.is_dir():
            hint = (
                "check that this folder holds the model's files (config.json, weights, and its tokenizer or "
                "preprocessor files)"
            )
        elif path.is_absolute() or source.startswith((".", "~")) or source.count("/") > 1:
            hint = "no such folder"
        else:
            hint = (
                f"if the model is gated (meta-llama models are), request access at "
                f"https://huggingface.co/{source} and log in with `hf auth login` (or set HF_TOKEN); offline "
                f"(HF_HUB_OFFLINE=1), download it once while online; or pass a local folder as `source=`"
            )
        first_line = (str(err).strip().splitlines() or [repr(err)])[0]
        raise ExtractorLoadError(
            f"cannot load the {what} '{source}': {hint}.\n  ({type(err).__name__}: {first_line})"
        ) from err


def model_identity(source: str, revision: str | None, cache_root: str | os.PathLike | None = None) -> str:
    """The hub commit of a repo id, or a local folder's :func:`~tribev2.features.identity.folder_identity`."""
    folder = Path(source).expanduser()
    if folder.is_dir():
        return folder_identity(folder, cache_root)
    from transformers.utils import cached_file

    config = Path(cached_file(source, "config.json", revision=revision))
    parts = config.parts
    return parts[parts.index("snapshots") + 1] if "snapshots" in parts else str(revision)


RELEASE_SOURCES = {
    "text": "meta-llama/Llama-3.2-3B",
    "audio": "facebook/w2v-bert-2.0",
    "video": "facebook/vjepa2-vitg-fpc64-256",
}


def extractors_from_config(
    config: Mapping[str, Any] | None = None,
    *,
    sources: Mapping[str, str] | None = None,
    device: str = "auto",
    per_modality: Mapping[str, Mapping[str, Any]] | None = None,
    **options,
) -> dict[str, Extractor]:
    """The extractors a checkpoint was trained with, from its ``config.yaml`` (``model.experiment_config``).

    Modalities come from ``data.features_to_use``; model names, layer fractions, frequency and (video) clip
    duration from ``data.<modality>_feature``; missing values fall back to the release's (``RELEASE_SOURCES``).
    ``sources`` replaces model names (a hub id or a local folder) per modality; ``options`` (``precision``,
    ``dtype``, ``batch_size``, ``cache``, ``progress``, ...) go to every extractor, ``per_modality[m]`` to one
    (``{"text": {"mode": "windowed"}}``).
    """
    data = (config or {}).get("data") or {}
    modalities = list(data.get("features_to_use") or RELEASE_SOURCES)
    unknown = sorted(set(sources or {}) - set(modalities))
    if unknown:
        raise ValueError(f"sources for {unknown}: the config's modalities are {modalities}")
    from .base import Extractor

    extractors = {}
    for modality in modalities:
        if modality not in Extractor.registry:
            raise ValueError(f"no feature extractor for the modality '{modality}' (known: {list(Extractor.registry)})")
        cls = Extractor.registry[modality]
        settings = {k: v for k, v in cls.options_from_config(data).items() if v is not None}
        configured = settings.pop("source", None)
        source = (sources or {}).get(modality) or configured or RELEASE_SOURCES[modality]
        extractors[modality] = cls(
            source, device=device, **{**settings, **options, **(per_modality or {}).get(modality, {})}
        )
    return extractors
