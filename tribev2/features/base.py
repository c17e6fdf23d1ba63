"""The extractor interface: configuration, layer groups, per-window extraction, and checks across extractors.

An extractor is configured once (model source, device, dtype, batch size, layer fractions, cache) and then
called per time window, as the reference calls its extractors per segment::

    features = extractor.extract(events, start=0.0, duration=100.0)   # (layer groups, width, 200) at 2 Hz

Layer groups follow the reference (``upstream.md`` §4.2): of the model's hidden states (embedding output
first), ``cache_n_layers`` are kept at ``round(linspace(0, n - 1, cache_n_layers))`` (text and video only),
then the kept stack is cut at ``int(f * (n_kept - 1))`` for each fraction ``f`` of ``layers`` and each piece
is averaged ("group_mean"): fractions (0.5, 0.75, 1.0) give two groups. The time grid lives in
:mod:`~tribev2.features.grid`, the cache in :mod:`~tribev2.features.cache`, model loading in
:mod:`~tribev2.features.sources`.
"""

from __future__ import annotations

import concurrent.futures as concurrent_futures
import contextlib
import contextvars
import math
import os
import threading
import types
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import torch

from ..cache import file_sha256
from ..checks import is_whole_number
from ..devices import precision_dtype, resolve_device, weights_dtype
from ..progress import bar, note, progress_bars
from .cache import FEATURES_VERSION, cache_file, write_cached
from .grid import COLUMNS_READ, check_window, event_rows, n_samples, overlapping, place_on_event_grid
from .sources import load_pretrained, model_identity

_LOADING = threading.RLock()  # held while a model loads (see Extractor.model)


class IncompatibleExtractorError(ValueError):
    """Extractors whose layer groups or widths do not fit the brain model's ``feature_dims``."""


# -- layer groups ----------------------------------------------------------------------------------------------
def cached_layer_indices(n_states: int, cache_n_layers: int | None) -> list[int]:
    """Hidden-state indices the reference keeps: ``round(linspace(0, n - 1, cache_n_layers))`` (or all)."""
    if cache_n_layers is None or cache_n_layers >= n_states:
        return list(range(n_states))
    return [round(x) for x in np.linspace(0, n_states - 1, cache_n_layers)]


def layer_groups(n_kept: int, layers: Sequence[float]) -> list[slice]:
    """Slices of the kept stack averaged into groups ("group_mean"): cuts at ``int(f * (n_kept - 1))``."""
    if len(layers) < 2 or any(not 0 <= f <= 1 for f in layers):
        raise ValueError(f"layers must be at least two fractions in [0, 1], got {list(layers)}")
    cuts = sorted({int(f * (n_kept - 1)) for f in layers})
    cuts[-1] += 1  # the last group includes its end
    if len(cuts) < 2:
        raise ValueError(f"layers {list(layers)} give no layer group over {n_kept} hidden states")
    return [slice(a, b) for a, b in zip(cuts[:-1], cuts[1:])]


