"""tribev2.features.base: layer groups, the 2 Hz grid, the events table, the cache, compatibility, config."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tribev2.features import (
    ExtractorLoadError,
    IncompatibleExtractorError,
    check_compatible,
    extract_features,
    extractors_from_config,
    feature_dims,
)
from tribev2.features.base import cached_layer_indices, layer_groups
from tribev2.features.cache import cached_array
from tribev2.features.grid import event_rows, place_on_event_grid, place_words

SEGMENTS = {"seg_0_100": (0.0, 100.0), "seg_1p3_7": (1.3, 7.0), "seg_2p75_5": (2.75, 5.0)}


def assert_features_match(out: np.ndarray, ref: np.ndarray) -> None:
    """The project's tolerance for features: max |diff| <= 1e-4 and ||diff|| / ||ref|| <= 1e-5."""
    assert out.shape == ref.shape
    diff = np.asarray(out, np.float64) - ref
    assert np.abs(diff).max(initial=0) <= 1e-4
    assert np.linalg.norm(diff) <= 1e-5 * max(np.linalg.norm(ref), 1e-12)


def test_layer_indices_and_groups_of_the_release_models():
    """README item 1 / upstream.md §4.2: Llama 29 states, V-JEPA2 41 states (20 kept), w2v-BERT 25 (all kept)."""
    text = cached_layer_indices(29, 20)
    assert text == [0, 1, 3, 4, 6, 7, 9, 10, 12, 13, 15, 16, 18, 19, 21, 22, 24, 25, 27, 28]
    video = cached_layer_indices(41, 20)
    assert video == [0, 2, 4, 6, 8, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 32, 34, 36, 38, 40]
    groups = layer_groups(20, (0.5, 0.75, 1.0))
    assert groups == [slice(9, 14), slice(14, 20)]
    assert [text[g] for g in groups] == [[13, 15, 16, 18, 19], [21, 22, 24, 25, 27, 28]]
    assert [video[g] for g in groups] == [[19, 21, 23, 25, 27], [29, 32, 34, 36, 38, 40]]
    assert cached_layer_indices(25, None) == list(range(25))
    assert layer_groups(25, (0.5, 0.75, 1.0)) == [slice(12, 18), slice(18, 25)]
    assert layer_groups(4, (0.5, 0.75, 1.0)) == [slice(1, 2), slice(2, 4)]  # the demo models
    assert layer_groups(3, (0.5, 0.75, 1.0)) == [slice(1, 3)]  # cuts coincide: one group only
    with pytest.raises(ValueError, match="no layer group"):
        layer_groups(1, (0.5, 0.75, 1.0))


def test_word_placement_rules():
    """README item 3: round-half-even start index, max(1, round(overlap * 2)) samples, right clamp, sums."""
    one = np.ones((1, 1, 1), np.float32)

    def where(start, duration, window=(0.0, 10.0)):
        grid = place_words(
            one, np.array([start]), np.array([duration]), start=window[0], duration=window[1], frequency=2.0
        )
        return np.flatnonzero(grid[0, 0]).tolist()

    assert where(0.75, 0.25) == [2]  # round(1.5) = 2
    assert where(2.25, 0.75) == [4, 5]  # round(4.5) = 4, two samples
    assert where(4.75, 1.25) == [10, 11]  # round(9.5) = 10, round(2.5) = 2 samples
    assert where(8.25, 0.1) == [16]
    assert where(9.9, 0.6) == [19]  # clamped: the span must fit the window
    assert where(99.884, 0.29, window=(0.0, 100.0)) == [199]  # the e2e word straddling the window cut
    assert where(99.884, 0.29, window=(100.0, 100.0)) == [0]  # ... and clipped to the next window's start
    both = place_words(
        np.ones((2, 1, 1), np.float32),
        np.array([3.30, 3.55]),
        np.array([0.12, 0.6]),
        start=0.0,
        duration=10.0,
        frequency=2.0,
    )
    assert both[0, 0, 7] == 2.0  # "the" and "stairs" share sample 7 and add up


