"""tribev2 report | movie | plot FILE.nc: saved results to an HTML page, an MP4, a figure; exit codes."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest
from geometry import FOR_PLOTS
from PIL import Image

import tribev2
from tribev2.cli import EXIT_BAD_INPUT, main
from tribev2.demo import demo_model, synthetic_features


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """A 12-TR prediction of a small seeded demo model (fsaverage3) with Desikan-Killiany regions, saved."""
    folder = tmp_path_factory.mktemp("results")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TRIBEV2_CACHE", str(tmp_path_factory.getbasetemp() / "tribev2-cache"))
        model = demo_model(
            **FOR_PLOTS,
        )
        ds = tribev2.predict_features(synthetic_features(model, 12), model=model, atlas="Desikan-Killiany")
    return tribev2.save_dataset(ds, folder / "clip.nc")


def test_plot_writes_maps_and_time_courses(saved, tmp_path, capsys):
    assert (
        main(["plot", str(saved), "-o", str(tmp_path / "maps.png"), "--time", "2,8", "--views", "lateral,medial"]) == 0
    )
    assert f"wrote {tmp_path / 'maps.png'}" in capsys.readouterr().out
    with Image.open(tmp_path / "maps.png") as image:
        assert image.width <= 900 and image.height > 200  # notebook size
        pixels = np.asarray(image.convert("RGB")).astype(int)
    assert ((pixels.max(-1) - pixels.min(-1)) > 60).sum() > 5000  # coloured cortex
    assert (
        main(
            [
                "plot",
                str(saved),
                "-o",
                str(tmp_path / "courses.svg"),
                "--roi",
                "superiortemporal,precentral",
                "--width",
                "700",
                "--height",
                "300",
                "-q",
            ]
        )
        == 0
    )
    assert capsys.readouterr().out == ""
    svg = (tmp_path / "courses.svg").read_text()
    assert "superiortemporal" in svg and "precentral" in svg and 'width="504pt"' in svg  # 700 px at 100 dpi


def test_movie_and_report(saved, tmp_path, capfd):
    import av

    assert main(["movie", str(saved), "-o", str(tmp_path / "clip.mp4"), "--size", "80x60", "--fps", "4"]) == 0
    out, err = capfd.readouterr()
    assert "wrote" in out and err.count("frames:") >= 1  # one bar for the one stage
    with av.open(str(tmp_path / "clip.mp4")) as container:
        assert sum(1 for _ in container.decode(video=0)) == 12
    assert main(["report", str(saved), "-o", str(tmp_path / "clip.html"), "--size", "80x60", "-q"]) == 0
    assert capfd.readouterr() == ("", "")  # -q: no bar, no summary
    page = (tmp_path / "clip.html").read_text()
    data = json.loads(re.search(r'<script id="data" type="application/json">(.*?)</script>', page, re.S).group(1))
    assert len(data["brain"]) == 12


def test_bad_input_exit_code_and_nothing_written(saved, tmp_path, capsys):
    assert main(["plot", str(tmp_path / "missing.nc")]) == EXIT_BAD_INPUT
    assert "missing.nc: no such file" in capsys.readouterr().err
    assert main(["movie", str(saved), "-o", str(tmp_path / "clip.gif")]) == EXIT_BAD_INPUT
    assert "ending in .mp4" in capsys.readouterr().err
    for fps in ("inf", "0.0001", "1000"):  # checked before any frame is drawn (inf crashed in the encoder)
        assert main(["movie", str(saved), "-o", str(tmp_path / "m.mp4"), "--fps", fps]) == EXIT_BAD_INPUT
        assert f"fps={float(fps)!r}" in capsys.readouterr().err
    assert not (tmp_path / "m.mp4").exists()
    junk = tmp_path / "junk.nc"
    junk.write_text("not a dataset")
    assert main(["report", str(junk), "-o", str(tmp_path / "junk.html")]) == EXIT_BAD_INPUT
    assert "junk.nc: cannot be read as a NetCDF file written by tribev2.save_dataset" in capsys.readouterr().err
    assert main(["plot", str(saved), "--roi", "nowhere"]) == EXIT_BAD_INPUT
    with pytest.raises(SystemExit) as exit_:
        main(["plot", str(saved), "--views", "side"])
    assert exit_.value.code == EXIT_BAD_INPUT
    assert sorted(p.name for p in tmp_path.iterdir()) == ["junk.nc"]


def test_pictures_on_a_machine_without_display_print_no_vtk_warning(saved, tmp_path):
    """Without DISPLAY, VTK falls back from X11 to EGL and says so on stderr; that expected fallback is not shown."""
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "VTK_DEFAULT_OPENGL_WINDOW")}
    command = [sys.executable, "-m", "tribev2.cli", "plot", str(saved), "-o", str(tmp_path / "p.png"), "--time", "0"]
    run = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    assert (tmp_path / "p.png").is_file() and run.stderr == "", run.stderr