# -- the extractor interface -----------------------------------------------------------------------------------
class Extractor:
    """Base class: a Hugging Face model turned into ``(layer groups, width, samples)`` features at 2 Hz.

    Subclasses set ``modality`` (the brain model's name for it), ``event_type`` (the events rows they read),
    ``subselects_layers`` (whether ``cache_n_layers`` applies, as in the reference) and implement
    :meth:`extract`. The model's configuration is read at construction (so ``n_groups`` and ``width`` are
    known at once and a gated or missing model fails early); its weights load on first use.
    """

    modality: ClassVar[str]
    event_type: ClassVar[str]
    subselects_layers: ClassVar[bool] = True
    registry: ClassVar[dict[str, type[Extractor]]] = {}

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "modality" in cls.__dict__:
            Extractor.registry[cls.modality] = cls

    def __init__(
        self,
        source: str | os.PathLike,
        *,
        revision: str | None = None,
        device: str = "auto",
        precision: str = "auto",
        dtype: str | torch.dtype | None = None,
        weights: str | torch.dtype | None = None,
        batch_size: int = 4,
        layers: Sequence[float] = (0.5, 0.75, 1.0),
        cache_n_layers: int | None = 20,
        frequency: float = 2.0,
        cache: bool = True,
        cache_dir: str | os.PathLike | None = None,
        progress: bool | None = None,
    ):
        """``precision``: ``"exact"`` (float32, the reference's numbers), ``"fast"`` (bfloat16 arithmetic) or
        ``"auto"`` (fast on CUDA, exact elsewhere); ``dtype`` for experts (see
        :func:`tribev2.devices.precision_dtype`). Below float32 the model runs under ``torch.autocast``, its
        linear and convolution layers held in the arithmetic's dtype and the rest in float32
        (:func:`tribev2.devices.weights_dtype`; ``weights`` chooses another dtype for experts). ``cache``: keep
        features under ``cache_dir`` (the cache root; default ``$TRIBEV2_CACHE``)."""
        from transformers import AutoConfig

        if not is_whole_number(batch_size):
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        if not (math.isfinite(frequency) and frequency > 0):
            raise ValueError(f"frequency must be a positive rate in Hz, got {frequency!r}")
        if cache_n_layers is not None and not is_whole_number(cache_n_layers):
            raise ValueError(f"cache_n_layers must be a positive integer or None, got {cache_n_layers!r}")
        self.source = str(source)
        self.revision = revision
        self.device = resolve_device(device)
        self.dtype = precision_dtype(precision, self.device, dtype)
        self.batch_size = batch_size
        self.layers = tuple(float(f) for f in layers)
        self.cache_n_layers = cache_n_layers
        self.frequency = float(frequency)
        self.cache = cache
        self.cache_dir = None if cache_dir is None else Path(cache_dir)
        self.progress = progress
        self.config = load_pretrained(AutoConfig, self.source, revision, f"{self.modality} model config")
        self.weights_dtype = weights_dtype(weights)
        n_states = self.config.num_hidden_layers + 1  # the embedding output comes first
        self.layer_indices = cached_layer_indices(n_states, cache_n_layers if self.subselects_layers else None)
        self.groups = layer_groups(len(self.layer_indices), self.layers)
        self._model = None
        self._identity = None

    @property
    def width(self) -> int:
        return int(self.config.hidden_size)

    @property
    def n_groups(self) -> int:
        return len(self.groups)

    @property
    def model(self) -> torch.nn.Module:
        """The network, loaded on first use with its weights in ``weights_dtype`` on ``device``, in eval mode;
        run it inside :meth:`arithmetic`. One model loads at a time in the process: loading sets process-wide
        state (torch's default dtype while transformers builds a model, the progress switches), and the
        extractors of :func:`extract_features` may run on threads of their own."""
        if self._model is None:
            with _LOADING:
                if self._model is None:  # not loaded by another thread meanwhile
                    note(f"loading the {self.modality} model")
                    with progress_bars(self.progress):
                        self._model = self.prepare(self._load_model())
        return self._model

    def prepare(self, model: torch.nn.Module) -> torch.nn.Module:
        """``model``, just loaded (or built) in ``weights_dtype`` (its linear and convolution layers perhaps
        already in ``dtype``: :attr:`loads_as_stored`), made ready to run as this extractor runs it:
        its own code (:meth:`adapt`), its linear and convolution layers rounded where it autocasts (before the
        move: the device never holds them in float32), on ``device``, in eval mode."""
        model = self.adapt(model)
        if self.autocasts:
            cast_matmul_weights(model, self.dtype)
        return model.to(self.device).eval().requires_grad_(False)

    @property
    def autocasts(self) -> bool:
        """Whether the weights are held in another dtype than the arithmetic's (float32 weights, bfloat16 sums):
        then the model runs under ``torch.autocast``, its linear and convolution layers held rounded once to the
        arithmetic's dtype (:func:`cast_matmul_weights`)."""
        return self.weights_dtype != self.dtype

    def arithmetic(self):
        """The context to run the model in: ``torch.autocast`` to ``dtype`` where :attr:`autocasts`, else nothing
        to change."""
        return torch.autocast(self.device.type, dtype=self.dtype) if self.autocasts else contextlib.nullcontext()

    @property
    def loads_as_stored(self) -> bool:
        """Whether the checkpoint's config says its weights are stored in the arithmetic's dtype while they are
        held wider (Llama-3.2-3B's bfloat16 under autocast): then the model loads in that dtype and all but its
        linear and convolution layers are widened (:func:`widen_all_but_matmul`): the same tensors as loading every
        weight widened, then rounding those layers (:meth:`prepare`), at half the host memory."""
        return self.autocasts and self.config.dtype == self.dtype

    def _load_model(self) -> torch.nn.Module:
        from transformers import AutoModel

        # An explicit dtype pins the reference's float32: transformers 5 would otherwise load the weights'
        # own dtype (bfloat16 for Llama-3.2-3B), where transformers 4 defaulted to float32.
        dtype = self.dtype if self.loads_as_stored else self.weights_dtype
        model = load_pretrained(AutoModel, self.source, self.revision, f"{self.modality} model", dtype=dtype)
        return widen_all_but_matmul(model, self.weights_dtype) if self.loads_as_stored else model

    def adapt(self, model: torch.nn.Module) -> torch.nn.Module:
        """``model`` with this extractor's own code in place (attention kernels, compilation); as it is here."""
        return model

    def group_mean(self, stack: torch.Tensor | np.ndarray) -> torch.Tensor | np.ndarray:
        """``(n_kept, ...)`` -> ``(n_groups, ...)``: each group of the kept hidden states averaged."""
        return _stack([stack[g].mean(0) for g in self.groups])

    def fingerprint(self) -> dict:
        """Everything the numbers depend on, for the cache key."""
        if self._identity is None:
            self._identity = model_identity(self.source, self.revision, self.cache_dir)
        return {
            "version": FEATURES_VERSION,
            "extractor": type(self).__name__,
            "model": self._identity,
            "dtype": str(self.dtype),
            **({"weights": str(self.weights_dtype)} if self.autocasts else {}),
            "layers": self.layers,
            "layer_indices": self.layer_indices,
            "frequency": self.frequency,
        }

    def extract(self, events: pd.DataFrame, start: float, duration: float) -> np.ndarray:
        """Features ``(n_groups, width, round(duration * frequency))`` for the window ``[start, start + duration)``."""
        raise NotImplementedError

    @classmethod
    def options_from_config(cls, data: Mapping[str, Any]) -> dict:
        """Constructor options read from a checkpoint's ``config.yaml`` ``data`` section (model name, layers)."""
        section = data.get(f"{cls.modality}_feature") or {}
        options = {"source": section.get("model_name")}
        layers = data.get("layers_to_use") or section.get("layers")
        if layers is not None:
            options["layers"] = tuple(layers) if isinstance(layers, (list, tuple)) else (layers,)
        for key in ("cache_n_layers", "frequency"):
            if section.get(key) is not None:
                options[key] = section[key]
        return options

    def _bar(self, iterable: Iterable | None = None, **kwargs):
        return bar(iterable, enabled=self.progress, **kwargs)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({self.source!r}, device={str(self.device)!r}, dtype={self.dtype}, "
            + (f"weights={self.weights_dtype}, " if self.autocasts else "")
            + f"groups={self.n_groups}, width={self.width})"
        )


