"""Which brain model and which feature extractors a call uses, resolved in one place: what the caller gave, else
the environment (``TRIBEV2_WEIGHTS``, ``TRIBEV2_EXTRACTORS``), else the release; ``"demo"`` names the seeded demo
weights and tiny demo extractors (no network)."""

from __future__ import annotations

import os
from collections.abc import Mapping

from .devices import precision_dtype, precision_name
from .events import ModelUnavailableError
from .features import Extractor, extractors_from_config, feature_dims
from .features.demo import demo_extractors
from .features.text import TEXT_MODES
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


def extractor_sources(extractors=None):
    """The ``extractors`` argument as sources where it names them: ``"demo"`` (given, or ``$TRIBEV2_EXTRACTORS=demo``
    when nothing is given), ``{modality: source}`` (a mapping of folders or hub ids), None (the brain model's own
    extractors); loaded extractors (a sequence or a mapping of them) are returned as a list."""
    if isinstance(extractors, Mapping):
        if all(isinstance(v, (str, os.PathLike)) for v in extractors.values()):
            return {str(m): str(v) for m, v in extractors.items()}
        return list(extractors.values())
    if is_demo(extractors) or extractors is None and is_demo(os.environ.get(EXTRACTORS_VARIABLE, "")):
        return DEMO
    return extractors if extractors is None or isinstance(extractors, str) else list(extractors)


def resolve(
    model=None,
    extractors=None,
    *,
    device: str = "auto",
    progress: bool = True,
    cache_dir: str | os.PathLike | None = None,
    precision: str = "auto",
    text_mode: str | None = None,
) -> tuple[TribeModel, list[Extractor]]:
    """``(brain model, [extractors])`` for :func:`tribev2.predict` (see its documentation for the choices;
    ``extractors="demo"`` names the demo extractors, as ``$TRIBEV2_EXTRACTORS=demo`` does).

    ``cache_dir`` is the tribev2 cache root given to the demo builders and the extractors' feature cache.
    ``precision`` (``"auto"``, ``"exact"``, ``"fast"``) sets the dtype of what is loaded here; a model or extractor
    given already loaded in another dtype than an explicit ``precision`` asks for is an error. ``text_mode``
    (``"exact"``, ``"windowed"``; None: exact) goes to the text extractor made here; one given in another mode
    than an explicit ``text_mode`` is an error."""
    precision_dtype(precision, device)  # a bad name fails before anything loads
    if text_mode is not None and text_mode not in TEXT_MODES:
        raise ValueError(f"text_mode must be one of {TEXT_MODES}, got {text_mode!r}")
    weights = weights_source(model)
    extractors = extractor_sources(extractors)
    sources = extractors if isinstance(extractors, dict) else None
    demo_wanted = is_demo(extractors)
    if sources is not None or demo_wanted:
        extractors = None
    options = dict(
        device=device,
        progress=progress,
        cache_dir=cache_dir,
        precision=precision,
        per_modality={"text": {"mode": text_mode or "exact"}},
    )
    if extractors is None and (demo_wanted or is_demo(weights) and sources is None):
        extractors = demo_extractors(**options)
    if is_demo(weights):
        weights = demo_model(
            feature_dims=feature_dims(extractors) if extractors else None,
            device=device,
            cache_dir=cache_dir,
            precision=precision,
        )
    elif not isinstance(weights, TribeModel):
        try:
            weights = TribeModel.from_pretrained(weights, device=device, precision=precision)
        except FileNotFoundError as err:
            raise ModelUnavailableError(f"brain model: {err}") from None
    if extractors is None:
        extractors = extractors_from_config(weights.experiment_config, sources=sources, **options)
    extractors = list(extractors.values()) if isinstance(extractors, Mapping) else extractors
    off_mode = [e.source for e in extractors if text_mode and getattr(e, "mode", text_mode) != text_mode]
    if off_mode:
        raise ValueError(
            f"text_mode={text_mode!r}, but the text extractor given reads words in another mode ({off_mode[0]})"
        )
    if precision != "auto":
        wanted = precision_dtype(precision)
        loaded = {"brain model": next(weights.parameters()).dtype, **{e.modality: e.dtype for e in extractors}}
        off = {name: str(dtype) for name, dtype in loaded.items() if dtype != wanted}
        if off:
            raise ValueError(
                f"precision={precision!r} asks for {wanted}, but these were given loaded in another dtype: {off}"
            )
    return weights, extractors


def run_precision(model: TribeModel, extractors: list[Extractor]) -> str:
    """What a run computed in: ``"exact"`` (float32 throughout), ``"fast"`` (bfloat16 throughout), else each
    part's dtype (``"mixed: model=float32, text=bfloat16"``)."""
    dtypes = {"model": next(model.parameters()).dtype, **{e.modality: e.dtype for e in extractors}}
    names = {precision_name(d) for d in dtypes.values()}
    if len(names) == 1:
        return names.pop()
    return "mixed: " + ", ".join(f"{part}={precision_name(d)}" for part, d in dtypes.items())
