"""Which brain model and which feature extractors a call uses, resolved in one place: what the caller gave, else
the environment (``TRIBEV2_WEIGHTS``, ``TRIBEV2_EXTRACTORS``), else the release; ``"demo"`` names the seeded demo
weights and tiny demo extractors (no network)."""

from __future__ import annotations

import os
from typing import Mapping

from .events import ModelUnavailableError
from .features import Extractor, extractors_from_config, feature_dims
from .features.demo import demo_extractors
from .model import DEFAULT_SOURCE, TribeModel
from .model.demo import demo_model

WEIGHTS_VARIABLE = "TRIBEV2_WEIGHTS"
EXTRACTORS_VARIABLE = "TRIBEV2_EXTRACTORS"
DEMO = "demo"


def configured_weights() -> str | None:
    """The weights named by ``$TRIBEV2_WEIGHTS``, if any."""
    return os.environ.get(WEIGHTS_VARIABLE) or None


def weights_source(model: TribeModel | str | os.PathLike | None = None) -> TribeModel | str:
    """``model`` if given, else ``$TRIBEV2_WEIGHTS``, else the released weights (``facebook/tribev2``)."""
    if model is not None:
        return model if isinstance(model, TribeModel) else str(model)
    return configured_weights() or DEFAULT_SOURCE


def is_demo(source) -> bool:
    return isinstance(source, str) and source.strip().lower() == DEMO


def resolve(model=None, extractors=None, *, device: str = "auto", progress: bool = True,
            cache_dir: str | os.PathLike | None = None) -> tuple[TribeModel, list[Extractor]]:
    """``(brain model, [extractors])`` for :func:`tribev2.predict` (see its documentation for the choices;
    ``extractors="demo"`` names the demo extractors, as ``$TRIBEV2_EXTRACTORS=demo`` does).

    ``cache_dir`` is the tribev2 cache root given to the demo builders and the extractors' feature cache."""
    weights = weights_source(model)
    sources = None
    if isinstance(extractors, Mapping) and all(isinstance(v, (str, os.PathLike)) for v in extractors.values()):
        sources, extractors = {m: str(v) for m, v in extractors.items()}, None
    demo_wanted = is_demo(extractors) or is_demo(os.environ.get(EXTRACTORS_VARIABLE, ""))
    if is_demo(extractors):
        extractors = None
    options = dict(device=device, progress=progress, cache_dir=cache_dir)
    if extractors is None and (demo_wanted or is_demo(weights) and sources is None):
        extractors = demo_extractors(**options)
    if is_demo(weights):
        weights = demo_model(feature_dims=feature_dims(extractors) if extractors else None, device=device,
                             cache_dir=cache_dir)
    elif not isinstance(weights, TribeModel):
        try:
            weights = TribeModel.from_pretrained(weights, device=device)
        except FileNotFoundError as err:
            raise ModelUnavailableError(f"brain model: {err}") from None
    if extractors is None:
        extractors = extractors_from_config(weights.experiment_config, sources=sources, **options)
    return weights, list(extractors.values()) if isinstance(extractors, Mapping) else list(extractors)