def _stack(parts: list):
    return torch.stack(parts) if isinstance(parts[0], torch.Tensor) else np.stack(parts)


class EventExtractor(Extractor):
    """Audio and video: features computed per event (a whole file, or a chunk of it, at ``offset`` for
    ``duration`` seconds) on the event's own 2 Hz grid, cached per event, then cut for each window.

    Subclasses implement :meth:`event_features` and may override :meth:`compute_events` to batch events.
    """

    def event_features(self, filepath: str, offset: float, duration: float) -> np.ndarray:
        """``(n_groups, width, round(duration * frequency))`` for one event."""
        raise NotImplementedError

    def event_samples(self, filepath: str, duration: float) -> int:
        """Samples of an event on its 2 Hz grid; an error for an event shorter than one."""
        n = n_samples(duration, self.frequency)
        if n < 1:
            raise ValueError(
                f"{filepath}: the {self.modality} event lasts {duration:g} s, shorter than one "
                f"{self.frequency:g} Hz feature sample ({0.5 / self.frequency:g} s at least)"
            )
        return n

    def compute_events(self, todo: list[tuple[str, float, float]]) -> Iterator[np.ndarray]:
        """Features of each event in order, yielded one by one (each is cached as soon as it is done)."""
        for event in self._bar(todo, desc=self.modality, unit="event"):
            yield self.event_features(*event)

    def extract(self, events: pd.DataFrame, start: float, duration: float) -> np.ndarray:
        """Each event overlapping ``[start, start + duration)`` contributes its own grid, shifted to the window
        (``place_on_event_grid``); zeros elsewhere."""
        check_window(start, duration)
        rows = overlapping(event_rows(events, self.event_type, ("offset", "filepath")), start, duration)
        out = np.zeros((self.n_groups, self.width, n_samples(duration, self.frequency)), dtype=np.float32)
        if rows.empty:
            return out
        keyed = [(str(row.filepath), float(row.offset), float(row.duration)) for row in rows.itertuples()]
        values = self.features_of_events(keyed)
        for row, value in zip(rows.itertuples(), values):
            place_on_event_grid(out, value, event_start=float(row.start), start=start, frequency=self.frequency)
        return out

    def features_of_events(self, keyed: list[tuple[str, float, float]]) -> list[np.ndarray]:
        """Cached per ``(file content, offset, duration)``; the missing ones computed by :meth:`compute_events`."""
        for path, _, _ in keyed:
            if not Path(path).is_file():
                raise FileNotFoundError(
                    f"{path}: the {self.event_type} event's file does not exist "
                    f"(relative paths are read from {Path.cwd()})"
                )
        if not self.cache:
            return list(self.compute_events(keyed))
        paths = [
            cache_file(
                self.modality,
                {
                    **self.fingerprint(),
                    "file": file_sha256(path, self.cache_dir),
                    "offset": offset,
                    "duration": duration,
                },
                self.cache_dir,
            )
            for path, offset, duration in keyed
        ]
        found = {i: np.load(p) for i, p in enumerate(paths) if p.is_file()}
        todo = [i for i in range(len(keyed)) if i not in found]
        for i, value in zip(todo, self.compute_events([keyed[i] for i in todo])):
            found[i] = write_cached(paths[i], value)
        return [found[i] for i in range(len(keyed))]