def test_event_grid_placement():
    """README item 5: the event keeps its own grid; window sample 0 is event sample round((S - start) * 2)."""
    values = np.arange(25, dtype=np.float32)[None, None]  # (1, 1, 25): event samples 0..24
    out = np.zeros((1, 1, 14), np.float32)
    place_on_event_grid(out, values, event_start=0.0, start=1.3, frequency=2.0)
    assert out[0, 0].tolist() == list(range(3, 17))
    out = np.zeros((1, 1, 10), np.float32)
    place_on_event_grid(out, values, event_start=0.0, start=2.75, frequency=2.0)
    assert out[0, 0, 0] == 6  # round(5.5) = 6
    out = np.zeros((1, 1, 200), np.float32)
    place_on_event_grid(out, values, event_start=60.0, start=0.0, frequency=2.0)
    assert np.flatnonzero(out[0, 0]).tolist() == list(range(121, 145))  # sample 120 holds event sample 0 (= 0)


def test_events_table_errors():
    table = pd.DataFrame(
        {
            "type": ["Word", "Word"],
            "start": [0.5, np.nan],
            "duration": [0.2, 0.3],
            "text": ["a", "b"],
            "context": ["a", "a b"],
        }
    )
    with pytest.raises(ValueError, match=r"finite, non-negative 'start'.*row\(s\) 1"):
        event_rows(table, "Word", ("text", "context"))
    with pytest.raises(ValueError, match="'duration'"):
        event_rows(table.assign(start=[0.5, 1.0], duration=[0.2, -0.1]), "Word", ("text", "context"))
    with pytest.raises(ValueError, match=r"\['offset', 'filepath'\]"):
        event_rows(
            pd.DataFrame({"type": ["Audio"], "start": [0.0], "duration": [1.0]}), "Audio", ("offset", "filepath")
        )
    with pytest.raises(TypeError, match="DataFrame"):
        event_rows([{"type": "Word"}], "Word", ())
    assert event_rows(table, "Video", ("offset",)).empty


def test_cache_is_keyed_and_atomic(tmp_path):
    calls = []

    def compute():
        calls.append(1)
        return np.full((2, 3), len(calls), np.float32)

    first = cached_array("text", {"a": 1}, compute)
    again = cached_array("text", {"a": 1}, compute)
    other = cached_array("text", {"a": 2}, compute)
    assert len(calls) == 2 and np.array_equal(first, again) and not np.array_equal(first, other)


def test_extract_features_checks_and_missing_modalities(shared_dir):
    from tribev2.demo import demo_extractors

    extractors = demo_extractors(device="cpu", progress=False)
    words = pd.DataFrame(
        {
            "type": ["Word"],
            "start": [0.5],
            "duration": [0.3],
            "text": ["hello"],
            "context": ["hello"],
            "offset": [0.0],
            "filepath": [None],
        }
    )
    features = extract_features(words, extractors=extractors, start=0.0, duration=4.0)
    assert list(features) == ["text"]  # no Audio or Video rows at all: those modalities are missing
    assert features["text"].shape == (2, 32, 8)
    empty = extract_features(words, extractors=extractors, start=50.0, duration=4.0)
    assert not empty["text"].any()  # words elsewhere, none in this window: zeros
    with pytest.raises(ValueError, match="duration"):
        extract_features(words, extractors=extractors, start=0.0, duration=0.0)
    with pytest.raises(ValueError, match="one extractor per modality"):
        extract_features(words, extractors=[extractors["text"], extractors["text"]], start=0.0, duration=4.0)


def test_compatibility_with_the_brain_model(shared_dir):
    from tribev2 import load_model

    brain = load_model(shared_dir / "e2e" / "brain", device="cpu")
    models = shared_dir / "features" / "models"
    extractors = extractors_from_config(
        brain.experiment_config,
        device="cpu",
        sources={"text": models / "text", "audio": models / "audio", "video": models / "vjepa2"},
    )
    assert list(extractors) == ["text", "audio", "video"]
    assert feature_dims(extractors) == {"text": (2, 64), "audio": (2, 32), "video": (2, 32)}
    assert extractors["video"].clip_duration == 4.0 and extractors["text"].layers == (0.5, 0.75, 1.0)
    check_compatible(extractors, brain)
    check_compatible([extractors["audio"]], brain)  # a modality without extractor is allowed

    from tribev2.demo import demo_extractors

    with pytest.raises(IncompatibleExtractorError, match=r"text: the extractor gives 2 layer group\(s\) x 32"):
        check_compatible(demo_extractors(device="cpu"), brain)
    # the config names local folders 'text', 'audio', 'vjepa2' that do not exist here
    with pytest.raises(ExtractorLoadError, match="cannot load the text model config 'text'"):
        extractors_from_config(brain.experiment_config, device="cpu")


