"""The one path: named subject rows in one forward, save_pretrained/from_pretrained, overlapping windows, the
window-range entry point, the Dataset schema module and the explicit cache root."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch
import xarray as xr
from geometry import SMALL

import tribev2
from tribev2.dataset import check_dataset
from tribev2.demo import demo_model, synthetic_features
from tribev2.model import BrainConfig, ForwardStages, Provenance, TribeModel
from tribev2.predict import Windows, predict_window_range


@pytest.fixture(scope="module")
def model():
    return demo_model(**SMALL, device="cpu")


def small_config(**changes) -> BrainConfig:
    return BrainConfig(**{**SMALL, "feature_dims": {"text": (2, 8)}, "hidden": 64, **changes})


# -- forward ------------------------------------------------------------------------------------------------------
def test_forward_takes_named_rows_and_returns_every_stage():
    config = small_config(n_subject_rows=3, subject_names=("0", "1", "average"))
    torch.manual_seed(0)
    model = TribeModel(config).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0, 0.2)
    x = {"text": torch.randn(2, 2, 8, 20)}
    with torch.inference_mode():
        both = model(x, subjects=["average", "0"])  # (B, S, V, T_out)
        assert both.shape == (2, 2, 1284, 10)
        torch.testing.assert_close(both[:, 0], model(x)[:, 0])  # the default row is "average"
        torch.testing.assert_close(both[:, 1], model(x, subjects=[0])[:, 0])
        torch.testing.assert_close(model(x, subjects="all"), model(x, subjects=["average", "0", "1"]))
        stages = model(x, subjects=["1"], return_stages=True)
        assert isinstance(stages, ForwardStages) and stages.unpooled.shape == (2, 1, 1284, 20)
        torch.testing.assert_close(stages.output, model(x, subjects=["1"]), atol=1e-5, rtol=1e-5)
        nothing = model({}, n_samples=20)  # every modality absent
        absent = model({"text": torch.zeros(1, 2, 8, 20)})
    assert nothing.shape == (1, 1, 1284, 10) and not torch.allclose(nothing, absent)  # projector bias differs
    with pytest.raises(
        ValueError,
        match=r"subject 'sub-9' is not available: this checkpoint has rows 0\.\.1 and "
        r"'average'",
    ):
        model(x, subjects=["sub-9"])
    with pytest.raises(ValueError, match="pass n_samples= for its response to no input"):
        model({})


# -- save_pretrained / from_pretrained ----------------------------------------------------------------------------
def test_save_pretrained_round_trip_keeps_weights_names_and_default(model, tmp_path):
    config = model.config
    renamed = TribeModel(BrainConfig(**{**config.__dict__, "subject_names": ("sub-01",), "default_subject": "sub-01"}))
    renamed.load_state_dict(model.state_dict())
    renamed.experiment_config = model.experiment_config
    folder = renamed.save_pretrained(tmp_path / "saved")
    assert sorted(p.name for p in folder.iterdir()) == ["build_args.json", "config.yaml", "model.safetensors"]
    assert json.loads((folder / "build_args.json").read_text())["subject_names"] == ["sub-01"]
    back = TribeModel.from_pretrained(folder, device="cpu")
    assert back.config == renamed.config and back.config.default_subject == "sub-01"
    for (key, a), (_, b) in zip(renamed.state_dict().items(), back.state_dict().items()):
        assert torch.equal(a, b), key
    assert isinstance(back.provenance, Provenance) and back.provenance.source == str(folder)
    assert back.provenance.weights_sha256 == back.weights_sha256 and len(back.weights_sha256) == 64
    features = synthetic_features(model, 12)
    ds = tribev2.predict_features(features, model=back, atlas=None)
    assert list(ds.subject.values) == ["sub-01"]
    np.testing.assert_array_equal(
        ds.prediction.values, tribev2.predict_features(features, model=model, atlas=None).prediction.values
    )
    # a model built from a config alone (no config.yaml read) saves and loads too
    fresh = TribeModel(small_config()).eval()
    again = TribeModel.from_pretrained(fresh.save_pretrained(tmp_path / "fresh"), device="cpu")
    assert again.config == fresh.config


# -- windows ------------------------------------------------------------------------------------------------------
def test_windows_take_each_tr_from_the_most_central_window(model):
    plain = Windows.plan(23.4, model.config)
    assert plain.n_windows == 3 and plain.n_time == 24
    window, step = plain.sources()
    np.testing.assert_array_equal(window, np.repeat([0, 1, 2], 10)[:24])
    np.testing.assert_array_equal(step, np.tile(np.arange(10), 3)[:24])
    overlapped = Windows.plan(23.4, model.config, hop_s=5)  # windows at 0, 5, 10, 15 s
    assert overlapped.n_windows == 4
    window, step = overlapped.sources()
    # TR t lies most central in the window starting near t - 5: 0-7 from 0 (ties to the earlier), ...
    assert window.tolist() == [0] * 8 + [1] * 5 + [2] * 5 + [3] * 6
    assert (step == np.arange(24) - 5 * window).all()
    for hop in (0, -5, 11, 2.5, "5"):
        with pytest.raises(ValueError, match="hop_s="):
            Windows.plan(23.4, model.config, hop_s=hop)


def test_hop_of_one_window_gives_todays_numbers_exactly(model):
    features = synthetic_features(model, 34.5)
    plain = tribev2.predict_features(features, model=model, atlas=None)
    same = tribev2.predict_features(features, model=model, atlas=None, hop_s=10)
    xr.testing.assert_identical(plain, same)
    overlapped = tribev2.predict_features(features, model=model, atlas=None, hop_s=5)
    assert overlapped.attrs["hop_s"] == 5.0 and overlapped.sizes == plain.sizes
    inner = overlapped.window.values == 2 * plain.window.values  # TRs taken from the same window as without overlap
    np.testing.assert_array_equal(overlapped.prediction.values[inner], plain.prediction.values[inner])
    assert not np.allclose(overlapped.prediction.values, plain.prediction.values)


def test_window_ranges_stitch_to_predict(model):
    from tribev2.features import feature_dims

    extractors = tribev2.demo.demo_extractors(device="cpu", progress=False)
    brain = demo_model(**{**SMALL, "feature_dims": feature_dims(extractors)}, device="cpu")
    words = pd.DataFrame(
        {"type": "Word", "text": [f"word{i}" for i in range(30)], "start": np.arange(30) * 1.1, "duration": 0.5}
    )
    events = tribev2.events_from(words)
    ds = tribev2.predict(events, model=brain, extractors=extractors, atlas=None, progress=False)
    windows = Windows.plan(ds.attrs["stimulus_duration_s"], brain.config)
    rows = brain.subject_rows(None)
    used = [extractors["text"]]
    parts = [
        predict_window_range(events, model=brain, extractors=used, windows=windows, rows=rows, first=a, stop=b)
        for a, b in ((0, 2), (2, None))
    ]
    np.testing.assert_array_equal(windows.stitch(np.concatenate(parts)), ds.prediction.values)


# -- the schema -----------------------------------------------------------------------------------------------------
def test_schema_check_and_events_accessor(model):
    words = pd.DataFrame({"type": "Word", "text": ["Hello", "there."], "start": [0.5, 1.0], "duration": [0.4, 0.5]})
    ds = tribev2.predict_features(synthetic_features(model, 5), model=model, atlas=None)
    assert check_dataset(ds) is ds
    assert ds.attrs["window_s"] == 10.0 and ds.attrs["hop_s"] == 10.0
    with pytest.raises(ValueError, match="this Dataset holds no events table"):
        ds.tribe.events()
    from tribev2.dataset import attach_events

    with_events = attach_events(ds, tribev2.events_from(words))
    assert with_events.tribe.events()["text"].tolist()[-2:] == ["Hello", "there."]
    assert with_events.tribe.events(time=1.0)["text"].tolist()[-1] == "there."  # "Hello" ends at 0.9 s
    no_mesh = ds.copy()
    del no_mesh.attrs["mesh"]
    with pytest.raises(ValueError, match=r"lacks the attribute\(s\) \['mesh'\]"):
        check_dataset(no_mesh)
    with pytest.raises(ValueError, match="the 'time' coordinate needs units='s'"):
        check_dataset(ds.drop_attrs())
    with pytest.raises(ValueError, match="prediction has dims"):
        check_dataset(ds.transpose("vertex", "time", "subject"))
    with pytest.raises(ValueError, match="no 'prediction' variable"):
        check_dataset(ds.rename(prediction="other"))


def test_cache_dir_is_passed_down_not_set_in_the_environment(tmp_path, monkeypatch):
    import os

    words = pd.DataFrame({"type": "Word", "text": ["Hello", "there."], "start": [0.5, 1.0], "duration": [0.4, 0.5]})
    # torch's first model build in a process may set TORCHINDUCTOR_CACHE_DIR itself: warm it up elsewhere first,
    # so that what is compared below is what tribev2 does
    tribev2.predict(words, model="demo", extractors="demo", cache_dir=tmp_path / "warm-up", atlas=None, progress=False)
    before = dict(os.environ)
    ds = tribev2.predict(
        words,
        model="demo",
        extractors={"text": tribev2.demo.demo_extractors(cache_dir=tmp_path / "root", device="cpu")["text"]},
        cache_dir=tmp_path / "root",
        atlas=None,
        progress=False,
    )
    assert dict(os.environ) == before
    assert (tmp_path / "root" / "demo").is_dir() and (tmp_path / "root" / "features" / "text").is_dir()
    assert ds.sizes["time"] == 2
