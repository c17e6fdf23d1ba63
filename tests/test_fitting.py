"""fit_subject: a planted head (a random subject row, predicted through the public path) is recovered from noisy
synthetic BOLD at two SNRs; the fitted row is a named subject everywhere (predict, save/load, provenance); bad
inputs fail before any feature is computed."""

from __future__ import annotations

import json

import numpy as np
import pytest
import xarray as xr

import tribev2
from tribev2 import FitReport, fit_subject
from tribev2.demo import demo_model, synthetic_features
from tribev2.fitting import with_subject_row

FS3 = {
    "feature_dims": {"text": (2, 8), "audio": (2, 6), "video": (2, 4)},
    "n_outputs": 2 * 642,
    "n_output_timesteps": 10,
    "hidden": 96,
    "depth": 1,
    "heads": 2,
    "low_rank_head": 128,
    "max_seq_len": 64,
}
RUN_S = 150
OFFSET_S = 5.0


@pytest.fixture(scope="module")
def model(tmp_path_factory):  # built in the session's cache root, not the user's
    return demo_model(**FS3, device="cpu", cache_dir=tmp_path_factory.getbasetemp() / "tribev2-cache")


@pytest.fixture(scope="module")
def planted(model):
    """A model with a known extra row, and the noise-free BOLD it predicts for three runs of features."""
    rng = np.random.default_rng(11)
    rank, n_vertices = FS3["low_rank_head"], FS3["n_outputs"]
    truth = with_subject_row(
        model, "planted", rng.standard_normal((rank, n_vertices)) / rank**0.5, 0.1 * rng.standard_normal(n_vertices)
    )
    runs = [synthetic_features(model, RUN_S, seed=seed) for seed in range(3)]
    signals = [
        tribev2.predict_features(f, model=truth, subjects="planted", atlas=None).prediction.values[:, :, 0]
        for f in runs
    ]
    return truth, runs, signals


def noisy_bold(signals, snr: float, seed: int = 0) -> list[xr.DataArray]:
    """Measured BOLD: prediction row t is the volume at t + 5 s; noise variance = signal variance / snr."""
    rng = np.random.default_rng(seed)
    return [
        xr.DataArray(
            s + rng.standard_normal(s.shape) * s.std(axis=0) / snr**0.5,
            dims=("time", "vertex"),
            coords={"time": np.arange(len(s)) + OFFSET_S},
        )
        for s in signals
    ]


def effective_map(model, name) -> np.ndarray:
    """The row's map from the encoder output (the part of a low-rank row that the data can identify)."""
    weights = model.predictor.weights[model.subject_rows(name)[0]].double().numpy()  # (R, V)
    return model.low_rank_head.weight.double().numpy().T @ weights  # (H, V)


@pytest.mark.slow
@pytest.mark.parametrize("snr, r_fraction, map_r", [(10.0, 0.95, 0.9), (1.0, 0.85, 0.5)])
def test_a_planted_head_is_recovered(model, planted, snr, r_fraction, map_r):
    truth, runs, signals = planted
    fitted, report = fit_subject(model, runs, noisy_bold(signals, snr), name="me")
    ceiling = (snr / (1 + snr)) ** 0.5  # r of the noise-free signal with the noisy BOLD
    assert isinstance(report, FitReport) and report.n_trs == (RUN_S,) * 3
    assert fraction_of(report.held_out_r, ceiling) >= r_fraction, str(report)
    assert float(report.held_out_r.mean()) <= ceiling + 0.02  # held-out, not in-sample
    assert abs(float(report.baseline_r.mean())) < 0.1  # the seeded default row knows nothing of this subject
    assert np.corrcoef(effective_map(fitted, "me").ravel(), effective_map(truth, "planted").ravel())[0, 1] >= map_r
    assert report.alpha.shape == (FS3["n_outputs"],) and set(np.unique(report.alpha)) <= set(report.alphas)
    assert model.config.subject_names == ("average",)  # the model given is left as it was


def fraction_of(r: xr.DataArray, ceiling: float) -> float:
    return float(r.mean()) / ceiling


@pytest.mark.slow
def test_the_encoder_space_fits_the_same_row(model, planted):
    truth, runs, signals = planted
    fitted, report = fit_subject(model, runs, noisy_bold(signals, 10.0), name="me", space="encoder")
    assert fraction_of(report.held_out_r, (10 / 11) ** 0.5) >= 0.95
    assert np.corrcoef(effective_map(fitted, "me").ravel(), effective_map(truth, "planted").ravel())[0, 1] >= 0.9


