"""Why a region responds: :func:`attribute` gives how much each input time step of each modality drives the mean
prediction of named regions, by integrated gradients through the brain model (features fixed: the extractors are
not differentiated); :func:`top_words` turns the text part into the words that drove a region most.

Regions, not vertices: one backward pass per output TR and region (a vertex-level map would need millions).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import torch
import xarray as xr

from .atlas import DEFAULT_ATLAS, Atlas, load_atlas
from .checks import is_whole_number
from .events import events_from
from .events.table import timeline_stop
from .model import TribeModel, check_features
from .predict import Windows, features_by_window
from .regions import match_names
from .sources import resolve
from .surface import mesh_for_vertices

__all__ = ["DEFAULT_STEPS", "attribute", "top_words"]

DEFAULT_STEPS = 16
METHODS = ("integrated_gradients",)


def attribute(
    source,
    *,
    model: TribeModel,
    roi: str | Sequence[str],
    method: str = "integrated_gradients",
    steps: int = DEFAULT_STEPS,
    subject: str | int | None = None,
    extractors=None,
    atlas: str | Atlas = DEFAULT_ATLAS,
    transcript=None,
    language: str = "english",
    device: str = "auto",
    progress: bool = False,
    cache_dir: str | os.PathLike | None = None,
) -> xr.DataArray:
    """Integrated-gradients attribution of regional predictions to the input time steps of each modality.

    ``source``: features ``{modality: (L, D, T)}`` at the model's feature rate, or a stimulus as
    :func:`tribev2.predict` takes it (a file or an events table; ``extractors``, ``transcript``, ``language``
    as there). ``roi``: region names or shell-style patterns of ``atlas`` (one entry -> one region: the mean
    over every vertex it matches). ``subject``: one subject row (default: the model's default subject).

    The baseline is **all-zero features** for every modality present (so a modality's projector bias is part of
    the baseline, not of the attribution); the gradient along the straight path from it to the features is
    integrated with ``steps``-point Gauss-Legendre quadrature (as Captum's default), exact for a path integrand
    that is a polynomial of degree below ``2 * steps``. Attributions are summed over each modality's layer groups
    and feature dimensions.

    Returns ``attribution (modality, time_in, time_out, roi)``: ``time_in`` the input samples (s),
    ``time_out`` the output TRs (s, as a prediction's ``time``; an input sample drives only the TRs of its own
    model window). Coordinates ``output (time_out, roi)`` and ``baseline_output (time_out, roi)`` are the
    regional predictions for the features and for the baseline: completeness says that the attributions summed
    over ``modality`` and ``time_in`` equal ``output - baseline_output`` (``attrs["completeness_error"]``: the
    largest deviation relative to the largest ``|output - baseline_output|``; it shrinks as ``steps`` grows).
    For a stimulus, ``words (time_in)`` holds the words heard at each input sample (see :func:`top_words`).
    """
    if method not in METHODS:
        raise ValueError(f"method={method!r}: expected one of {METHODS}")
    if not is_whole_number(steps):
        raise ValueError(f"steps={steps!r}: expected a positive whole number of integration steps")
    config = model.config
    rows = model.subject_rows(subject)
    if len(rows) != 1:
        raise ValueError(f"subject={subject!r}: attribute one subject row at a time")
    names = [roi] if isinstance(roi, str) else list(roi)
    if not names:
        raise ValueError("roi is empty: name at least one region")
    averaging = _region_averaging(names, atlas, mesh_for_vertices(config.n_outputs), cache_dir)  # (R, V)

    events = None
    if isinstance(source, Mapping):
        n_samples = check_features(source, config, batched=False, finite=True)[1]
        duration, used = n_samples / config.feature_rate_hz, []
    else:
        _, used = resolve(model, extractors, device=device, progress=progress, cache_dir=cache_dir)
        events = events_from(
            source, transcript=transcript, language=language, device=device, progress=progress, cache_dir=cache_dir
        )
        duration = timeline_stop(events)
        n_samples = round(duration * config.feature_rate_hz)
    windows = Windows.plan(duration, config)
    per_window = features_by_window(
        source if events is None else events, config=config, windows=windows, extractors=used
    )
    readout = _RegionReadout(model, rows[0], averaging)
    window_of_tr, step_of_tr = windows.sources()
    modalities = list(per_window[0])
    attribution = np.zeros((len(modalities), n_samples, windows.n_time, len(names)), dtype=np.float32)
    output = np.zeros((windows.n_time, len(names)))
    baseline = np.zeros((windows.n_time, len(names)))
    per_window_samples = config.window_samples
    for w, features in enumerate(per_window):
        trs = np.flatnonzero(window_of_tr == w)
        if not len(trs):
            continue
        parts, out, base = readout.integrated_gradients(features, step_of_tr[trs], steps)  # (M, T, n, R)
        first = round(windows.starts[w] * config.feature_rate_hz)
        kept = min(per_window_samples, n_samples - first)
        attribution[:, first : first + kept, trs] = parts[:, :kept]
        output[trs], baseline[trs] = out, base
    delta = output - baseline
    error = np.abs(attribution.sum(axis=(0, 1)) - delta).max() / max(np.abs(delta).max(), 1e-12)
    coords = {
        "modality": ("modality", np.array(modalities, dtype=object)),
        "time_in": (
            "time_in",
            np.arange(n_samples) / config.feature_rate_hz,
            {"units": "s", "long_name": "input sample"},
        ),
        "time_out": (
            "time_out",
            np.arange(windows.n_time) * config.tr_s,
            {"units": "s", "long_name": f"output TR; row t models BOLD at t + {config.hemodynamic_offset_s:g} s"},
        ),
        "roi": ("roi", np.array(names, dtype=object)),
        "output": (("time_out", "roi"), output.astype(np.float32)),
        "baseline_output": (("time_out", "roi"), baseline.astype(np.float32)),
    }
    if events is not None:
        coords["words"] = ("time_in", _words_per_sample(events, n_samples, config.feature_rate_hz))
    atlas_name = atlas.name if isinstance(atlas, Atlas) else str(atlas)
    attrs = {
        "long_name": "integrated-gradients attribution of the regional mean prediction",
        "method": method,
        "steps": int(steps),
        "baseline": "all-zero features",
        "subject": model.subject_names(rows)[0],
        "atlas": atlas_name,
        "completeness_error": float(error),
        "model": model.source,
    }
    return xr.DataArray(
        attribution, dims=("modality", "time_in", "time_out", "roi"), coords=coords, attrs=attrs, name="attribution"
    )


def top_words(attribution: xr.DataArray, roi: str | None = None, k: int = 10) -> pd.DataFrame:
    """The words that drove a region most: the text attribution of each input sample, summed over the output TRs,
    added up per word heard (``attribution["words"]``, from :func:`attribute` on a stimulus). Returns a table
    ``roi, rank, word, attribution`` (``k`` words per region, largest first; all regions when ``roi`` is None)."""
    if "words" not in attribution.coords:
        raise ValueError(
            "this attribution has no 'words' coordinate: attribute a stimulus (a file or an events table), not features"
        )
    if "text" not in attribution["modality"].values:
        raise ValueError("this attribution has no text modality")
    text = attribution.sel(modality="text").sum("time_out")  # (time_in, roi)
    regions = [roi] if roi is not None else list(attribution["roi"].values)
    tables = []
    for name in regions:
        frame = pd.DataFrame({"word": attribution["words"].values, "attribution": text.sel(roi=name).values})
        frame = frame[frame["word"] != ""]
        frame = frame.assign(word=frame["word"].str.split(" ")).explode("word")
        totals = frame.groupby("word", sort=False)["attribution"].sum().sort_values(ascending=False).head(k)
        tables.append(
            pd.DataFrame(
                {"roi": name, "rank": np.arange(1, len(totals) + 1), "word": totals.index, "attribution": totals.values}
            )
        )
    return pd.concat(tables, ignore_index=True)


class _RegionReadout:
    """The model's regional mean prediction for one subject row, ``(B, T_out, R)``, with the head folded into
    the regions (the mean over a region's vertices of an affine read-out is an affine read-out)."""

    def __init__(self, model: TribeModel, row: int, averaging: np.ndarray):
        self.model = model
        param = next(model.parameters())
        matrix = torch.as_tensor(averaging, dtype=param.dtype, device=param.device)  # (R, V)
        self.weights = model.predictor.weights[row] @ matrix.T  # (head input, R)
        self.bias = model.predictor.bias[row] @ matrix.T  # (R,)

    def __call__(self, features: Mapping[str, torch.Tensor]) -> torch.Tensor:  # -> (B, T_out, R)
        model = self.model
        encoded = model.encode(model.aggregate(features))  # (B, T, H)
        pooled = model.pool(encoded.transpose(1, 2)).transpose(1, 2)  # (B, T_out, H)
        head_in = model.low_rank_head(pooled) if model.low_rank_head is not None else pooled
        return head_in @ self.weights + self.bias

    def integrated_gradients(self, features: Mapping[str, np.ndarray], steps_out: np.ndarray, steps: int):
        """Attributions ``(M, T, len(steps_out), R)`` of the window's output steps ``steps_out``, the output and
        the baseline output there ``(len(steps_out), R)``."""
        param = next(self.model.parameters())
        x = {
            m: torch.as_tensor(np.asarray(f), dtype=param.dtype, device=param.device).flatten(0, -2)
            for m, f in features.items()
        }  # (L·D, T)
        nodes, weights = np.polynomial.legendre.leggauss(steps)  # Gauss-Legendre on [-1, 1] -> [0, 1]
        alphas = torch.as_tensor((nodes + 1) / 2, dtype=param.dtype, device=param.device)
        weights = torch.as_tensor(weights / 2, dtype=param.dtype, device=param.device)
        with torch.enable_grad():
            path = {m: (alphas[:, None, None] * v[None]).requires_grad_(True) for m, v in x.items()}  # (S, L·D, T)
            regional = self(path)[:, steps_out]  # (S, n, R)
            inputs = list(path.values())
            n, n_regions = regional.shape[1:]
            # one cotangent per (output step, region), all pulled back in one batched backward pass
            cotangents = torch.eye(n * n_regions, dtype=regional.dtype, device=regional.device)
            cotangents = cotangents.reshape(n * n_regions, 1, n, n_regions).expand(-1, steps, -1, -1)
            grads = torch.autograd.grad(regional, inputs, grad_outputs=cotangents, is_grads_batched=True)
            # (x - baseline) * the path integral of the gradient, summed over the features: (n·R, T) per modality
            parts = [(v[None] * torch.einsum("s,ksdt->kdt", weights, g)).sum(1) for v, g in zip(x.values(), grads)]
        result = torch.stack(parts).reshape(len(parts), n, n_regions, -1).permute(0, 3, 1, 2)  # (M, T, n, R)
        result = result.detach().float().cpu().numpy()
        with torch.no_grad():
            ends = self({m: torch.stack([torch.zeros_like(v), v]) for m, v in x.items()})[:, steps_out]  # (2, n, R)
        ends = ends.double().cpu().numpy()
        return result, ends[1], ends[0]


def _region_averaging(names: list[str], atlas, mesh: str, cache_dir) -> np.ndarray:
    """``(R, V)``: row ``r`` averages the vertices of every region matching ``names[r]``."""
    if not isinstance(atlas, Atlas):
        atlas = load_atlas(atlas, mesh=mesh, cache_dir=cache_dir)
    labels = np.asarray(atlas.names, dtype=object)[atlas.labels]
    order = list(atlas.names)
    matrix = np.zeros((len(names), len(labels)))
    for r, name in enumerate(names):
        members = np.isin(labels, match_names(order, name, what=f"the {atlas.name} atlas"))
        matrix[r, members] = 1.0 / members.sum()
    return matrix


def _words_per_sample(events: pd.DataFrame, n_samples: int, rate_hz: float) -> np.ndarray:
    """The Word events overlapping each input sample ``[i / rate, (i + 1) / rate)``, space-separated."""
    words = events[events["type"] == "Word"]
    starts, stops = words["start"].to_numpy(float), (words["start"] + words["duration"]).to_numpy(float)
    texts = words["text"].astype(str).to_numpy()
    out = []
    for i in range(n_samples):
        lo, hi = i / rate_hz, (i + 1) / rate_hz
        out.append(" ".join(texts[(starts < hi) & (stops > lo)]))
    return np.array(out, dtype=object)
