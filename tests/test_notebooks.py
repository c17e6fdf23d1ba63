"""Every tutorial notebook runs top to bottom (nbclient, a fresh kernel, no network) and shows a brain.

How the cache is seeded: each test worker builds one cache root in a temporary folder and copies the atlas
files of ``../shared/atlases/`` into ``<root>/atlases/<atlas name>/``, where :func:`tribev2.load_atlas`'s
download would have put them; the kernels get ``TRIBEV2_CACHE=<root>`` (and ``HF_HUB_OFFLINE=1``) from the
environment, so notebooks read atlases exactly as on a user's machine after the first download. The demo
weights, demo extractors and features built by the first notebook are reused by the next ones.
"""

from __future__ import annotations

import base64
import io
from pathlib import Path

import numpy as np
import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))


def png_images(notebook) -> list[np.ndarray]:
    from PIL import Image

    return [np.asarray(Image.open(io.BytesIO(base64.b64decode(output["data"]["image/png"]))).convert("RGB"))
            for cell in notebook.cells if cell.cell_type == "code"
            for output in cell.get("outputs", []) if "image/png" in output.get("data", {})]


def shows_a_brain(image: np.ndarray) -> bool:
    """A rendered cortex: a good share of the picture is grey sulcal shading (unsaturated mid-grey pixels)."""
    pixels = image.astype(int)
    grey = (pixels.max(axis=-1) - pixels.min(axis=-1) < 12) & (pixels.mean(axis=-1) > 90) & (pixels.mean(axis=-1) < 200)
    return grey.mean() > 0.03


def test_there_are_notebooks():
    assert [p.stem for p in NOTEBOOKS] == ["01_quickstart", "02_regions", "03_evaluation", "04_contributions",
                                           "05_your_stimuli_and_cli", "06_your_subjects",
                                           "07_many_stimuli"]


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_and_shows_a_brain(path, seeded_cache, tmp_path, monkeypatch):
    import nbformat
    from nbclient import NotebookClient

    monkeypatch.setenv("TRIBEV2_CACHE", str(seeded_cache))
    for variable in ("TRIBEV2_WEIGHTS", "TRIBEV2_EXTRACTORS", "TRIBEV2_WHISPER_MODEL", "TRIBEV2_ATLAS_DIR",
                     "JPY_SESSION_NAME"):
        monkeypatch.delenv(variable, raising=False)
    notebook = nbformat.read(path, as_version=4)
    NotebookClient(notebook, timeout=300, kernel_name="python3",
                   resources={"metadata": {"path": str(tmp_path)}}).execute()  # raises on any cell error
    images = png_images(notebook)
    assert images, f"{path.name} displays no image"
    assert any(shows_a_brain(image) for image in images), f"{path.name}: no rendered brain among its images"


@pytest.mark.slow
def test_text_to_speech_skips_with_a_note_without_espeak(seeded_cache, tmp_path, monkeypatch):
    """Notebook 05 up to its text-to-speech cell, with no espeak-ng on the PATH: one line, no error."""
    import sys

    import nbformat
    from nbclient import NotebookClient

    monkeypatch.setenv("TRIBEV2_CACHE", str(seeded_cache))
    monkeypatch.setenv("PATH", str(Path(sys.executable).parent))  # the venv's programs only: no espeak-ng
    notebook = nbformat.read(next(p for p in NOTEBOOKS if p.stem == "05_your_stimuli_and_cli"), as_version=4)
    speech = next(i for i, cell in enumerate(notebook.cells) if "espeak-ng" in cell.source and cell.cell_type == "code")
    notebook.cells = notebook.cells[:speech + 1]
    NotebookClient(notebook, timeout=300, kernel_name="python3",
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    outputs = notebook.cells[speech].outputs
    assert [output.get("name") for output in outputs] == ["stdout"]
    assert outputs[0]["text"].startswith("skipped: espeak-ng is not installed") and outputs[0]["text"].count("\n") == 1
