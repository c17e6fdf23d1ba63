"""The cortex in the Dataset: roi from predict_features, ds.sel(roi=...), the ds.tribe accessor, evaluate
(checked against scipy on synthetic data) and modality contributions (checked against the model run by hand)."""

from __future__ import annotations

import shutil
import urllib.error
import urllib.request
import warnings
from pathlib import Path

import numpy as np
import pytest
import scipy.spatial.distance
import scipy.stats
import torch
import xarray as xr
from geometry import SMALL

import tribev2
from tribev2 import atlas as atlas_module
from tribev2.atlas import NO_REGION, AtlasUnavailableWarning, RegionIndex
from tribev2.demo import demo_model, synthetic_features

FS5 = {**SMALL, "n_outputs": 2 * 10242, "low_rank_head": 8}  # the small geometry on fsaverage5
HCP = ("lh.HCPMMP1.fsaverage5.annot", "rh.HCPMMP1.fsaverage5.annot")


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    with pytest.MonkeyPatch.context() as patch:  # built in the session's cache, not the user's
        patch.setenv("TRIBEV2_CACHE", str(tmp_path_factory.getbasetemp() / "tribev2-cache"))
        return demo_model(**FS5, device="cpu")


@pytest.fixture
def hcp_cache(shared_dir, tmp_path, monkeypatch):
    """A cache seeded with the HCP-MMP1 files of ../shared (copied), and no network."""
    monkeypatch.setenv("TRIBEV2_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("TRIBEV2_ATLAS_DIR", raising=False)
    offline(monkeypatch)
    folder = tribev2.cache.cache_dir("atlases") / "HCP-MMP1"
    folder.mkdir()
    for file in HCP:
        shutil.copyfile(shared_dir / "atlases" / file, folder / file)
    return folder


def offline(monkeypatch):
    def no_network(url, timeout=None):
        raise urllib.error.URLError("[Errno -2] Name or service not known")

    monkeypatch.setattr(urllib.request, "urlopen", no_network)
    monkeypatch.setattr(atlas_module, "_FAILED_DOWNLOADS", {})


@pytest.fixture
def ds(model, hcp_cache):
    return tribev2.predict_features(synthetic_features(model, 25), model=model)


def v1_map(ds: xr.Dataset) -> xr.Dataset:
    """A synthetic prediction equal to 1 exactly on V1 and 0 elsewhere."""
    values = np.broadcast_to((ds["roi"].values == "V1")[None, :, None], ds.prediction.shape)
    return ds.assign(prediction=ds.prediction.copy(data=values.astype(np.float32)))


# -- roi on the Dataset ---------------------------------------------------------------------------------------------
def test_roi_from_predict_features(ds, shared_dir):
    assert ds.attrs["atlas"] == "HCP-MMP1" and "Glasser" in ds.attrs["atlas_attribution"]
    assert isinstance(ds.xindexes["roi"], RegionIndex)
    v1 = ds.sel(roi="V1")
    import nibabel as nib

    per_hemi = []
    for file in HCP:
        labels, _, names = nib.freesurfer.read_annot(str(shared_dir / "atlases" / file))
        per_hemi.append(int((labels == names.index(b"V1")).sum()))
    assert v1.sizes["vertex"] == sum(per_hemi)
    assert (v1.roi.values == "V1").all()
    assert v1.sel(hemi="left").sizes["vertex"] == per_hemi[0]  # hemi in a second call
    np.testing.assert_array_equal(v1.prediction.values, ds.prediction.values[:, ds.roi.values == "V1"])
    assert ds.sel(roi=["V1", "V2"]).sizes["vertex"] == sum(per_hemi) + int((ds.roi.values == "V2").sum())


def test_v1_map_by_roi_is_one_on_v1_and_zero_elsewhere(ds, tmp_path):
    synthetic = v1_map(ds)
    for data in (synthetic, tribev2.open_dataset(tribev2.save_dataset(synthetic, tmp_path / "v1.nc"))):
        means = data.tribe.by_roi()
        assert means.prediction.dims == ("time", "roi", "subject")
        assert means.sizes["roi"] == 180 and NO_REGION not in means.roi.values
        assert means.roi.values[0] == "V1"  # atlas order
        np.testing.assert_array_equal(means.prediction.sel(roi="V1").values, 1.0)
        np.testing.assert_array_equal(means.prediction.drop_sel(roi="V1").values, 0.0)
        assert int(means.n_vertices.sel(roi="V1")) == data.sel(roi="V1").sizes["vertex"]
        table = data.tribe.top_rois(3)
        assert table.columns.tolist() == ["subject", "rank", "roi", "value", "n_vertices"]
        assert table.iloc[0][["subject", "rank", "roi", "value"]].tolist() == ["average", 1, "V1", 1.0]


def test_by_roi_hemispheres_separate_and_unassigned(ds):
    separate = ds.tribe.by_roi(hemi="separate")
    assert separate.prediction.dims == ("time", "hemi", "roi", "subject")
    left = ds.prediction.values[:, (ds.roi.values == "MST") & (ds.hemi.values == "left")].mean(axis=1)
    np.testing.assert_allclose(separate.prediction.sel(hemi="left", roi="MST").values, left, rtol=1e-6)
    no_right_v1 = ds.isel(vertex=np.flatnonzero((ds.roi.values != "V1") | (ds.hemi.values == "left")))
    v1 = no_right_v1.tribe.by_roi(hemi="separate").sel(roi="V1")
    assert np.isnan(v1.prediction.sel(hemi="right")).all() and np.isfinite(v1.prediction.sel(hemi="left")).all()
    assert v1.n_vertices.values.tolist() == [int(((ds.roi == "V1") & (ds.hemi == "left")).sum()), 0]
    with_wall = ds.prediction.tribe.by_roi(include_unassigned=True)  # a DataArray works too
    assert NO_REGION in with_wall.roi.values and with_wall.sizes["roi"] == 181
    table = ds.tribe.top_rois(4, hemi="separate", absolute=True)
    assert len(table) == 4 and set(table.hemi) <= {"left", "right"}
    assert table.value.abs().is_monotonic_decreasing


def test_accessor_sel_wildcards_and_hemi(ds):
    visual = ds.tribe.sel(roi="V*", hemi="left")
    assert {"V1", "V2", "V3"} <= set(visual.roi.values) and set(visual.hemi.values) == {"left"}
    assert all(n.startswith("V") for n in visual.roi.values)
    assert set(ds.sel(roi="*IPS*").roi.values) == {n for n in np.unique(ds.roi.values) if "IPS" in n}
    with pytest.raises(KeyError, match="'v1' matches no region of this data's roi coordinate; close names: V1"):
        ds.sel(roi="v1")
    with pytest.raises(ValueError, match="hemi='middle'"):
        ds.tribe.sel(hemi="middle")
    with pytest.raises(ValueError, match="k=-1: expected a positive number of regions"):
        ds.tribe.top_rois(-1)


def test_with_atlas_switches_the_roi(ds, shared_dir):
    desikan = ds.tribe.with_atlas("Desikan-Killiany", path=shared_dir / "atlases")
    assert desikan.attrs["atlas"] == "Desikan-Killiany"
    assert "precentral" in desikan.roi.values and "V1" not in desikan.roi.values
    assert desikan.sel(roi="precentral").sizes["vertex"] > 0
    right = ds.drop_vars("roi").sel(hemi="right").tribe.with_atlas()  # a subset: vertex ids on the mesh
    np.testing.assert_array_equal(right.roi.values, ds.roi.values[10242:])
    with pytest.raises(ValueError, match="atlas 'HCP-MMP1' is on fsaverage4 .* this data is on fsaverage5"):
        ds.tribe.with_atlas(tribev2.load_atlas(mesh="fsaverage4"))


def test_cold_cache_offline_warns_once_and_predicts(model, tmp_path, monkeypatch):
    monkeypatch.setenv("TRIBEV2_CACHE", str(tmp_path / "cold"))
    monkeypatch.delenv("TRIBEV2_ATLAS_DIR", raising=False)
    offline(monkeypatch)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ds = tribev2.predict_features(synthetic_features(model, 12), model=model)
    atlas_warnings = [w for w in caught if issubclass(w.category, AtlasUnavailableWarning)]
    assert len(atlas_warnings) == 1
    assert "no 'roi' coordinate" in str(atlas_warnings[0].message)
    assert "figshare" in str(atlas_warnings[0].message)
    assert "roi" not in ds.coords and ds.attrs["atlas"] == "" and ds.sizes["time"] == 12
    with pytest.raises(ValueError, match="no 'roi' coordinate: attach one with .tribe.with_atlas"):
        ds.tribe.by_roi()
    assert "roi" not in tribev2.predict_features(synthetic_features(model, 12), model=model, atlas=None).coords


# -- evaluate ----------------------------------------------------------------------------------------------------------
def with_prediction(ds: xr.Dataset, values: np.ndarray) -> xr.Dataset:
    return ds.assign(prediction=ds.prediction.copy(data=values[:, :, None].astype(np.float32)))


def test_metrics_match_scipy(ds):
    rng = np.random.default_rng(1)
    n_time, n_vertices = ds.sizes["time"], ds.sizes["vertex"]
    prediction = rng.normal(size=(n_time, n_vertices))
    measured = 0.5 * prediction + rng.normal(size=(n_time, n_vertices))
    ds = with_prediction(ds, prediction)
    offset = int(ds.time.attrs["hemodynamic_offset_s"])  # 5 s, TR 1 s: row t is BOLD volume t + 5
    bold = np.concatenate([rng.normal(size=(offset, n_vertices)), measured])

    result = tribev2.evaluate(ds, bold, segment_trs=5, k=2)
    got = ds.prediction.values[:, :, 0].astype(np.float64)
    expected_r = np.array([scipy.stats.pearsonr(got[:, v], measured[:, v])[0] for v in range(0, n_vertices, 97)])
    np.testing.assert_allclose(result.pearson_r.values[::97, 0], expected_r, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(result.mse.values[:, 0], ((got - measured) ** 2).mean(axis=0), rtol=1e-12)
    assert result.mse_mean.item() == pytest.approx(((got - measured) ** 2).mean(), rel=1e-12)
    assert result.pearson_r_mean.item() == pytest.approx(result.pearson_r.values.mean(), rel=1e-12)

    # retrieval: segments of 5 rows, averaged; rank of the true segment by cosine similarity, ties averaged
    segments = np.arange(n_time) // 5
    mean_pred = np.stack([got[segments == s].mean(axis=0) for s in np.unique(segments)])
    mean_true = np.stack([measured[segments == s].mean(axis=0) for s in np.unique(segments)])
    similarity = 1 - scipy.spatial.distance.cdist(mean_pred, mean_true, "cosine")
    ranks = np.array([scipy.stats.rankdata(-row, method="average")[i] - 1 for i, row in enumerate(similarity)])
    assert result.topk_accuracy.item() == pytest.approx((ranks < 2).mean())
    assert result.attrs["n_segments"] == 5 and result.attrs["n_timepoints"] == n_time
    assert isinstance(result.xindexes["roi"], RegionIndex)  # maps keep the roi index: result.sel(roi="V1")

    by_region = tribev2.evaluate(ds, bold, segment_trs=5, by_roi=True)
    v1 = ds.roi.values == "V1"
    assert by_region.pearson_r.sel(roi="V1").item() == pytest.approx(result.pearson_r.values[v1, 0].mean())
    members = np.flatnonzero(v1)
    similarity = 1 - scipy.spatial.distance.cdist(mean_pred[:, members], mean_true[:, members], "cosine")
    ranks = np.array([scipy.stats.rankdata(-row, method="average")[i] - 1 for i, row in enumerate(similarity)])
    assert by_region.topk_accuracy.sel(roi="V1").item() == pytest.approx((ranks < 1).mean())


def test_ground_truth_tr_is_resampled_to_the_prediction_rows(ds):
    """A signal linear in time, sampled every 2 s from the onset: prediction row t must meet its value at
    t + 5 s exactly, so a prediction equal to that value gives r = 1 and MSE = 0."""
    rng = np.random.default_rng(2)
    slope, intercept = rng.normal(size=ds.sizes["vertex"]), rng.normal(size=ds.sizes["vertex"])
    signal = lambda seconds: intercept + slope * seconds[:, None]  # noqa: E731
    bold = signal(np.arange(0, 40, 2.0))  # 20 volumes, TR 2 s, covering 0..38 s
    ds = with_prediction(ds, signal(ds.time.values + 5.0))
    result = tribev2.evaluate(ds, bold, tr_s=2.0, segment_trs=5)
    np.testing.assert_allclose(result.pearson_r.values, 1.0, atol=1e-5)
    np.testing.assert_allclose(result.mse.values, 0.0, atol=1e-9)
    assert result.attrs["n_timepoints"] == ds.sizes["time"]  # rows 0..24 model 5..29 s, inside the scan
    shorter = tribev2.evaluate(ds, bold[:10], tr_s=2.0, segment_trs=5)  # scan ends at 18 s: rows 0..13
    assert shorter.attrs["n_timepoints"] == 14


def test_a_missing_volume_drops_every_row_interpolated_from_it(ds):
    """With a 2-s TR, rows between a missing (all-zero) volume and its neighbours would mix zeros into the
    truth: they are left out, like the rows that fall on it."""
    rng = np.random.default_rng(5)
    slope, intercept = rng.normal(size=ds.sizes["vertex"]), rng.normal(size=ds.sizes["vertex"])
    signal = lambda seconds: intercept + slope * seconds[:, None]  # noqa: E731
    bold = signal(np.arange(0, 40, 2.0))
    bold[6] = 0.0  # the volume at 12 s is missing: rows modelling 11, 12 and 13 s go
    ds = with_prediction(ds, signal(ds.time.values + 5.0))
    result = tribev2.evaluate(ds, bold, tr_s=2.0, segment_trs=5)
    assert result.attrs["n_timepoints"] == ds.sizes["time"] - 3
    np.testing.assert_allclose(result.pearson_r.values, 1.0, atol=1e-5)
    np.testing.assert_allclose(result.mse.values, 0.0, atol=1e-9)


def test_non_finite_ground_truth_vertices_are_left_out_of_the_summaries(ds):
    """NaN at some vertices (outside the field of view) gives NaN maps there, and means and retrieval over
    the others, as if those vertices were not there (NaN scores used to count as retrieved)."""
    rng = np.random.default_rng(6)
    prediction = rng.normal(size=(ds.sizes["time"], ds.sizes["vertex"]))
    bold = rng.normal(size=(ds.sizes["time"] + 5, ds.sizes["vertex"]))
    bold[:, :11] = np.nan
    ds = with_prediction(ds, prediction)
    with pytest.warns(RuntimeWarning, match="Pearson r is undefined at 11 of 20,484"):
        result = tribev2.evaluate(ds, bold, segment_trs=5)
    assert np.isnan(result.pearson_r.values[:11]).all() and np.isnan(result.mse.values[:11]).all()
    rest = tribev2.evaluate(ds.isel(vertex=slice(11, None)), bold, segment_trs=5)  # a subset: bold cut to it
    assert result.mse_mean.item() == pytest.approx(rest.mse_mean.item(), rel=1e-12)
    assert result.pearson_r_mean.item() == pytest.approx(rest.pearson_r_mean.item(), rel=1e-12)
    assert result.topk_accuracy.item() == rest.topk_accuracy.item() < 1.0  # noise: not everything retrieved


def test_a_subset_of_vertices_is_compared_with_the_same_vertices_of_the_truth(ds):
    rng = np.random.default_rng(7)
    ds = with_prediction(ds, rng.normal(size=(ds.sizes["time"], ds.sizes["vertex"])))
    bold = rng.normal(size=(ds.sizes["time"] + 5, ds.sizes["vertex"]))
    whole = tribev2.evaluate(ds, bold, segment_trs=5)
    visual = ds.tribe.sel(roi="V*", hemi="left")
    part = tribev2.evaluate(visual, bold, segment_trs=5)
    np.testing.assert_array_equal(part.vertex.values, visual.vertex.values)
    np.testing.assert_allclose(
        part.pearson_r.values, whole.pearson_r.sel(vertex=visual.vertex.values).values, rtol=1e-12
    )
    with pytest.raises(ValueError, match="k=0: expected a positive number of segments"):
        tribev2.evaluate(ds, bold, k=0)


def test_constant_series_give_nan_with_a_warning(ds):
    rng = np.random.default_rng(3)
    prediction = rng.normal(size=(ds.sizes["time"], ds.sizes["vertex"]))
    prediction[:, :7] = 2.0  # constant over time at seven vertices
    bold = rng.normal(size=(ds.sizes["time"] + 5, ds.sizes["vertex"]))
    with pytest.warns(RuntimeWarning, match="Pearson r is undefined at 7 of 20,484"):
        result = tribev2.evaluate(with_prediction(ds, prediction), bold, segment_trs=5)
    assert np.isnan(result.pearson_r.values[:7]).all() and np.isfinite(result.pearson_r.values[7:]).all()
    assert np.isfinite(result.pearson_r_mean.item())
    varying = rng.normal(size=prediction.shape)
    one_window = with_prediction(ds, varying).isel(time=slice(0, 10))  # segments: the model's windows
    with pytest.warns(RuntimeWarning, match="top-k retrieval needs at least 2 segments"):
        assert np.isnan(tribev2.evaluate(one_window, bold).topk_accuracy.item())


def test_mismatched_ground_truth_is_a_clear_error(ds):
    with pytest.raises(
        ValueError,
        match=r"ground truth has shape \(30, 1000\); expected \(time, vertex\) with "
        r"vertex = 20,484 for fsaverage5",
    ):
        tribev2.evaluate(ds, np.zeros((30, 1000)))
    with pytest.raises(
        ValueError, match="ground truth has 1,284 vertices, the prediction 20,484: they must be on the same mesh"
    ):
        tribev2.evaluate(ds, np.ones((30, 1284)))
    with pytest.raises(ValueError, match=r"ground truth has shape \(20484,\)"):
        tribev2.evaluate(ds, np.zeros(20484))
    with pytest.raises(ValueError, match="only 0 prediction row"):
        tribev2.evaluate(ds, np.ones((3, 20484)))


# -- contributions -----------------------------------------------------------------------------------------------
def run_by_hand(model, features: dict, n_time: int) -> np.ndarray:
    """The model on one window (10 TRs here) given the modalities in ``features`` (others absent): (T, V)."""
    config = model.config
    batch = {n: torch.from_numpy(x[..., : config.window_samples])[None] for n, x in features.items()}
    with torch.inference_mode():  # no features: every modality absent (zeros after projection)
        return model(batch, n_samples=config.window_samples)[0, 0].T.numpy()[:n_time]


def test_contributions_are_leave_one_modality_out_differences(model, hcp_cache):
    features = synthetic_features(model, 10)
    result = tribev2.contributions(features, model=model)
    assert result.dims == ("modality", "time", "vertex", "subject")
    assert result.modality.values.tolist() == ["text", "audio", "video"] and "roi" in result.coords
    full = run_by_hand(model, features, 10)
    for name in features:
        rest = {n: x for n, x in features.items() if n != name}
        expected = full - run_by_hand(model, rest, 10)
        np.testing.assert_allclose(result.sel(modality=name, subject="average").values, expected, atol=2e-5)
    assert result.tribe.by_roi().dims == ("modality", "time", "roi", "subject")

    alone = tribev2.contributions({"audio": features["audio"]}, model=model, atlas=None)
    expected = run_by_hand(model, {"audio": features["audio"]}, 10) - run_by_hand(model, {}, 10)
    np.testing.assert_allclose(alone.sel(modality="audio", subject="average").values, expected, atol=2e-5)


def test_contributions_of_a_stimulus_refuse_duration_s():
    import pandas as pd

    events = pd.DataFrame([{"type": "Word", "start": 0.0, "duration": 0.4, "text": "hello", "context": "hello"}])
    with pytest.raises(ValueError, match="duration_s is for features"):
        tribev2.contributions(events, duration_s=5.0, atlas=None)


def test_contributions_from_a_stimulus_match_those_of_its_features(tmp_path):
    """Events through the demo extractors: the stimulus path (events once, ablations via predict and the feature
    cache) gives what the features path gives on the same features."""
    import pandas as pd
    import soundfile

    from tribev2.demo import demo_extractors
    from tribev2.features import extract_features, feature_dims
    from tribev2.media import read_audio

    clip = Path(__file__).resolve().parents[1] / "data" / "demo_stimulus.mp4"
    pcm, rate = read_audio(clip, dtype="int16")
    wav = tmp_path / "speech.wav"
    soundfile.write(str(wav), pcm, rate, subtype="PCM_16")
    words = ["The", "brain", "hears", "these", "words"]
    events = pd.DataFrame(
        [{"type": "Audio", "start": 0.0, "duration": len(pcm) / rate, "offset": 0.0, "filepath": str(wav)}]
        + [
            {"type": "Word", "start": 1.0 + 0.6 * i, "duration": 0.4, "text": w, "context": " ".join(words[: i + 1])}
            for i, w in enumerate(words)
        ]
    )
    extractors = demo_extractors(device="cpu", progress=False)
    model = demo_model(
        feature_dims=feature_dims(extractors),
        n_outputs=1284,
        hidden=96,
        depth=1,
        heads=2,
        low_rank_head=16,
        device="cpu",
    )
    chosen = {m: extractors[m] for m in ("text", "audio")}

    from_stimulus = tribev2.contributions(events, model=model, extractors=chosen, atlas=None)
    assert from_stimulus.modality.values.tolist() == ["text", "audio"] and "words" in from_stimulus.coords
    features = extract_features(events, extractors=list(chosen.values()), start=0.0, duration=model.config.window_s)
    from_features = tribev2.contributions(
        features, model=model, atlas=None, duration_s=from_stimulus.attrs["stimulus_duration_s"]
    )
    np.testing.assert_allclose(from_stimulus.values, from_features.values, atol=1e-6)

    # one modality, the model named by its folder: the no-input baseline loads the model the Dataset records
    alone = tribev2.contributions(
        events[events.type == "Word"], model=model.source, extractors=[chosen["text"]], atlas=None
    )
    expected = tribev2.contributions(
        {"text": features["text"]}, model=model, atlas=None, duration_s=alone.attrs["stimulus_duration_s"]
    )
    np.testing.assert_allclose(alone.values, expected.values, atol=1e-6)