def test_gated_model_offline_gives_one_clear_message():
    from tribev2.features import TextExtractor

    with pytest.raises(ExtractorLoadError) as info:
        TextExtractor("meta-llama/Llama-3.2-3B", device="cpu")
    message = str(info.value)
    assert "request access at https://huggingface.co/meta-llama/Llama-3.2-3B" in message
    assert "hf auth login" in message and "local folder" in message


def test_missing_local_folder(tmp_path):
    from tribev2.features import AudioExtractor

    with pytest.raises(ExtractorLoadError, match="no such folder"):
        AudioExtractor(str(tmp_path / "nowhere" / "audio"), device="cpu")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ExtractorLoadError, match="check that this folder holds the model's files"):
        AudioExtractor(tmp_path / "empty", device="cpu")


def test_numpy_window_bounds_and_bad_layer_counts():
    """Window starts taken from numpy (np.arange gives np.int64, a float32 array np.float32) are numbers too;
    a cache_n_layers of 0 would keep no hidden state (NaN features), so it is refused at construction, as is a
    batch_size that is not a whole number of at least 1 (True included)."""
    from tribev2.demo import demo_extractors

    text = demo_extractors(device="cpu", progress=False)["text"]
    words = pd.DataFrame({"type": ["Word"], "start": [0.5], "duration": [0.3], "text": ["hello"], "context": ["hello"]})
    expected = extract_features(words, extractors=[text], start=0.0, duration=4.0)["text"]
    for start, duration in ((np.int64(0), np.int64(4)), (np.float32(0.0), np.float32(4.0))):
        out = extract_features(words, extractors=[text], start=start, duration=duration)["text"]
        np.testing.assert_array_equal(out, expected)
    with pytest.raises(ValueError, match="start must be a finite number"):
        extract_features(words, extractors=[text], start=np.float64("nan"), duration=4.0)
    from tribev2.features import TextExtractor

    for bad in (0, -3, 2.5, True):
        with pytest.raises(ValueError, match="cache_n_layers must be a positive integer"):
            TextExtractor(text.source, device="cpu", cache_n_layers=bad)
        with pytest.raises(ValueError, match="batch_size must be a positive integer"):
            TextExtractor(text.source, device="cpu", batch_size=bad)


