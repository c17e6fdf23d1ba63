"""Fit a subject row from measured fMRI: :func:`fit_subject` adds one named row to a model's subject layer.

The frozen model reads each run's stimulus (features, an events table or a media/text file) window by window, as
:func:`tribev2.predict` does; its pooled encoder output, one vector per TR, is the design matrix. A ridge
regression from it to every vertex of the subject's BOLD (himalaya's ``solve_ridge_cv_svd``: one penalty per
vertex, chosen by leave-one-run-out cross-validation on Pearson r) gives the new row's weights and bias. Time is
handled as :func:`tribev2.evaluate` handles it: prediction row ``t`` is compared with the BOLD linearly
interpolated at ``t + hemodynamic_offset_s``; all-zero volumes count as missing.

The space the ridge works in (``space=``): ``"low_rank"`` (default), the low-rank head's input (2,048-d in the
release), so the fitted map *is* the new row; or ``"encoder"``, the transformer's pooled output (1,152-d), mapped
to the row exactly through the pseudo-inverse of the low-rank projection (possible when it is at least as wide as
the encoder). ``benchmarks/bench_fit_subject.py`` measures both; see ``benchmarks/README.md``.
"""

from __future__ import annotations

import dataclasses
import datetime
import math
import os
import time
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import torch
import xarray as xr

from ._version import __version__
from .analysis import _aligned_truth, _pearson
from .events import events_from
from .events.table import timeline_stop
from .io import load_ground_truth
from .model import TribeModel, check_features
from .predict import Windows, features_by_window
from .sources import resolve
from .surface import HEMIS, mesh_for_vertices

__all__ = ["DEFAULT_ALPHAS", "FitReport", "fit_subject"]

DEFAULT_ALPHAS = np.logspace(-2, 8, 21)  # ridge penalties tried at every vertex
MIN_RUN_TRS = 10  # fewest TRs (after alignment) a run may bring to the cross-validation
SPACES = ("low_rank", "encoder")


@dataclasses.dataclass(frozen=True)
class FitReport:
    """What :func:`fit_subject` measured. Maps are ``(vertex,)`` DataArrays (``hemi`` coordinate, ``mesh`` attr),
    so ``report.held_out_r.tribe.with_atlas(...)`` and the plotting functions take them."""

    name: str
    # Pearson r on the held-out run at the chosen penalty, mean over the folds; slightly optimistic, as the penalty
    # is chosen on the same folds (no nested CV): on pure noise, 2 runs of 40 TRs give a mean r near 0.09
    held_out_r: xr.DataArray
    baseline_r: xr.DataArray  # Pearson r of an existing row (``baseline_row``) on the same runs (mean over runs)
    alpha: xr.DataArray  # the penalty chosen at each vertex
    baseline_row: str  # the row baseline_r is measured for
    alphas: np.ndarray  # the penalties tried
    n_trs: tuple[int, ...]  # TRs each run brought (after alignment with its BOLD)
    space: str
    seconds: float  # wall time of the fit, features included

    def __str__(self) -> str:
        r, base = float(np.nanmean(self.held_out_r)), float(np.nanmean(self.baseline_r))
        return (
            f"fit_subject {self.name!r}: {len(self.n_trs)} runs, {sum(self.n_trs)} TRs, ridge in the "
            f"{self.space} space; held-out r mean {r:.3f} ({self.baseline_row!r} row {base:.3f}); penalty median "
            f"{float(np.median(self.alpha)):.3g}; {self.seconds:.1f} s"
        )