# -- several extractors ----------------------------------------------------------------------------------------
def _as_list(extractors: Sequence[Extractor] | Mapping[str, Extractor]) -> list[Extractor]:
    items = list(extractors.values()) if isinstance(extractors, Mapping) else list(extractors)
    for item in items:
        if not isinstance(item, Extractor):
            raise TypeError(f"extractors must be tribev2 feature extractors, got {type(item).__name__}")
    modalities = [e.modality for e in items]
    if len(set(modalities)) != len(modalities):
        raise ValueError(f"one extractor per modality, got {modalities}")
    return items


def feature_dims(extractors: Sequence[Extractor] | Mapping[str, Extractor]) -> dict[str, tuple[int, int]]:
    """``{modality: (layer groups, width)}``: what a brain model must take to use these extractors."""
    return {e.modality: (e.n_groups, e.width) for e in _as_list(extractors)}


def check_compatible(extractors: Sequence[Extractor] | Mapping[str, Extractor], model) -> None:
    """Raise :class:`IncompatibleExtractorError` if an extractor does not fit ``model.config.feature_dims``.

    A modality of the brain model without an extractor is allowed: it contributes nothing, as in the reference.
    """
    expected = model.config.feature_dims
    problems = []
    for name, dims in feature_dims(extractors).items():
        if name not in expected:
            problems.append(f"the brain model has no '{name}' input (it takes {list(expected)})")
        elif tuple(expected[name]) != dims:
            problems.append(
                f"{name}: the extractor gives {dims[0]} layer group(s) x {dims[1]} features, the "
                f"brain model expects {expected[name][0]} x {expected[name][1]} "
                f"(feature_dims['{name}'])"
            )
    if problems:
        raise IncompatibleExtractorError("extractors do not fit the brain model: " + "; ".join(problems))