def test_fast_arithmetic_rounds_no_stored_weight(tmp_path):
    """precision="fast" is bfloat16 arithmetic under torch.autocast: the linear and convolution layers rounded
    once, as autocast rounds them at each call (the same numbers), the rest float32; no stored weight is rounded
    (rounding all of a float32 checkpoint's would make another model); an expert's ``weights=`` decides
    otherwise. The cache keeps the variants apart."""
    import copy
    import json
    import shutil
    from importlib.resources import files
    from pathlib import Path

    import torch
    from safetensors.torch import load_file
    from transformers import AutoModel

    from tribev2.demo import demo_extractors
    from tribev2.devices import weights_dtype
    from tribev2.features import TextExtractor

    assert weights_dtype() == torch.float32  # autocast below float32
    assert weights_dtype("bfloat16") == weights_dtype(torch.bfloat16) == torch.bfloat16  # an expert's choice

    def audio(precision: str):
        return demo_extractors(
            device="cpu", progress=False, cache=False, per_modality={"audio": {"precision": precision}}
        )["audio"]

    exact, fast = audio("exact"), audio("fast")
    assert (fast.dtype, fast.weights_dtype) == (torch.bfloat16, torch.float32)  # the demo stores float32
    # autocast's own rounding of the linear and convolution layers, done once; the norms stay float32
    dtypes = {type(m): {p.dtype for p in m.parameters(recurse=False)} for m in fast.model.modules()}
    assert dtypes[torch.nn.Linear] == dtypes[torch.nn.Conv1d] == {torch.bfloat16}
    assert dtypes[torch.nn.LayerNorm] == {torch.float32}
    clip = str(files("tribev2.data") / "demo_stimulus.mp4")
    events = pd.DataFrame([{"type": "Audio", "start": 0.0, "duration": 8.0, "offset": 0.0, "filepath": clip}])
    a, b = exact.extract(events, 0.0, 8.0), fast.extract(events, 0.0, 8.0)
    assert np.abs(a - b).max() > 1e-4, "the arithmetic ran in bfloat16"
    assert np.corrcoef(a.ravel(), b.ravel())[0, 1] > 0.999
    fast._model = fast.adapt(fast._load_model()).eval()  # every weight float32, rounded by autocast at each call
    np.testing.assert_array_equal(fast.extract(events, 0.0, 8.0), b)
    assert fast.fingerprint()["weights"] == "torch.float32" and "weights" not in exact.fingerprint()
    assert "weights=torch.float32" in repr(fast)

    # a checkpoint stored in bfloat16 (as Llama-3.2-3B is): its values are kept, none rounded; the residual
    # stream, norms and embeddings run in float32 (a random full-size Llama's word features: r 0.9995 so, 0.94
    # with every weight and the residual stream in bfloat16)
    demo_text = demo_extractors()["text"]
    stored = tmp_path / "text-bf16"
    copy.deepcopy(demo_text.model).to(torch.bfloat16).save_pretrained(stored)  # the demo's config and weights
    for extra in Path(demo_text.source).iterdir():  # the tokenizer
        if not (stored / extra.name).exists():
            shutil.copy(extra, stored / extra.name)
    assert json.loads((stored / "config.json").read_text())["dtype"] == "bfloat16"
    text = TextExtractor(stored, device="cpu", precision="fast", progress=False, cache=False)
    assert (text.dtype, text.weights_dtype) == (torch.bfloat16, torch.float32) and text.autocasts
    held = text.model.state_dict()
    saved = load_file(str(stored / "model.safetensors"))
    assert {held[k].dtype for k in saved} == {torch.bfloat16, torch.float32}
    assert all(torch.equal(held[k].to(torch.bfloat16), saved[k]) for k in saved)  # nothing rounded
    # loaded in bfloat16, all but the linear layers widened: what a float32 load, then rounded, would hold
    assert text.loads_as_stored and not fast.loads_as_stored
    widened_first = text.prepare(AutoModel.from_pretrained(stored, dtype=torch.float32))
    expected = dict(widened_first.named_buffers()) | dict(widened_first.named_parameters())
    held = dict(text.model.named_buffers()) | dict(text.model.named_parameters())
    assert held.keys() == expected.keys()
    for name, tensor in held.items():
        assert tensor.dtype == expected[name].dtype and torch.equal(tensor, expected[name]), name
    assert "weights=torch.float32" in repr(text)
    chosen = TextExtractor(stored, device="cpu", precision="fast", weights="float32", progress=False, cache=False)
    assert chosen.weights_dtype == torch.float32


def test_layer_norms_in_input_dtype():
    """Outside autocast a float32 LayerNorm gives its own numbers to the bit; under autocast it returns its
    bfloat16 input's dtype, with the statistics in float32 (the CPU's autocast does as much: same bits)."""
    import copy

    import torch

    from tribev2.features.base import layer_norms_in_input_dtype

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.LayerNorm(64), torch.nn.Linear(64, 8))
    with torch.no_grad():
        model[0].weight.normal_(1, 0.3), model[0].bias.normal_(0, 0.3)
    ours = layer_norms_in_input_dtype(copy.deepcopy(model))
    x = torch.randn(4, 64) * 3 + 1
    torch.testing.assert_close(ours(x), model(x), rtol=0, atol=0)
    half = x.to(torch.bfloat16)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        normed, theirs = ours[0](half), model[0](half)
    assert normed.dtype == torch.bfloat16
    torch.testing.assert_close(normed, theirs, rtol=0, atol=0)
    torch.testing.assert_close(normed.float(), model[0](half.float()), rtol=2e-2, atol=2e-2)
