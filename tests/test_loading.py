"""load_model through the Hugging Face cache (offline, no mocking), local folders, conversion, and every
error message a bad checkpoint can produce."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file, save_file

import tribev2
from tribev2.cli import main as cli_main
from tribev2.model import CheckpointError, ConfigError, convert

COMMIT = "0123456789abcdef0123456789abcdef01234567"


def hub_cache(root: Path, repo_id: str, files: dict[str, Path], *, commit: str = COMMIT, ref: str = "main") -> Path:
    """Lay files out as huggingface_hub's cache does: blobs, a snapshot per commit, refs/<branch>."""
    repo = root / f"models--{repo_id.replace('/', '--')}"
    snapshot = repo / "snapshots" / commit
    (repo / "blobs").mkdir(parents=True, exist_ok=True)
    snapshot.mkdir(parents=True, exist_ok=True)
    for name, src in files.items():
        blob = repo / "blobs" / f"blob-{commit[:8]}-{name}"
        shutil.copyfile(src, blob)
        (snapshot / name).symlink_to(Path("..") / ".." / "blobs" / blob.name)
    (repo / "refs").mkdir(exist_ok=True)
    (repo / "refs" / ref).write_text(commit)
    return root


@pytest.fixture
def small(shared_dir, tmp_path) -> Path:
    folder = tmp_path / "small"
    shutil.copytree(shared_dir / "parity" / "small", folder, ignore=shutil.ignore_patterns("cases"))
    return folder


def test_hub_repo_loads_offline_from_the_cache(small, tmp_path):
    cache = hub_cache(
        tmp_path / "hub",
        "someone/tribe-small",
        {"config.yaml": small / "config.yaml", "best.ckpt": small / "best.ckpt"},
    )
    model = tribev2.load_model("someone/tribe-small", cache_dir=cache, device="cpu")
    local = tribev2.load_model(small, device="cpu")
    assert model.revision == COMMIT
    assert model.source == "someone/tribe-small"
    for (key, a), (_, b) in zip(model.state_dict().items(), local.state_dict().items()):
        assert torch.equal(a, b), key
    assert len(model.weights_sha256) == 64


def test_hub_revision_and_converted_form(small, tmp_path):
    converted = convert(small, tmp_path / "converted")
    other = "fedcba9876543210fedcba9876543210fedcba98"
    cache = hub_cache(
        tmp_path / "hub",
        "someone/tribe-converted",
        {name: converted / name for name in ("config.yaml", "model.safetensors", "build_args.json")},
        commit=other,
        ref="v2",
    )
    model = tribev2.load_model("someone/tribe-converted", revision="v2", cache_dir=cache, device="cpu")
    assert model.revision == other
    assert model.config.modalities == ("text", "audio", "video")


def test_hub_repo_missing_from_cache_says_what_to_do(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"someone/absent: config\.yaml is not in the Hugging Face cache"):
        tribev2.load_model("someone/absent", cache_dir=tmp_path / "empty", device="cpu")


def test_float16_weights_are_cast_to_the_requested_dtype(small):
    ckpt = torch.load(small / "best.ckpt", weights_only=True)
    assert next(iter(ckpt["state_dict"].values())).dtype == torch.float16
    model = tribev2.load_model(small, device="cpu")
    assert {p.dtype for p in model.parameters()} == {torch.float32}
    assert not model.training and not any(p.requires_grad for p in model.parameters())


def test_precision_picks_the_dtype_and_refuses_a_conflicting_one(small):
    assert {p.dtype for p in tribev2.load_model(small, device="cpu", precision="fast").parameters()} == {torch.bfloat16}
    assert {p.dtype for p in tribev2.load_model(small, device="cpu", precision="auto").parameters()} == {
        torch.float32
    }  # auto is exact on a CPU
    expert = tribev2.load_model(small, device="cpu", dtype="float16")  # an expert's dtype with auto
    assert {p.dtype for p in expert.parameters()} == {torch.float16}
    with pytest.raises(ValueError, match=r"precision='exact' means torch.float32 but dtype=torch.bfloat16"):
        tribev2.load_model(small, device="cpu", precision="exact", dtype=torch.bfloat16)
    with pytest.raises(ValueError, match="precision must be 'auto', 'exact' or 'fast', got 'half'"):
        tribev2.load_model(small, device="cpu", precision="half")