def extract_features(
    events: pd.DataFrame,
    *,
    extractors: Sequence[Extractor] | Mapping[str, Extractor],
    start: float,
    duration: float,
    concurrent: bool | None = None,
) -> dict[str, np.ndarray]:
    """``{modality: (layer groups, width, round(2 * duration))}`` for one window, as the reference extracts.

    A modality whose event type (Word, Audio, Video) is absent from the whole table is left out of the result
    (the reference then drops that extractor, and the brain model treats the modality as missing); one with
    events elsewhere but none in this window gives zeros.

    ``concurrent``: the extractors run each on a thread of its own (None: when one of them runs on a GPU). Then
    the CPU work of one (audio's resampling and filterbank, text's tokenizing) overlaps another's GPU work
    (video's model): on a GPU, the video takes nine tenths of a film's time. The features are the same; an
    error is raised once every extractor is done, the first extractor's first. On the CPU the extractors run one
    after the other (they would share the same cores).
    """
    check_window(start, duration)
    if not isinstance(events, pd.DataFrame) or "type" not in events.columns:
        found = list(events.columns) if isinstance(events, pd.DataFrame) else type(events).__name__
        raise ValueError(
            f"events must be a pandas DataFrame with a 'type' column (got {found}; the columns read are "
            f"{list(COLUMNS_READ)})"
        )
    present = set(events["type"].unique())
    chosen = [e for e in _as_list(extractors) if e.event_type in present]
    if concurrent is None:
        concurrent = any(e.device.type == "cuda" for e in chosen)
    if not concurrent or len(chosen) < 2:
        return {e.modality: e.extract(events, start, duration) for e in chosen}
    with concurrent_futures.ThreadPoolExecutor(len(chosen), thread_name_prefix="tribev2-extract") as pool:
        # each thread in a copy of this context: the progress switches (context variables) go with it
        running = [pool.submit(contextvars.copy_context().run, e.extract, events, start, duration) for e in chosen]
    return {e.modality: future.result() for e, future in zip(chosen, running)}


MATMUL_LAYERS = (torch.nn.Linear, torch.nn.Conv1d, torch.nn.Conv2d, torch.nn.Conv3d)


def cast_matmul_weights(model: torch.nn.Module, dtype: torch.dtype) -> torch.nn.Module:
    """``model`` with its linear and convolution layers (weights and biases) in ``dtype``, the rest (norms,
    embeddings) as they are. Under ``torch.autocast`` to ``dtype`` this computes exactly what float32 weights
    would, autocast rounding those layers' weights to ``dtype`` at every call (the demo extractors' features are
    the same to the bit, ``tests/test_features_base.py``); rounded once, the casts and their memory are saved."""
    for module in model.modules():
        if isinstance(module, MATMUL_LAYERS):
            module.to(dtype)
    return model


def widen_all_but_matmul(model: torch.nn.Module, dtype: torch.dtype) -> torch.nn.Module:
    """``model`` with the floating parameters and buffers of every module but its linear and convolution layers
    in ``dtype``, those layers as they are: a model loaded in bfloat16 so held as :func:`cast_matmul_weights`
    holds one loaded in float32 (its float32 copy never made)."""
    for module in model.modules():
        if isinstance(module, MATMUL_LAYERS):
            continue
        for p in module.parameters(recurse=False):
            if p.is_floating_point():
                p.data = p.data.to(dtype)
        for name, b in module.named_buffers(recurse=False):
            if b.is_floating_point():
                setattr(module, name, b.to(dtype))
    return model


def _layer_norm_in_input_dtype(self: torch.nn.LayerNorm, x: torch.Tensor) -> torch.Tensor:
    weight, bias = self.weight, self.bias
    if x.device.type == "cuda" and x.dtype != torch.float32:  # its kernel takes the weights in x's dtype only
        held = self.__dict__.get("_held_in")  # ((dtype, device), (weight, bias)), made on the first call
        if held is None or held[0] != (x.dtype, x.device):
            held = self._held_in = ((x.dtype, x.device), tuple(None if p is None else p.to(x) for p in (weight, bias)))
        weight, bias = held[1]
    with torch.autocast(x.device.type, enabled=False):
        return torch.nn.functional.layer_norm(x, self.normalized_shape, weight, bias, self.eps)


def layer_norms_in_input_dtype(model: torch.nn.Module) -> torch.nn.Module:
    """``model`` with its ``LayerNorm`` layers computing in their input's dtype under ``torch.autocast``, which
    on CUDA would run them in float32 (a float32 copy of the input and of the output per norm): the output comes
    out in bfloat16, which the linear layer after it would round it to anyway, the statistics still accumulated
    in float32. CUDA's kernel takes no float32 weights with a bfloat16 input, so there the norm's weights are
    rounded to bfloat16 (a relative change of at most 2^-9); the CPU's takes both, and its autocast already
    keeps layer norms in bfloat16, so nothing changes there."""
    for module in model.modules():
        if isinstance(module, torch.nn.LayerNorm):
            module.forward = types.MethodType(_layer_norm_in_input_dtype, module)
    return model
