"""Devices and dtypes by name, shared by the brain model and the feature extractors."""

from __future__ import annotations

import torch

DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``"auto"`` picks CUDA, then Apple MPS, then CPU."""
    if str(device) != "auto":
        return torch.device(device)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def as_dtype(dtype: str | torch.dtype) -> torch.dtype:
    """A ``torch.dtype`` from itself or its name (``"float32"``, ``"float16"``, ``"bfloat16"``)."""
    if isinstance(dtype, torch.dtype):
        return dtype
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {list(DTYPES)} or a torch.dtype, got {dtype!r}")
    return DTYPES[dtype]


# -- precision: one argument for the dtype of every model of a run ----------------------------------------------
PRECISIONS = {"exact": torch.float32, "fast": torch.bfloat16}  # "auto": exact on CPU/MPS, fast on CUDA


def precision_dtype(precision: str = "auto", device: str | torch.device = "auto",
                    dtype: str | torch.dtype | None = None) -> torch.dtype:
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
        raise ValueError(f"precision={precision!r} means {PRECISIONS[precision]} but dtype={wanted} was given: "
                         f"pass one of them")
    return PRECISIONS[precision]


def precision_name(dtype: torch.dtype) -> str:
    """``"exact"`` for float32, ``"fast"`` for bfloat16, else the dtype's name (an expert's choice)."""
    return next((name for name, d in PRECISIONS.items() if d == dtype), str(dtype).removeprefix("torch."))