def fit_subject(
    model: TribeModel,
    runs: Sequence,
    bold: Sequence,
    *,
    name: str,
    default: bool = False,
    alphas: Sequence[float] = DEFAULT_ALPHAS,
    space: str = "low_rank",
    tr_s: float | None = None,
    start_s: float = 0.0,
    extractors=None,
    transcripts: Sequence | None = None,
    language: str = "english",
    note: str = "",
    compare_with: str | int | None = None,
    batch_size: int = 8,
    device: str = "auto",
    progress: bool = False,
    cache_dir: str | os.PathLike | None = None,
) -> tuple[TribeModel, FitReport]:
    """A new model with one more subject row, ``name``, fitted to a subject's BOLD; and a :class:`FitReport`.

    ``runs``: at least two runs, each features ``{modality: (L, D, T)}`` at the model's feature rate, an events
    table, or a stimulus file (as :func:`tribev2.predict` takes it; ``transcripts`` gives one transcript per run
    or None, ``extractors`` as there). ``bold``: one recording per run on the model's mesh, anything
    :func:`tribev2.io.load_ground_truth` reads (an array ``(time, vertex)`` with its first volume at ``start_s``
    and one every ``tr_s`` seconds, a DataArray with times, a GIFTI pair, a NIfTI volume). ``default`` makes the
    new row the model's default subject. ``alphas``: the ridge penalties tried at each vertex (leave-one-run-out
    cross-validation, scored by Pearson r); ``space``: see the module doc. ``note`` is stored in the row's
    provenance (with where it was fitted from and when), which ``save_pretrained`` writes and every Dataset
    predicted for the row carries (``attrs["subject_provenance"]``). ``compare_with``: the existing row whose r
    the report gives as ``baseline_r`` (default: the default subject).

    Checked before any feature is computed: a name already taken, fewer than two runs, recordings on another
    mesh, NaN volumes, runs whose recording is much shorter or longer than their stimulus, runs with fewer than
    10 TRs. The model itself is left as it was.
    """
    started = time.perf_counter()
    _check_arguments(model, runs, bold, name, alphas, space, transcripts)
    compared_row = model.subject_rows(compare_with)[0]  # a bad row name fails now
    truths = [_load_bold(b, i, model, tr_s, start_s) for i, b in enumerate(bold)]
    needs_events = any(not isinstance(r, Mapping) for r in runs)
    used_extractors = (
        resolve(model, extractors, device=device, progress=progress, cache_dir=cache_dir)[1] if needs_events else []
    )
    transcripts = list(transcripts) if transcripts is not None else [None] * len(runs)
    stimuli = [
        run
        if isinstance(run, Mapping)
        else events_from(
            run, transcript=transcripts[i], language=language, device=device, progress=progress, cache_dir=cache_dir
        )
        for i, run in enumerate(runs)
    ]
    plans = [_aligned_run(stimulus, truth, i, model) for i, (stimulus, truth) in enumerate(zip(stimuli, truths))]

    designs = [
        _design(model, stimulus, windows, rows, used_extractors, space, batch_size)
        for stimulus, (windows, rows, _) in zip(stimuli, plans)
    ]
    X = np.concatenate(designs).astype(np.float32)  # (N, F)
    Y = np.concatenate([measured for _, _, measured in plans]).astype(np.float32)  # (N, V)
    groups = np.repeat(np.arange(len(plans)), [len(d) for d in designs])
    coefs, intercept, chosen, held_out_r = _ridge_cv(X, Y, groups, np.asarray(alphas, dtype=np.float64))
    weights = _head_weights(model, coefs, space)  # (R, V)
    baseline_r = _baseline_r(model, designs, [m for _, _, m in plans], space, compared_row)

    n_trs = tuple(len(d) for d in designs)
    seconds = time.perf_counter() - started
    record = _provenance(model, runs, n_trs, space, alphas, chosen, held_out_r, note)
    fitted = with_subject_row(model, name, weights, intercept, default=default, record=record)
    mesh = mesh_for_vertices(model.config.n_outputs)
    compared = model.subject_names([compared_row])[0]
    report = FitReport(
        name=name,
        held_out_r=_vertex_map(held_out_r, mesh, "held-out Pearson r (leave-one-run-out)"),
        baseline_r=_vertex_map(baseline_r, mesh, f"Pearson r of the {compared!r} row"),
        baseline_row=compared,
        alpha=_vertex_map(chosen, mesh, "ridge penalty chosen by cross-validation"),
        alphas=np.asarray(alphas, dtype=np.float64),
        n_trs=n_trs,
        space=space,
        seconds=seconds,
    )
    return fitted, report