@pytest.mark.slow
def test_the_fitted_row_is_a_named_subject_everywhere(model, planted, tmp_path):
    _, runs, signals = planted
    fitted, _ = fit_subject(model, runs, noisy_bold(signals, 10.0), name="sub-01", default=True, note="a test subject")
    assert fitted.config.subject_names == ("average", "sub-01") and fitted.config.default_subject == "sub-01"
    record = fitted.config.subject_provenance["sub-01"]
    assert record["note"] == "a test subject" and "3 runs" in record["fitted_from"] and record["fitted_at"]

    loaded = tribev2.load_model(fitted.save_pretrained(tmp_path / "fitted"), device="cpu")
    assert loaded.config.subject_names == ("average", "sub-01") and loaded.config.default_subject == "sub-01"
    assert loaded.config.subject_provenance == fitted.config.subject_provenance
    build_args = json.loads((tmp_path / "fitted" / "build_args.json").read_text())
    assert build_args["subject_provenance"]["sub-01"]["note"] == "a test subject"

    ds = tribev2.predict_features(runs[0], model=loaded, subjects="all", atlas=None)
    assert ds.subject.values.tolist() == ["sub-01", "average"]
    assert json.loads(ds.attrs["subject_provenance"]) == {"sub-01": record}
    assert (
        "subject_provenance"
        not in tribev2.predict_features(runs[0], model=loaded, subjects="average", atlas=None).attrs
    )
    # the fitted row predicts the held-out-quality fit of its own runs
    r = tribev2.evaluate(ds.sel(subject=["sub-01"]), noisy_bold(signals, 10.0)[0])["pearson_r_mean"]
    assert r.item() > 0.9
    path = tribev2.save_dataset(ds, tmp_path / "p.nc")
    assert json.loads(tribev2.open_dataset(path).attrs["subject_provenance"])["sub-01"]["note"] == "a test subject"


def test_bad_inputs_fail_before_any_feature_is_computed(model, planted, monkeypatch):
    _, runs, signals = planted
    bold = noisy_bold(signals, 10.0)

    def no_features(*args, **kwargs):
        raise AssertionError("features computed before the inputs were checked")

    monkeypatch.setattr(tribev2.fitting, "_design", no_features)
    with pytest.raises(ValueError, match="at least 2 runs"):
        fit_subject(model, runs[:1], bold[:1], name="x")
    with pytest.raises(ValueError, match="3 runs, 2 recordings"):
        fit_subject(model, runs, bold[:2], name="x")
    with pytest.raises(ValueError, match="'average': this model already has"):
        fit_subject(model, runs, bold, name="average")
    other_mesh = [b.isel(vertex=slice(0, 2 * 162)) for b in bold]
    with pytest.raises(ValueError, match=r"bold\[0\]: .* vertex = 1,284 for fsaverage3"):
        fit_subject(model, runs, other_mesh, name="x")
    holed = [b.copy() for b in bold]
    holed[1][[3, 7]] = np.nan
    with pytest.raises(ValueError, match=r"bold\[1\] has NaN .* 2 volume\(s\) \(indices \[3, 7\]\)"):
        fit_subject(model, runs, holed, name="x")
    short = [bold[0], bold[1].isel(time=slice(0, 60)), bold[2]]
    with pytest.raises(ValueError, match=r"bold\[1\] covers .* runs\[1\] lasts 150 s .* too short"):
        fit_subject(model, runs, short, name="x")
    swapped = [bold[0], bold[1], xr.concat([bold[2], bold[2].assign_coords(time=bold[2].time + RUN_S)], "time")]
    with pytest.raises(ValueError, match=r"bold\[2\] covers .* much longer than its stimulus"):
        fit_subject(model, runs, swapped, name="x")
    tiny = [{m: x[..., :16] for m, x in run.items()} for run in runs]  # 8 s of stimulus: 8 TRs
    tiny_bold = [b.isel(time=slice(0, 8)) for b in bold]
    with pytest.raises(ValueError, match=r"runs\[0\] brings 8 TRs; .* at least 10"):
        fit_subject(model, tiny, tiny_bold, name="x")
    with pytest.raises(ValueError, match="alphas"):
        fit_subject(model, runs, bold, name="x", alphas=[1.0, -1.0])
