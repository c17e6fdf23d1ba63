"""progress=False draws no bar at all (ours, transformers' "Loading weights"/"Writing model shards",
huggingface_hub's) and puts the libraries' switches back; progress=True shows one bar per stage."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from huggingface_hub import utils as hub
from transformers.utils import logging as transformers_logging

import tribev2
from tribev2.progress import bar, progress_bars, stage_bar

BRAIN = {
    "n_outputs": 2 * 642,
    "hidden": 96,
    "depth": 1,
    "heads": 2,
    "low_rank_head": 16,
    "n_output_timesteps": 10,
    "max_seq_len": 64,
    "device": "cpu",
}  # 10-s windows
WORDS = pd.DataFrame(
    {"type": "Word", "text": [f"word{i}" for i in range(30)], "start": np.arange(30) * 1.1, "duration": 0.5}
)  # 33 s: four 10-s windows


def switches():
    return transformers_logging.is_progress_bar_enabled(), hub.are_progress_bars_disabled()


@pytest.mark.parametrize("transformers_on, hub_off", [(True, False), (False, False), (True, True), (False, True)])
def test_switches_are_put_back(transformers_on, hub_off):
    (transformers_logging.enable_progress_bar if transformers_on else transformers_logging.disable_progress_bar)()
    (hub.disable_progress_bars if hub_off else hub.enable_progress_bars)()
    try:
        with pytest.raises(RuntimeError), progress_bars(False):
            assert switches() == (False, True)
            assert bar(range(3), enabled=True).disable  # ours too
            raise RuntimeError("an error inside the call")
        assert switches() == (transformers_on, hub_off)
        with progress_bars(True):
            assert switches() == (transformers_on, hub_off)
    finally:
        transformers_logging.enable_progress_bar()
        hub.enable_progress_bars()


def test_a_stage_hides_the_bars_inside_it():
    seen = [bar(range(2), enabled=True).disable for _ in stage_bar([1, 2], enabled=True, desc="outer")]
    assert seen == [True, True] and not bar(range(2), enabled=True).disable
    # a stage of one item draws no bar of its own: the bars inside it show
    assert [bar(range(2), enabled=True).disable for _ in stage_bar([1], enabled=True, desc="one")] == [False]
    assert [bar(range(2), enabled=True).disable for _ in stage_bar([1, 2], enabled=False, desc="off")] == [True] * 2
    assert switches() == (True, False)


def test_predict_with_progress_false_prints_no_bar(tmp_path, capfd):
    from tribev2.demo import demo_extractors, demo_model
    from tribev2.features import feature_dims

    extractors = demo_extractors(device="cpu", progress=False)  # loaded in the call
    brain = demo_model(**BRAIN, feature_dims=feature_dims(extractors))
    events = tribev2.events_from(WORDS)
    capfd.readouterr()
    quiet = tribev2.predict(
        events,
        model=brain,
        extractors=list(extractors.values()),
        atlas=None,
        cache_dir=tmp_path / "one",
        progress=False,
    )
    out, err = capfd.readouterr()
    assert quiet.sizes["time"] == 33
    assert "%|" not in err + out and "Loading weights" not in err, err
    assert switches() == (True, False)
    # progress=True: one "windows" bar for the four windows; no per-extractor bars or loading bars under it
    fresh = demo_extractors(device="cpu", cache=False)  # not loaded yet, and no features cached
    tribev2.predict(
        events, model=brain, extractors=list(fresh.values()), atlas=None, cache_dir=tmp_path / "other", progress=True
    )
    err = capfd.readouterr().err
    assert "windows:   0%|          | 0/4" in err and "loading the text model" in err, err
    assert "Loading weights" not in err and "text:" not in err and "audio:" not in err