def with_subject_row(
    model: TribeModel,
    name: str,
    weights: np.ndarray | torch.Tensor,
    bias: np.ndarray | torch.Tensor,
    *,
    default: bool = False,
    record: Mapping[str, object] | None = None,
) -> TribeModel:
    """A copy of ``model`` with one more subject row: ``weights (head input, vertices)``, ``bias (vertices,)``,
    named ``name`` (made the default subject with ``default``), its provenance ``record`` kept with the config."""
    config = model.config
    if name in config.subject_names:
        raise ValueError(
            f"name={name!r}: this model already has a subject row of that name (rows: {list(config.subject_names)})"
        )
    provenance = dict(config.subject_provenance)
    if record is not None:
        provenance[name] = dict(record)
    new_config = dataclasses.replace(
        config,
        n_subject_rows=config.n_subject_rows + 1,
        subject_names=config.subject_names + (name,),
        default_subject=name if default else config.default_subject,
        subject_provenance=provenance,
    )
    param = next(model.parameters())
    state = model.state_dict()
    row_weights = torch.as_tensor(np.asarray(weights), dtype=param.dtype, device=param.device)
    row_bias = torch.as_tensor(np.asarray(bias), dtype=param.dtype, device=param.device)
    state["predictor.weights"] = torch.cat([state["predictor.weights"], row_weights[None]])  # (rows + 1, R, V)
    state["predictor.bias"] = torch.cat([state["predictor.bias"], row_bias[None]])  # (rows + 1, V)
    fitted = TribeModel(new_config).to(device=param.device, dtype=param.dtype)
    fitted.load_state_dict(state, strict=True)
    fitted.eval().requires_grad_(False)
    fitted.provenance = model.provenance
    fitted.experiment_config = model.experiment_config
    return fitted


# -- checks, before any slow work ----------------------------------------------------------------------------------
def _check_arguments(model, runs, bold, name, alphas, space, transcripts) -> None:
    if not isinstance(model, TribeModel):
        raise TypeError(f"model: expected a loaded TribeModel (tribev2.load_model(...)), got {type(model).__name__}")
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"name={name!r}: expected a non-empty string naming the new subject row")
    if name in model.config.subject_names or name == "all":
        raise ValueError(
            f"name={name!r}: this model already has a subject row of that name "
            f"(rows: {list(model.config.subject_names)}); choose another"
        )
    if isinstance(runs, (str, os.PathLike, Mapping, pd.DataFrame)) or isinstance(bold, (str, os.PathLike)):
        raise ValueError("runs and bold: expected a list of runs and a list of recordings, one per run")
    runs, bold = list(runs), list(bold)
    if len(runs) != len(bold):
        raise ValueError(
            f"runs and bold differ in length ({len(runs)} runs, {len(bold)} recordings): "
            f"give one recording per run, in the same order"
        )
    if len(runs) < 2:
        raise ValueError(
            f"fit_subject needs at least 2 runs for its leave-one-run-out cross-validation, got {len(runs)}"
        )
    if transcripts is not None and len(list(transcripts)) != len(runs):
        raise ValueError(f"transcripts: expected one per run ({len(runs)}), got {len(list(transcripts))}")
    values = np.asarray(alphas, dtype=np.float64)
    if values.ndim != 1 or not len(values) or not (np.isfinite(values) & (values > 0)).all():
        raise ValueError(f"alphas={alphas!r}: expected a list of positive, finite ridge penalties")
    if space not in SPACES:
        raise ValueError(f"space={space!r}: expected one of {SPACES}")
    low_rank = model.low_rank_head
    if space == "encoder" and low_rank is not None and low_rank.out_features < low_rank.in_features:
        raise ValueError(
            f"space='encoder' needs a low-rank head at least as wide as the encoder "
            f"({low_rank.out_features} < {low_rank.in_features}); use space='low_rank'"
        )


