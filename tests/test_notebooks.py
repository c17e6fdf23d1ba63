"""Every tutorial notebook runs top to bottom (nbclient, a fresh kernel, no network), shows a brain, and still
matches its committed outputs: the text of each cell (numbers compared to a few significant digits; paths,
timings, memory addresses, hashes and warnings masked) and every image it committed (a stale notebook fails).

How the cache is seeded: each test module builds one cache root in a temporary folder and copies the atlas
files of ``../shared/atlases/`` into ``<root>/atlases/<atlas name>/``, where :func:`tribev2.load_atlas`'s
download would have put them; the kernels get ``TRIBEV2_CACHE=<root>`` (and ``HF_HUB_OFFLINE=1``) from the
environment, so notebooks read atlases exactly as on a user's machine after the first download. The textbook
demo model, the demo extractors and the features built by the first notebook are reused by the next ones.

Refresh the committed outputs after changing a notebook or what it shows (a few minutes; no network): the same
test then writes each executed notebook back instead of comparing it::

    TRIBEV2_REFRESH_NOTEBOOKS=1 .venv/bin/python -m pytest tests/test_notebooks.py -k matches [-k NAME]
"""

from __future__ import annotations

import base64
import io
import math
import os
import re
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))
MAX_NOTEBOOK_BYTES = 1_500_000
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
KERNEL_ENV = {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "VTK_DEFAULT_OPENGL_WINDOW": "vtkEGLRenderWindow",
    "TOKENIZERS_PARALLELISM": "false",
}
UNSET = ("TRIBEV2_WEIGHTS", "TRIBEV2_EXTRACTORS", "TRIBEV2_WHISPER_MODEL", "TRIBEV2_ATLAS_DIR", "JPY_SESSION_NAME")
SIGNIFICANT = 2  # digits kept when numbers are compared
MASKS = [  # (pattern, replacement), applied in order before numbers are compared
    (re.compile(r"\b0x[0-9a-fA-F]{6,}\b"), "<address>"),
    (re.compile(r"https?://[\w.-]+:\d+"), "<server>"),  # a local server's random port (Dask's dashboard)
    (re.compile(r"\b[0-9a-f]{16,64}\b"), "<hash>"),
    (re.compile(r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(\.\d+)?([+-]\d\d:\d\d|Z)?"), "<timestamp>"),
    (re.compile(r"(?<![\w.])(/[\w.+~-]+)+/?"), "<path>"),
    (re.compile(r"\b\d+(\.\d+)?\s?(ms|it/s|s/it)\b|\b\d+\.\d+\s?s\b"), "<duration>"),  # timings, not "t = 5 s"
    (re.compile(r"\b\d+(\.\d+)?\s?(B|kB|KB|MB|MiB|GB|GiB)\b"), "<size>"),
]
NUMBER = re.compile(r"[-+]?(\d+\.\d*|\.\d+|\d+)([eE][-+]?\d+)?")


# -- images ---------------------------------------------------------------------------------------------------------
def png_images(notebook) -> list[np.ndarray]:
    from PIL import Image

    return [
        np.asarray(Image.open(io.BytesIO(base64.b64decode(output["data"]["image/png"]))).convert("RGB"))
        for cell in notebook.cells
        if cell.cell_type == "code"
        for output in cell.get("outputs", [])
        if "image/png" in output.get("data", {})
    ]


def shows_a_brain(image: np.ndarray) -> bool:
    """A rendered cortex: a good share of the picture is grey sulcal shading (unsaturated mid-grey pixels)."""
    pixels = image.astype(int)
    grey = (pixels.max(axis=-1) - pixels.min(axis=-1) < 12) & (pixels.mean(axis=-1) > 90) & (pixels.mean(axis=-1) < 200)
    return grey.mean() > 0.03


def image_kinds(cell) -> list[str]:
    """The image types of a cell's outputs, in order."""
    return [kind for output in cell.get("outputs", []) for kind in output.get("data", {}) if kind.startswith("image/")]


# -- text -----------------------------------------------------------------------------------------------------------
def normalised(text: str) -> tuple[str, list[float]]:
    """``text`` with paths, timings, addresses, hashes and dates masked and every number taken out (returned
    apart, for a comparison to :data:`SIGNIFICANT` digits); runs of blank space are one space."""
    for pattern, replacement in MASKS:
        text = pattern.sub(replacement, text)
    numbers = [float(m.group()) for m in NUMBER.finditer(text)]
    return " ".join(NUMBER.sub("<n>", text).split()), numbers


def text_outputs(cell) -> list[str]:
    """The text a reader sees in a cell's outputs: stdout (as one text, however the kernel happened to split it
    into messages), results' plain text, errors; stderr (warnings, progress) and the widgets' placeholder are left
    out."""
    texts = []
    stdout = None
    for output in cell.get("outputs", []):
        if output.output_type == "stream" and output.name == "stdout":
            if stdout is None:
                stdout = len(texts)
                texts.append("")
            texts[stdout] += output.text
        elif output.output_type in ("execute_result", "display_data") and WIDGET_VIEW not in output.data:
            texts.append(output.data.get("text/plain", ""))
        elif output.output_type == "error":
            texts.append(f"{output.ename}: {output.evalue}")
    return texts


def same_number(a: float, b: float) -> bool:
    def rounded(x: float) -> float:
        return 0.0 if x == 0 else round(x, SIGNIFICANT - 1 - math.floor(math.log10(abs(x))))

    # equal at SIGNIFICANT digits, or one unit of the last kept digit apart (a value on a rounding boundary)
    scale = max(abs(a), abs(b))
    return rounded(a) == rounded(b) or abs(a - b) <= 10 ** (math.floor(math.log10(scale)) - SIGNIFICANT + 1)


def text_differences(committed, fresh) -> list[str]:
    problems = []
    cells = [(i, c, f) for i, (c, f) in enumerate(zip(committed.cells, fresh.cells)) if c.cell_type == "code"]
    for index, old_cell, new_cell in cells:
        old, new = text_outputs(old_cell), text_outputs(new_cell)
        if len(old) != len(new):
            problems.append(f"cell {index}: {len(old)} text outputs committed, {len(new)} now")
            continue
        for old_text, new_text in zip(old, new):
            (old_mask, old_numbers), (new_mask, new_numbers) = normalised(old_text), normalised(new_text)
            if old_mask != new_mask:
                problems.append(
                    f"cell {index}: text changed:\n  committed: {old_mask[:300]}\n  now:       {new_mask[:300]}"
                )
            elif not all(map(same_number, old_numbers, new_numbers)):
                pairs = [(a, b) for a, b in zip(old_numbers, new_numbers) if not same_number(a, b)]
                problems.append(f"cell {index}: numbers changed (committed, now): {pairs[:5]}")
    return problems


# -- running and committing -----------------------------------------------------------------------------------------
def execute(path: Path, folder: Path):
    """Run the notebook at ``path`` in a fresh kernel, working in ``folder``, with the environment of this process
    (which names the cache root); raises on any cell error."""
    import nbformat
    from nbclient import NotebookClient

    notebook = nbformat.read(path, as_version=4)
    NotebookClient(
        notebook,
        timeout=300,
        kernel_name="python3",
        resources={"metadata": {"path": str(folder)}},
        coalesce_streams=True,
    ).execute()
    return notebook


def palette_png(encoded: str) -> str:
    """A base64 PNG as a 256-colour palette PNG: maps and plots look the same at a third of the size."""
    from PIL import Image

    image = Image.open(io.BytesIO(base64.b64decode(encoded))).convert("RGB")
    out = io.BytesIO()
    image.quantize(256, method=Image.Quantize.FASTOCTREE, dither=Image.Dither.NONE).save(out, "PNG", optimize=True)
    return base64.b64encode(out.getvalue()).decode("ascii")


def for_commit(notebook):
    """The executed notebook as committed: the widgets' output and state left out (the viewer's PNG snapshot
    stays), images as palette PNGs, no execution timings."""
    notebook.metadata.pop("widgets", None)
    for cell in notebook.cells:
        cell.metadata.pop("execution", None)
        if cell.cell_type == "code":
            cell.outputs = [output for output in cell.outputs if WIDGET_VIEW not in output.get("data", {})]
            for output in cell.outputs:
                if "image/png" in output.get("data", {}):
                    output.data["image/png"] = palette_png(output.data["image/png"])
    return notebook


@pytest.fixture
def kernel_env(seeded_cache, monkeypatch):
    monkeypatch.setenv("TRIBEV2_CACHE", str(seeded_cache))
    for variable, value in KERNEL_ENV.items():
        monkeypatch.setenv(variable, value)
    for variable in UNSET:
        monkeypatch.delenv(variable, raising=False)
    return seeded_cache


# -- tests ----------------------------------------------------------------------------------------------------------
def test_there_are_notebooks():
    assert [p.stem for p in NOTEBOOKS] == [
        "01_quickstart",
        "02_regions",
        "03_evaluation",
        "04_contributions",
        "05_your_stimuli_and_cli",
        "06_your_subjects",
        "07_many_stimuli",
    ]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_committed_notebook_is_executed_and_small(path):
    import nbformat

    notebook = nbformat.read(path, as_version=4)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert all(cell.execution_count is not None for cell in code), f"{path.name}: committed without running"
    assert [cell.execution_count for cell in code] == list(range(1, len(code) + 1)), f"{path.name}: out of order"
    assert path.stat().st_size <= MAX_NOTEBOOK_BYTES, f"{path.name}: {path.stat().st_size / 1e6:.2f} MB"
    assert "widgets" not in notebook.metadata, f"{path.name}: widget state committed"
    assert not [o for cell in code for o in cell.outputs if o.output_type == "error"], f"{path.name}: an error"
    assert any(shows_a_brain(image) for image in png_images(notebook)), f"{path.name}: no brain committed"


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_and_matches_its_committed_outputs(path, kernel_env, tmp_path):
    import nbformat

    committed = nbformat.read(path, as_version=4)
    fresh = for_commit(execute(path, tmp_path))  # raises on any cell error
    if os.environ.get("TRIBEV2_REFRESH_NOTEBOOKS") == "1":
        nbformat.write(fresh, path)
        committed = fresh
    images = png_images(fresh)
    assert images, f"{path.name} displays no image"
    assert any(shows_a_brain(image) for image in images), f"{path.name}: no rendered brain among its images"
    stale = [
        f"cell {i}: committed {image_kinds(c)}, now {image_kinds(f)}"
        for i, (c, f) in enumerate(zip(committed.cells, fresh.cells))
        if any(kind not in image_kinds(f) for kind in image_kinds(c))
    ]
    assert not stale, f"{path.name}: committed images the notebook no longer makes: {stale}"
    problems = text_differences(committed, fresh)
    assert not problems, (
        f"{path.name} differs from its committed outputs (refresh: see this module's doc):\n" + "\n".join(problems)
    )


def test_a_changed_output_is_caught():
    """The comparison fails on what matters (a different number or word) and not on what may change (a path)."""
    import nbformat

    def notebook(text: str):
        return nbformat.v4.new_notebook(
            cells=[nbformat.v4.new_code_cell("x", outputs=[nbformat.v4.new_output("stream", name="stdout", text=text)])]
        )

    base = notebook("r = 0.4213 in V1 (/tmp/abc/outputs/x.nc, 2.31 s)")
    assert text_differences(base, notebook("r = 0.4209 in V1 (/home/u/outputs/x.nc, 9.1 s)")) == []
    assert text_differences(base, notebook("r = 0.61 in V1 (/tmp/abc/outputs/x.nc, 2.31 s)"))
    assert text_differences(base, notebook("r = 0.4213 in A1 (/tmp/abc/outputs/x.nc, 2.31 s)"))
    # the kernel may send one print in several stream messages: still the same text
    split = notebook("r = 0.4213 in V1 ")
    split.cells[0].outputs.append(
        nbformat.v4.new_output("stream", name="stdout", text="(/tmp/abc/outputs/x.nc, 2.31 s)")
    )
    assert text_differences(base, split) == []


@pytest.mark.slow
def test_text_to_speech_skips_with_a_note_without_espeak(kernel_env, tmp_path, monkeypatch):
    """Notebook 05 up to its text-to-speech cell, with no espeak-ng on the PATH: one line, no error."""
    import nbformat
    from nbclient import NotebookClient

    monkeypatch.setenv("PATH", str(Path(sys.executable).parent))  # the venv's programs only: no espeak-ng
    notebook = nbformat.read(next(p for p in NOTEBOOKS if p.stem == "05_your_stimuli_and_cli"), as_version=4)
    speech = next(i for i, cell in enumerate(notebook.cells) if "espeak-ng" in cell.source and cell.cell_type == "code")
    notebook.cells = notebook.cells[: speech + 1]
    NotebookClient(
        notebook, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    ).execute()
    outputs = notebook.cells[speech].outputs
    assert [output.get("name") for output in outputs] == ["stdout"]
    assert outputs[0]["text"].startswith("skipped: espeak-ng is not installed") and outputs[0]["text"].count("\n") == 1


def test_readme_images_exist_are_small_and_show_a_brain():
    """The README's pictures (taken from the executed notebooks) are in the repository, small, and show a cortex."""
    from PIL import Image

    names = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", (REPO / "README.md").read_text(encoding="utf-8"))
    assert len(names) >= 2, "the README shows no pictures"
    for name in names:
        path = REPO / name
        assert path.is_file() and path.suffix in (".png", ".jpg", ".jpeg"), f"README image {name} is missing"
        assert path.stat().st_size <= 200_000, f"{name}: {path.stat().st_size / 1e3:.0f} kB"
        assert shows_a_brain(np.asarray(Image.open(path).convert("RGB"))), f"{name}: no cortex in it"