def test_convert_cli_writes_the_safetensors_form(small, tmp_path, capsys):
    out = tmp_path / "cli-out"
    assert cli_main(["convert", str(small), str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["build_args.json", "config.yaml", "model.safetensors"]
    assert "model.predictor.weights" not in load_file(out / "model.safetensors")
    assert cli_main(["convert", str(out), str(tmp_path / "again")]) == 2
    assert "already in the converted form" in capsys.readouterr().err


# -- errors --------------------------------------------------------------------------------------------------
def edit_checkpoint(folder: Path, edit) -> None:
    ckpt = torch.load(folder / "best.ckpt", weights_only=True)
    edit(ckpt)
    torch.save(ckpt, folder / "best.ckpt")


def test_missing_key_is_named(small):
    edit_checkpoint(small, lambda c: c["state_dict"].pop("model.encoder.final_norm.g"))
    with pytest.raises(CheckpointError, match=r"best\.ckpt.*missing key\(s\) 'encoder\.final_norm\.g'"):
        tribev2.load_model(small, device="cpu")


def test_unexpected_key_is_named(small):
    edit_checkpoint(small, lambda c: c["state_dict"].__setitem__("model.combiner.weight", torch.zeros(3)))
    with pytest.raises(CheckpointError, match=r"unexpected key\(s\) 'combiner\.weight'"):
        tribev2.load_model(small, device="cpu")


def test_wrong_shape_names_key_shapes_and_file(small):
    def widen(c):
        c["state_dict"]["model.projectors.audio.weight"] = torch.zeros(128, 33)

    edit_checkpoint(small, widen)
    with pytest.raises(
        CheckpointError,
        match=r"best\.ckpt: key 'projectors\.audio\.weight' has shape \(128, 33\), "
        r"expected \(128, 32\)",
    ):
        tribev2.load_model(small, device="cpu")


def test_wrong_subject_rows_are_explained(small):
    edit_checkpoint(small, lambda c: c["state_dict"].__setitem__("model.predictor.weights", torch.zeros(3, 64, 1284)))
    with pytest.raises(ConfigError, match=r"the weights hold 3 subject row\(s\)"):
        tribev2.load_model(small, device="cpu")


def test_missing_build_args_in_checkpoint(small):
    edit_checkpoint(small, lambda c: c.pop("model_build_args"))
    with pytest.raises(CheckpointError, match="no 'model_build_args'"):
        tribev2.load_model(small, device="cpu")


def test_corrupt_checkpoint_names_the_file(small):
    (small / "best.ckpt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match=r"best\.ckpt: cannot be read as a PyTorch checkpoint"):
        tribev2.load_model(small, device="cpu")


def test_missing_config_yaml(small):
    (small / "config.yaml").unlink()
    with pytest.raises(FileNotFoundError, match=r"no config\.yaml; it is required"):
        tribev2.load_model(small, device="cpu")


def test_config_without_brain_model_config(small):
    (small / "config.yaml").write_text(yaml.safe_dump({"data": {"frequency": 2.0}}))
    with pytest.raises(ConfigError, match=r"config\.yaml: no 'brain_model_config' section"):
        tribev2.load_model(small, device="cpu")


def test_unsupported_option_is_refused(small):
    config = yaml.safe_load((small / "config.yaml").read_text())
    config["brain_model_config"]["temporal_smoothing"] = {"kernel_size": 9}
    (small / "config.yaml").write_text(yaml.safe_dump(config))
    with pytest.raises(ConfigError, match="temporal_smoothing"):
        tribev2.load_model(small, device="cpu")


def test_safetensors_without_build_args(small, tmp_path):
    converted = convert(small, tmp_path / "converted")
    (converted / "build_args.json").unlink()
    with pytest.raises(FileNotFoundError, match=r"model\.safetensors needs build_args\.json"):
        tribev2.load_model(converted, device="cpu")


def test_safetensors_wrong_shape(small, tmp_path):
    converted = convert(small, tmp_path / "converted")
    weights = load_file(converted / "model.safetensors")
    weights["low_rank_head.weight"] = torch.zeros(64, 385)
    save_file(weights, converted / "model.safetensors")
    with pytest.raises(CheckpointError, match=r"model\.safetensors: key 'low_rank_head\.weight' has shape \(64, 385\)"):
        tribev2.load_model(converted, device="cpu")


def test_build_args_without_feature_dims(small, tmp_path):
    converted = convert(small, tmp_path / "converted")
    (converted / "build_args.json").write_text(json.dumps({"n_outputs": 1284, "n_output_timesteps": 20}))
    with pytest.raises(ConfigError, match="lack 'feature_dims'"):
        tribev2.load_model(converted, device="cpu")


def test_not_a_folder_nor_a_repo_id(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a folder holding config.yaml"):
        tribev2.load_model(tmp_path / "nowhere" / "model", device="cpu")


def test_a_run_names_its_precision_and_refuses_parts_loaded_otherwise(small):
    from tribev2.demo import demo_extractors
    from tribev2.sources import resolve, run_precision

    model = tribev2.load_model(small, device="cpu")
    extractors = list(
        demo_extractors(device="cpu", progress=False, per_modality={"text": {"precision": "fast"}}).values()
    )
    assert run_precision(model, extractors) == "mixed: model=exact, text=fast, audio=exact, video=exact"
    assert run_precision(model, extractors[1:]) == "exact"
    with pytest.raises(ValueError, match=r"precision='exact' asks for torch.float32.*'text': 'torch.bfloat16'"):
        resolve(model, extractors, device="cpu", precision="exact")
    with pytest.raises(ValueError, match="text_mode='windowed', but the text extractor given"):
        resolve(model, extractors, device="cpu", text_mode="windowed")


def test_extractor_sources_read_the_environment_only_when_nothing_is_given(monkeypatch):
    from tribev2.sources import extractor_sources

    monkeypatch.delenv("TRIBEV2_EXTRACTORS", raising=False)
    assert extractor_sources(None) is None
    assert extractor_sources(" Demo ") == "demo"
    assert extractor_sources({"text": Path("/models/llama")}) == {"text": "/models/llama"}
    monkeypatch.setenv("TRIBEV2_EXTRACTORS", "demo")
    assert extractor_sources(None) == "demo"
    assert extractor_sources({"audio": "someone/w2v"}) == {"audio": "someone/w2v"}  # given sources win
    loaded = torch.nn.Identity()  # loaded extractors, in a sequence or a mapping, come back as a list
    assert extractor_sources((loaded,)) == [loaded] and extractor_sources({"text": loaded}) == [loaded]
