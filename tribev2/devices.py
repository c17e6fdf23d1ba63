"""Devices and dtypes by name, shared by the brain model and the feature extractors."""

from __future__ import annotations

import torch

DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``"auto"`` picks CUDA, then Apple MPS, then CPU. A device that this torch cannot use (``"cuda"`` on a
    CPU-only build or machine, ``"cuda:3"`` with two GPUs, a misspelt name) is a ``ValueError`` naming it."""
    if str(device) != "auto":
        return _available(device)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def _available(device) -> torch.device:
    if isinstance(device, str) and device.strip().lower() in DTYPES:
        raise ValueError(
            f"device={device!r} is a dtype, not a device; pass it as dtype= (devices: auto, cpu, cuda, cuda:N, mps)"
        )
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError) as err:
        raise ValueError(f"device={device!r}: not a device name; expected auto, cpu, cuda, cuda:N or mps") from err
    if resolved.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise ValueError(
                f"device={device!r}: CUDA is not available here (torch {torch.__version__}, "
                f"{'a CPU-only build' if torch.version.cuda is None else 'no GPU found'}); use "
                f"device='cpu' or 'auto'"
            )
        if resolved.index is not None and resolved.index >= count:
            raise ValueError(f"device={device!r}: this machine has {count} CUDA device(s) (cuda:0 to cuda:{count - 1})")
    elif resolved.type == "mps":
        if getattr(torch.backends, "mps", None) is None or not torch.backends.mps.is_available():
            raise ValueError(f"device={device!r}: Apple MPS is not available here; use device='cpu' or 'auto'")
    elif resolved.type != "cpu":
        raise ValueError(f"device={device!r}: unsupported device type; expected auto, cpu, cuda, cuda:N or mps")
    return resolved


def as_dtype(dtype: str | torch.dtype) -> torch.dtype:
    """A ``torch.dtype`` from itself or its name (``"float32"``, ``"float16"``, ``"bfloat16"``)."""
    if isinstance(dtype, torch.dtype):
        return dtype
    if not isinstance(dtype, str) or dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {list(DTYPES)} or a torch.dtype, got {dtype!r}")
    return DTYPES[dtype]


# -- precision: one argument for the dtype of every model of a run ----------------------------------------------
PRECISIONS = {"exact": torch.float32, "fast": torch.bfloat16}  # "auto": exact on CPU/MPS, fast on CUDA


def precision_dtype(
    precision: str = "auto", device: str | torch.device = "auto", dtype: str | torch.dtype | None = None
) -> torch.dtype:
    """The dtype of a run: ``"exact"`` float32 everywhere (the reference's numbers), ``"fast"`` bfloat16,
    ``"auto"`` fast on CUDA and exact elsewhere. An expert's ``dtype`` is honoured with ``"auto"``; with
    ``"exact"`` or ``"fast"`` it must agree (a ``ValueError`` otherwise)."""
    if precision not in ("auto", *PRECISIONS):
        raise ValueError(f"precision must be 'auto', 'exact' or 'fast', got {precision!r}")
    wanted = None if dtype is None else as_dtype(dtype)
    if precision == "auto":
        if wanted is not None:
            return wanted
        return PRECISIONS["fast" if resolve_device(device).type == "cuda" else "exact"]
    if wanted is not None and wanted != PRECISIONS[precision]:
        raise ValueError(
            f"precision={precision!r} means {PRECISIONS[precision]} but dtype={wanted} was given: pass one of them"
        )
    return PRECISIONS[precision]


def precision_name(dtype: torch.dtype) -> str:
    """``"exact"`` for float32, ``"fast"`` for bfloat16, else the dtype's name (an expert's choice)."""
    return next((name for name, d in PRECISIONS.items() if d == dtype), str(dtype).removeprefix("torch."))


def weights_dtype(chosen: str | torch.dtype | None = None) -> torch.dtype:
    """The dtype to hold a model's weights in, whatever its arithmetic's: ``chosen`` where an expert gives it;
    float32 otherwise, a lower precision then applying to the arithmetic only (``torch.autocast``, the
    linear and convolution layers rounded once as autocast rounds them: ``features.base.cast_matmul_weights``).
    Nothing the checkpoint stores is rounded (Llama-3.2-3B's bfloat16 weights are bfloat16 numbers), and the
    residual stream, norms and embeddings stay float32. Measured on random full-size models against float32
    (``benchmarks/README.md``): w2v-BERT 2.0 features r 0.9995 under autocast, 0.9989 (GPU) to 0.988 (CPU) with
    every weight rounded; Llama-3.2-3B's word features past the context cap r 0.9995 under autocast, 0.94 with
    its bfloat16 weights and a bfloat16 residual stream."""
    return as_dtype(chosen) if chosen is not None else torch.float32
