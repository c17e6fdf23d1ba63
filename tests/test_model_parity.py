"""The brain model reproduces the reference implementation on every case of ../shared/parity/.

Each model is loaded through `load_model` in the form it ships (best.ckpt or model.safetensors) and again
after `convert`; every stage must match (float32, CPU): max |Δ| ≤ 1e-4 and ‖Δ‖/‖ref‖ ≤ 1e-5.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

import tribev2
from tribev2.model import convert

STAGES = ("aggregated", "encoded", "unpooled", "output")


def parity_cases(shared):
    return sorted(
        (case.parent.parent.name, case.name)
        for case in (shared / "parity").glob("*/cases/*")
        if (case / "expected.safetensors").is_file()
    )


def assert_close(found: torch.Tensor, expected: torch.Tensor, what: str) -> None:
    expected = expected.float()
    assert found.shape == expected.shape, f"{what}: shape {tuple(found.shape)} != {tuple(expected.shape)}"
    diff = found.float() - expected
    max_abs = diff.abs().max().item()
    rel = (diff.norm() / expected.norm()).item()
    assert max_abs <= 1e-4 and rel <= 1e-5, f"{what}: max |Δ| {max_abs:.3g}, relative {rel:.3g}"


@pytest.fixture(scope="module")
def model_folders(shared_dir, tmp_path_factory):
    """name -> {"shipped": folder, "converted": folder} for every parity model."""
    folders = {}
    for model_dir in sorted(p for p in (shared_dir / "parity").iterdir() if (p / "config.yaml").is_file()):
        entry = {"shipped": model_dir}
        if (model_dir / "best.ckpt").is_file():
            entry["converted"] = convert(model_dir, tmp_path_factory.mktemp(f"{model_dir.name}-converted"))
        folders[model_dir.name] = entry
    return folders


def test_fixture_inventory(shared_dir):
    cases = parity_cases(shared_dir)
    assert ("small", "all_modalities") in cases and ("wide", "release_timing") in cases
    assert len(cases) >= 5


@pytest.mark.parametrize("form", ["shipped", "converted"])
def test_every_parity_case(shared_dir, model_folders, form):
    checked = 0
    for name, case in parity_cases(shared_dir):
        folder = model_folders[name].get(form)
        if folder is None:  # already shipped in the converted form
            continue
        model = tribev2.load_model(folder, device="cpu")
        case_dir = shared_dir / "parity" / name / "cases" / case
        inputs = load_file(case_dir / "inputs.safetensors")
        expected = load_file(case_dir / "expected.safetensors")
        with torch.inference_mode():
            stages = model(inputs, return_stages=True)
            stages = {
                "aggregated": stages.aggregated,
                "encoded": stages.encoded,  # one subject row: drop S
                "unpooled": stages.unpooled[:, 0],
                "output": stages.output[:, 0],
            }
            fast = model(inputs)[:, 0]  # pooled before the head
            unpooled = model(inputs, pool=False)[:, 0]
        for stage in STAGES:
            assert_close(stages[stage], expected[stage], f"{name}/{case}/{stage} ({form})")
        assert_close(fast, expected["output"], f"{name}/{case}/output, pooled first ({form})")
        assert_close(unpooled, expected["unpooled"], f"{name}/{case}/pool=False ({form})")
        checked += 1
    assert checked >= (5 if form == "shipped" else 4)


def test_converted_weights_are_identical(shared_dir, model_folders):
    shipped = tribev2.load_model(model_folders["small"]["shipped"], device="cpu")
    converted = tribev2.load_model(model_folders["small"]["converted"], device="cpu")
    for (key, a), (_, b) in zip(shipped.state_dict().items(), converted.state_dict().items()):
        assert torch.equal(a, b), key
    build_args = json.loads((model_folders["small"]["converted"] / "build_args.json").read_text())
    assert list(build_args["feature_dims"]) == ["text", "audio", "video"]


def test_reference_stitching_end_to_end(shared_dir):
    """The e2e fixture's stored per-window features through predict_features give the reference's rows."""
    e2e = shared_dir / "e2e"
    expected = load_file(e2e / "expected" / "pr29_dedup.safetensors")
    model = tribev2.load_model(e2e / "brain", device="cpu")
    # (window, L, D, 200) -> (L, D, window · 200): the whole stimulus at 2 Hz
    features = {m: expected[f"features_{m}"].permute(1, 2, 0, 3).flatten(2).numpy() for m in model.config.modalities}
    ds = tribev2.predict_features(features, model=model, atlas=None, duration_s=130.0)
    preds = expected["preds"].numpy()
    assert ds.prediction.shape == (130, 1284, 1)
    np.testing.assert_allclose(ds.prediction.isel(subject=0).values, preds, atol=1e-4, rtol=0)
    np.testing.assert_allclose(ds.time.values, expected["row_start"].numpy())
    np.testing.assert_array_equal(ds.window.values, expected["row_window"].numpy())


def test_bfloat16_runs_close_to_float32(shared_dir):
    folder = shared_dir / "parity" / "wide"
    case = folder / "cases" / "release_timing"
    inputs = load_file(case / "inputs.safetensors")
    reference = load_file(case / "expected.safetensors")["output"].float()
    model = tribev2.load_model(folder, device="cpu", dtype=torch.bfloat16)
    assert next(model.parameters()).dtype == torch.bfloat16
    with torch.inference_mode():
        out = model(inputs)[:, 0].float()
    rel = ((out - reference).norm() / reference.norm()).item()
    assert 0 < rel < 0.05, rel  # bfloat16 differs, but only by rounding


def test_rotary_angles_stay_float32_in_bfloat16(shared_dir):
    model = tribev2.load_model(shared_dir / "parity" / "wide", device="cpu", dtype=torch.bfloat16)
    rotary = model.encoder.rotary_pos_emb
    angles = rotary(256, torch.device("cpu"))
    assert rotary.inv_freq.dtype == torch.bfloat16 and angles.dtype == torch.float32
    exact = torch.outer(torch.arange(256, dtype=torch.float64), rotary.inv_freq.double())
    # the angle of position 255 at the highest frequency (1 rad per step) is exact to float32 rounding
    assert (angles[:, : exact.shape[1]].double() - exact).abs().max().item() < 1e-4
