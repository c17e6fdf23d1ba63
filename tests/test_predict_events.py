"""The events table inside a prediction Dataset: which events overlap each TR (against the reference's rows of
../shared/e2e), reading it back, and the NetCDF/Zarr round trip through tribev2.open_dataset."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from safetensors.numpy import load_file

from tribev2 import load_model, open_dataset, predict_features, save_dataset
from tribev2.dataset import attach_events, events_table
from tribev2.events import events_from


@pytest.fixture(scope="module")
def e2e_dataset(shared_dir):
    """The e2e fixture's brain fed the features the reference's model received, with our events attached."""
    folder = shared_dir / "e2e"
    expected = load_file(str(folder / "expected" / "pr29_dedup.safetensors"))
    model = load_model(folder / "brain", device="cpu")
    features = {m: np.concatenate(list(expected[f"features_{m}"]), axis=-1) for m in ("text", "audio", "video")}
    ds = predict_features(features, model=model, duration_s=130.0, atlas=None)
    events = events_from(folder / "stimulus" / "stimulus.mp4", transcript=folder / "stimulus" / "whisperx.json")
    return attach_events(ds, events), events, expected


def test_each_tr_lists_the_events_the_reference_saw(e2e_dataset, shared_dir):
    ds, events, expected = e2e_dataset
    rows = json.loads((shared_dir / "e2e" / "expected" / "pr29_dedup_rows.json").read_text())["rows"]
    assert ds.sizes["time"] == len(rows) == 130
    np.testing.assert_allclose(ds.prediction.isel(subject=0).values, expected["preds"], atol=1e-4)
    for start, _, window, _, types in rows:
        ours = set(events_table(ds, time=start)["type"]) | {"CategoricalEvent"}  # the reference's dummy event
        assert ours == set(types), f"TR {start}"
        assert int(ds.window.sel(time=start)) == window
    # the word straddling the 100-s window cut ("of", 99.884-100.174 s) is heard in both TRs
    assert ds.words.sel(time=99.0).item().endswith("of") and ds.words.sel(time=100.0).item().startswith("of")


def test_events_table_reads_back(e2e_dataset):
    ds, events, _ = e2e_dataset
    table = events_table(ds)
    assert len(table) == ds.sizes["event"] == len(events)
    for column in ("start", "duration", "stop", "sequence_id", "text_char"):
        np.testing.assert_array_equal(table[column], events[column])
    for column in ("type", "text", "context", "sentence"):
        assert table[column].tolist() == events[column].fillna("").tolist()
    words = events[events["type"] == "Word"]
    in_tr_5 = words[(words["start"] < 6) & (words["stop"] > 5)]["text"].tolist()
    assert ds.words.sel(time=5.0).item() == " ".join(in_tr_5)


@pytest.mark.parametrize("suffix", [".nc", ".zarr"])
def test_round_trip_keeps_the_events(e2e_dataset, tmp_path, suffix):
    ds, _, _ = e2e_dataset
    back = open_dataset(save_dataset(ds, tmp_path / f"pred{suffix}"))
    pd.testing.assert_frame_equal(events_table(back), events_table(ds))
    np.testing.assert_array_equal(back.tr_events.values, ds.tr_events.values)
    assert back.words.values.tolist() == ds.words.values.tolist()
    assert back.sel(hemi="left").sizes["vertex"] == 642  # the indexes still work


def test_overlap_rule_on_a_small_table():
    from tribev2.demo import demo_model

    model = demo_model(
        feature_dims={"text": (2, 8)},
        n_outputs=1284,
        hidden=96,
        depth=1,
        heads=2,
        low_rank_head=8,
        n_output_timesteps=4,
        max_seq_len=16,
    )
    ds = predict_features({"text": np.zeros((2, 8, 8), np.float32)}, model=model, duration_s=4.0, atlas=None)
    events = pd.DataFrame(
        {
            "type": ["Word", "Word", "Word", "Word"],
            "text": ["a", "b", "c", "d"],
            "start": [0.2, 0.9, 2.0, 3.0],
            "duration": [0.5, 1.2, 0.0, 1.0],
        }
    )
    ds = attach_events(ds, events_from(events))
    assert ds.words.values.tolist() == ["a b", "b", "b c", "d"]  # ends are open; a 0-s word counts where it starts
    assert events_table(ds, time=3.0)["type"].tolist() == ["Sentence", "Text", "Word"]
    # any time inside a TR gives that TR's events; times outside the TRs are refused with the span
    assert events_table(ds, time=1.5)["text"].tolist() == events_table(ds, time=1.0)["text"].tolist()
    assert events_table(ds, time=3.99)["text"].tolist()[-1] == "d"
    for outside in (-0.5, 4.0):
        with pytest.raises(ValueError, match=r"outside the prediction's TRs \(0 to 4 s\)"):
            events_table(ds, time=outside)
    with pytest.raises(ValueError, match="holds no events table"):
        events_table(ds.drop_vars([c for c in ds.coords if c.startswith("event")]))
