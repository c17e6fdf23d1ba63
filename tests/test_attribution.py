"""attribute: integrated gradients of regional predictions through the brain model. Completeness (attributions
add up to output minus baseline output) within 1 % at the default step count, shrinking with more steps; the
regional outputs are the model's own prediction averaged over the region."""

from __future__ import annotations

import numpy as np
import pytest

import tribev2
from tribev2 import attribute
from tribev2.attribution import DEFAULT_STEPS, top_words
from tribev2.demo import demo_model, synthetic_features

SMALL = {
    "feature_dims": {"text": (2, 8), "audio": (2, 6), "video": (2, 4)},
    "n_outputs": 2 * 642,
    "n_output_timesteps": 10,
    "hidden": 96,
    "depth": 1,
    "heads": 2,
    "low_rank_head": 32,
    "max_seq_len": 64,
}


@pytest.fixture(scope="module")
def model(tmp_path_factory):  # built in the session's cache root, not the user's
    return demo_model(**SMALL, device="cpu", cache_dir=tmp_path_factory.getbasetemp() / "tribev2-cache")


@pytest.fixture(scope="module")
def atlas(shared_dir):
    return tribev2.load_atlas("HCP-MMP1", mesh="fsaverage3", path=shared_dir / "atlases")


@pytest.mark.slow
def test_completeness_and_the_regional_outputs(model, atlas):
    features = synthetic_features(model, 12)  # two 10-s windows, the second one mostly past the end
    result = attribute(features, model=model, roi=["V1", "45"], atlas=atlas)
    assert result.dims == ("modality", "time_in", "time_out", "roi")
    assert result.shape == (3, 24, 12, 2) and result.attrs["steps"] == DEFAULT_STEPS
    delta = result["output"] - result["baseline_output"]
    total = result.sum(("modality", "time_in"))
    assert float(abs(total - delta).max()) <= 0.01 * float(abs(delta).max())
    assert result.attrs["completeness_error"] <= 0.01
    # an input sample drives only the TRs of its own window
    assert float(abs(result.isel(time_in=slice(0, 20), time_out=slice(10, 12))).max()) == 0.0

    prediction = tribev2.predict_features(features, model=model, atlas=atlas).prediction[:, :, 0]
    for name in ("V1", "45"):
        np.testing.assert_allclose(
            result["output"].sel(roi=name), prediction.sel(roi=name).mean("vertex"), rtol=1e-4, atol=1e-5
        )
    zeros = {m: np.zeros_like(x) for m, x in features.items()}
    baseline = tribev2.predict_features(zeros, model=model, atlas=atlas).prediction[:, :, 0]
    np.testing.assert_allclose(
        result["baseline_output"].sel(roi="V1"), baseline.sel(roi="V1").mean("vertex"), rtol=1e-4, atol=1e-5
    )


@pytest.mark.slow
def test_the_completeness_error_shrinks_with_more_steps(model, atlas):
    features = synthetic_features(model, 8)
    errors = [
        attribute(features, model=model, roi="V1", atlas=atlas, steps=s).attrs["completeness_error"] for s in (2, 8, 32)
    ]
    assert errors[0] > errors[1] > errors[2], errors


def test_bad_arguments(model, atlas):
    features = synthetic_features(model, 4)
    with pytest.raises(ValueError, match="method='saliency'"):
        attribute(features, model=model, roi="V1", atlas=atlas, method="saliency")
    with pytest.raises(ValueError, match="steps=0"):
        attribute(features, model=model, roi="V1", atlas=atlas, steps=0)
    with pytest.raises(KeyError, match="'V99' matches no region of the HCP-MMP1 atlas"):
        attribute(features, model=model, roi="V99", atlas=atlas)
    with pytest.raises(ValueError, match="no 'words' coordinate"):
        top_words(attribute(features, model=model, roi="V1", atlas=atlas, steps=2))