def _load_bold(source, index: int, model: TribeModel, tr_s, start_s) -> xr.DataArray:
    mesh = mesh_for_vertices(model.config.n_outputs)
    try:
        truth = load_ground_truth(source, mesh=mesh, tr_s=tr_s, start_s=start_s)
    except (ValueError, FileNotFoundError) as err:
        raise type(err)(f"bold[{index}]: {err}") from None
    if truth.sizes["vertex"] != model.config.n_outputs:
        raise ValueError(
            f"bold[{index}] has {truth.sizes['vertex']:,} vertices; the model predicts "
            f"{model.config.n_outputs:,} ({mesh}): resample it to {mesh} (tribev2.io.resample)"
        )
    values = truth.values
    bad = np.flatnonzero(~np.isfinite(values).all(axis=1))
    if len(bad):
        raise ValueError(
            f"bold[{index}] has NaN or infinite values in {len(bad)} volume(s) (indices "
            f"{bad[:10].tolist()}{' ...' if len(bad) > 10 else ''}): fill them, or set a missing "
            f"volume to 0 at every vertex to leave it out (as evaluate does)"
        )
    return truth


def _aligned_run(stimulus, truth: xr.DataArray, index: int, model: TribeModel):
    """``(windows, rows, measured (n, V))`` of one run, after checking its recording against its stimulus."""
    config = model.config
    if isinstance(stimulus, Mapping):
        try:
            duration = check_features(stimulus, config, batched=False, finite=True)[1] / config.feature_rate_hz
        except ValueError as err:
            raise ValueError(f"runs[{index}]: {err}") from None
    else:
        duration = timeline_stop(stimulus)
    if not duration > 0:
        raise ValueError(f"runs[{index}]: the stimulus is empty")
    windows = Windows.plan(duration, config)
    offset = config.hemodynamic_offset_s
    rows, measured = _aligned_truth(np.arange(windows.n_time) * config.tr_s + offset, truth)
    times = truth["time"].values
    recorded = f"bold[{index}] covers {times[0]:g}..{times[-1]:g} s"
    expected = f"runs[{index}] lasts {duration:g} s (BOLD wanted at {offset:g}..{duration + offset:g} s)"
    if len(rows) < 0.9 * windows.n_time:
        raise ValueError(
            f"{recorded} but {expected}: the recording is too short for its stimulus (is it the "
            f"right run? are tr_s/start_s right?)"
        )
    if times[-1] > duration + offset + max(20.0, 0.1 * duration):
        raise ValueError(
            f"{recorded} but {expected}: the recording is much longer than its stimulus (is it the "
            f"right run? are tr_s/start_s right?)"
        )
    if len(rows) < MIN_RUN_TRS:
        raise ValueError(
            f"runs[{index}] brings {len(rows)} TRs; the leave-one-run-out cross-validation needs at "
            f"least {MIN_RUN_TRS} per run"
        )
    return windows, rows, measured


# -- the design matrix: the frozen model's pooled encoder output per TR ----------------------------------------------
def _design(
    model: TribeModel, stimulus, windows: Windows, rows: np.ndarray, extractors, space: str, batch_size: int
) -> np.ndarray:
    per_window = features_by_window(stimulus, config=model.config, windows=windows, extractors=extractors)
    param = next(model.parameters())
    outputs = []
    with torch.inference_mode():
        for first in range(0, len(per_window), batch_size):
            batch = per_window[first : first + batch_size]
            stacked = {name: torch.from_numpy(np.stack([w[name] for w in batch])).to(param.device) for name in batch[0]}
            encoded = model.encode(model.aggregate(stacked))  # (B, T, H)
            pooled = model.pool(encoded.transpose(1, 2)).transpose(1, 2)  # (B, T_out, H)
            if space == "low_rank" and model.low_rank_head is not None:
                pooled = model.low_rank_head(pooled)  # (B, T_out, R)
            outputs.append(pooled.float().cpu().numpy())
    return windows.stitch(np.concatenate(outputs))[rows]  # (n, F)


