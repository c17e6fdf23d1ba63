"""predict_features: windows, stitching, subjects, the Dataset schema, its NetCDF round trip, and bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import xarray as xr
import yaml
from geometry import SMALL

import tribev2
from tribev2.demo import demo_model, release_experiment_config, synthetic_features
from tribev2.model import BrainConfig, TribeModel
from tribev2.model.demo import _seeded_model


@pytest.fixture(scope="module")
def model():
    return demo_model(**SMALL, device="cpu")


def direct_window(model, features, start_sample):
    """The model run by hand on one window, zero-padded past the end: (T_out, V)."""
    n = model.config.window_samples
    batch = {}
    for name, x in features.items():
        window = np.zeros(x.shape[:2] + (n,), dtype=np.float32)
        chunk = x[..., start_sample : start_sample + n]
        window[..., : chunk.shape[-1]] = chunk
        batch[name] = torch.from_numpy(window)[None]
    with torch.inference_mode():
        return model(batch, pool=False, return_stages=True).output[0, 0].T.numpy()


def test_windows_are_stitched_and_rows_past_the_end_dropped(model):
    # 10-TR windows of 20 samples; 23.4 s -> 3 windows, 24 rows (the last TR starts before the end)
    features = synthetic_features(model, 23.4)
    ds = tribev2.predict_features(features, model=model, atlas=None)
    assert dict(ds.sizes) == {"time": 24, "vertex": 1284, "subject": 1}
    np.testing.assert_array_equal(ds.time.values, np.arange(24.0))
    np.testing.assert_array_equal(ds.window.values, np.repeat([0, 1, 2], 10)[:24])
    for w in range(3):
        expected = direct_window(model, features, w * 20)
        got = ds.prediction.isel(subject=0).values[w * 10 : (w + 1) * 10]
        np.testing.assert_allclose(got, expected[: len(got)], atol=1e-5, rtol=0)


def test_duration_fixes_the_number_of_rows(model):
    features = synthetic_features(model, 30)
    assert tribev2.predict_features(features, model=model, atlas=None, duration_s=12).sizes["time"] == 12
    assert tribev2.predict_features(features, model=model, atlas=None, duration_s=12.5).sizes["time"] == 13
    with pytest.warns(UserWarning, match="the last 8 s are predicted from zero features"):
        longer = tribev2.predict_features(features, model=model, atlas=None, duration_s=38)
    assert longer.sizes["time"] == 38  # features end at 30 s: zeros after, as the reference pads
    with pytest.raises(ValueError, match="more than one 10-s window"):
        tribev2.predict_features(features, model=model, atlas=None, duration_s=45 * 50)


def test_schema(model):
    ds = tribev2.predict_features(
        {"text": synthetic_features(model, 10)["text"]},
        model=model,
        atlas=None,
        stimulus={"path": "clip.mp4", "sha256": "ab" * 32},
    )
    assert ds.prediction.dims == ("time", "vertex", "subject")
    assert ds.prediction.dtype == np.float32
    assert ds.time.attrs["units"] == "s" and ds.time.attrs["tr_s"] == 1.0
    assert ds.time.attrs["hemodynamic_offset_s"] == 5.0
    assert list(ds.subject.values) == ["average"]
    assert (ds.hemi.values[:642] == "left").all() and (ds.hemi.values[642:] == "right").all()
    assert ds.sel(hemi="right").sizes["vertex"] == 642
    assert ds.attrs["mesh"] == "fsaverage3" and ds.attrs["modalities"] == "text"
    assert ds.attrs["stimulus_path"] == "clip.mp4" and ds.attrs["stimulus_duration_s"] == 10.0
    assert ds.attrs["weights_sha256"] == model.weights_sha256
    assert ds.attrs["precision"] == "exact"  # a float32 model, features given
    assert all(isinstance(v, (str, int, float)) for v in ds.attrs.values())


def test_missing_modality_differs_from_silent_one(model):
    features = synthetic_features(model, 10)
    without_video = tribev2.predict_features({k: features[k] for k in ("text", "audio")}, model=model, atlas=None)
    silent_video = tribev2.predict_features(
        {**features, "video": np.zeros_like(features["video"])}, model=model, atlas=None
    )
    assert not np.allclose(without_video.prediction, silent_video.prediction)


def test_netcdf_round_trip_keeps_schema_and_indexes(model, tmp_path):
    ds = tribev2.predict_features(synthetic_features(model, 15), model=model, atlas=None)
    path = tribev2.save_dataset(ds, tmp_path / "out" / "pred.nc")
    back = tribev2.open_dataset(path)
    xr.testing.assert_identical(back, ds)
    assert "hemi" in back.xindexes
    assert back.sel(hemi="left").sizes["vertex"] == 642
    assert not list(path.parent.glob(".*tmp"))


def test_all_subject_rows(tmp_path):
    experiment = release_experiment_config()
    build_args = experiment.pop("model_build_args")
    build_args.update(feature_dims={"text": [2, 8]}, n_outputs=1284, n_output_timesteps=10)
    experiment["brain_model_config"].update(hidden=64, low_rank_head=8)
    experiment["brain_model_config"]["encoder"].update(depth=1, heads=2)
    experiment["brain_model_config"]["subject_layers"].update(n_subjects=2)
    experiment["average_subjects"] = False
    config = BrainConfig.from_files(experiment, build_args)
    assert config.n_subject_rows == 3
    folder = tmp_path / "multi"
    folder.mkdir()
    (folder / "config.yaml").write_text(yaml.safe_dump(experiment))
    state = {f"model.{k}": v for k, v in _seeded_model(config).state_dict().items()}
    torch.save({"state_dict": state, "model_build_args": build_args}, folder / "best.ckpt")
    model = tribev2.load_model(folder, device="cpu")

    features = {"text": np.random.default_rng(0).standard_normal((2, 8, 40)).astype(np.float32)}
    ds = tribev2.predict_features(features, model=model, atlas=None, subjects="all")
    assert list(ds.subject.values) == ["average", "0", "1"]
    average = tribev2.predict_features(features, model=model, atlas=None)
    xr.testing.assert_allclose(ds.prediction.sel(subject=["average"]), average.prediction)
    one = tribev2.predict_features(features, model=model, atlas=None, subjects=[1])
    xr.testing.assert_allclose(ds.prediction.sel(subject=["1"]), one.prediction)
    with torch.inference_mode():
        direct = model({"text": torch.from_numpy(features["text"][..., :20])[None]}, subjects=[0])[0, 0].T
    np.testing.assert_allclose(ds.prediction.sel(subject="0").values[:10], direct.numpy(), atol=1e-5)
    with pytest.raises(ValueError, match=r"subject 5 is not available: this checkpoint has rows 0\.\.1"):
        tribev2.predict_features(features, model=model, atlas=None, subjects=[5])


@pytest.mark.parametrize(
    "features, message",
    [
        ({"smell": np.zeros((2, 8, 10))}, r"unknown modality 'smell': this model takes \['text', 'audio', 'video'\]"),
        ({"text": np.zeros((3, 8, 10))}, r"features\['text'\] has shape \(3, 8, 10\); expected \(2, 8, T\)"),
        ({"audio": np.zeros((2, 6))}, r"features\['audio'\] has shape \(2, 6\)"),
        ({"text": np.full((2, 8, 10), np.nan)}, r"features\['text'\] contains 160 NaN or infinite"),
        ({"video": np.full((2, 4, 10), np.inf)}, r"features\['video'\] contains 80 NaN or infinite"),
        (
            {"text": np.zeros((2, 8, 10)), "audio": np.zeros((2, 6, 12))},
            r"modalities have different lengths .*text=10, audio=12",
        ),
        ({"text": np.zeros((2, 8, 0))}, r"no time samples"),
        ({}, r"features must map modality names"),
    ],
)
def test_bad_features(model, features, message):
    with pytest.raises(ValueError, match=message):
        tribev2.predict_features(features, model=model, atlas=None)


def test_flattened_layers_are_accepted(model):
    features = synthetic_features(model, 10)
    flat = {k: v.reshape(-1, v.shape[-1]) for k, v in features.items()}
    xr.testing.assert_identical(
        tribev2.predict_features(flat, model=model, atlas=None),
        tribev2.predict_features(features, model=model, atlas=None),
    )


@pytest.mark.parametrize("duration", [0, -3, float("nan"), "10"])
def test_bad_duration(model, duration):
    with pytest.raises(ValueError, match="duration_s=.*expected a positive number"):
        tribev2.predict_features(synthetic_features(model, 10), model=model, atlas=None, duration_s=duration)


def test_model_call_checks(model):
    with pytest.raises(ValueError, match=r"features\['text'\] has shape \(1, 3, 8, 20\)"):
        model({"text": torch.zeros(1, 3, 8, 20)})
    with pytest.raises(ValueError, match="time embedding holds at most 64"):
        model({"text": torch.zeros(1, 2, 8, 65)})
    with pytest.raises(ValueError, match=r"subject=1 is out of range: this checkpoint has 1 subject row"):
        model({"text": torch.zeros(1, 2, 8, 20)}, subjects=[1])


def test_demo_weights_are_reused_and_labelled(model):
    again = demo_model(**SMALL, device="cpu")
    assert again.weights_sha256 == model.weights_sha256
    assert model.experiment_config["tribev2_demo"] is True
    assert isinstance(model, TribeModel)