def _ridge_cv(X: np.ndarray, Y: np.ndarray, groups: np.ndarray, alphas: np.ndarray):
    """Per-vertex ridge (himalaya), penalty chosen by leave-one-run-out CV on Pearson r: coefs (F, V),
    intercept (V,), chosen penalty (V,), held-out r at it (V,; NaN where the BOLD is constant)."""
    from himalaya.ridge import solve_ridge_cv_svd
    from himalaya.scoring import correlation_score

    folds = [(np.flatnonzero(groups != g), np.flatnonzero(groups == g)) for g in np.unique(groups)]
    chosen, coefs, scores, intercept = solve_ridge_cv_svd(
        X, Y, alphas=alphas.astype(X.dtype), fit_intercept=True, score_func=correlation_score, cv=folds, warn=False
    )
    constant = ~(Y.std(axis=0) > 0)
    r = np.where(constant, np.nan, np.asarray(scores, dtype=np.float64).reshape(-1))
    grid = np.asarray(alphas, dtype=np.float64)  # the solver hands the penalties back in float32: name them exactly
    chosen = grid[np.abs(np.log(np.asarray(chosen, dtype=np.float64))[:, None] - np.log(grid)).argmin(axis=1)]
    return np.asarray(coefs), np.asarray(intercept).reshape(-1), chosen, r


def _head_weights(model: TribeModel, coefs: np.ndarray, space: str) -> np.ndarray:
    """The fitted map as the subject layer's weights ``(head input, V)``."""
    if space == "low_rank" or model.low_rank_head is None:
        return coefs
    projection = model.low_rank_head.weight.detach().double().cpu().numpy()  # (R, H): z = x @ A.T
    return np.linalg.pinv(projection.T) @ coefs  # A.T @ W = coefs, exactly when R >= H and A has full rank


def _baseline_r(
    model: TribeModel, designs: list[np.ndarray], measured: list[np.ndarray], space: str, row: int
) -> np.ndarray:
    """Pearson r per vertex of subject row ``row``, mean over the runs."""
    weights = model.predictor.weights[row].detach().double().cpu().numpy()  # (R, V)
    bias = model.predictor.bias[row].detach().double().cpu().numpy()
    if space == "encoder" and model.low_rank_head is not None:
        weights = model.low_rank_head.weight.detach().double().cpu().numpy().T @ weights  # (H, V)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # constant vertices: NaN
        per_run = [_pearson(d.astype(np.float64) @ weights + bias, m) for d, m in zip(designs, measured)]
        return np.nanmean(np.stack(per_run), axis=0)


def _provenance(model, runs, n_trs, space, alphas, chosen, held_out_r, note) -> dict:
    import himalaya

    def describe(run) -> str:
        if isinstance(run, Mapping):
            return "features"
        if isinstance(run, pd.DataFrame):
            return "events table"
        return os.path.basename(str(run))

    alphas = np.asarray(alphas, dtype=np.float64)
    record = {
        "fitted_from": f"{len(runs)} runs ({', '.join(describe(r) for r in runs)}), {sum(n_trs)} TRs",
        "fitted_at": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "method": f"tribev2 {__version__} fit_subject: ridge (himalaya {himalaya.__version__}) from the frozen "
        f"model's pooled {space} output, penalty per vertex by leave-one-run-out CV on Pearson r",
        "base_model": model.source,
        "base_weights_sha256": model.weights_sha256,
        "penalties": f"{len(alphas)} from {alphas.min():.3g} to {alphas.max():.3g}; chosen: median "
        f"{float(np.median(chosen)):.3g}, range {float(chosen.min()):.3g}..{float(chosen.max()):.3g}",
        "held_out_r_mean": round(float(np.nanmean(held_out_r)), 4) if np.isfinite(held_out_r).any() else math.nan,
    }
    if note:
        record["note"] = note
    return record


def _vertex_map(values: np.ndarray, mesh: str, long_name: str) -> xr.DataArray:
    half = len(values) // 2
    return xr.DataArray(
        np.asarray(values, dtype=np.float64),
        dims=("vertex",),
        attrs={"long_name": long_name, "mesh": mesh},
        coords={
            "vertex": np.arange(len(values)),
            "hemi": ("vertex", np.array([HEMIS[0]] * half + [HEMIS[1]] * half, dtype=object)),
        },
    )
