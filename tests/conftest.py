"""Shared test fixtures and conventions (see ../shared/design.md, "Tests and shared data").

* ``shared_dir``: the read-only ``../shared`` folder; skipped with a reason when absent, a failure when
  ``TRIBEV2_REQUIRE_SHARED=1`` (CI). Copy files into ``tmp_path`` before writing anything next to them.
* ``require_program(name)``: a system program installed by apt (espeak-ng, chromium); skipped when missing,
  a failure when ``TRIBEV2_REQUIRE_SYSTEM=1`` (CI).
* ``seeded_cache``: a cache root holding the atlas files of ``../shared/atlases/`` where
  :func:`tribev2.load_atlas`'s download would put them (for notebooks and servers run in another process).
* Every test gets its own cache root (``TRIBEV2_CACHE``) and Hugging Face cache, and no network.
* hypothesis: the bounded, derandomised ``ci`` profile by default; ``HYPOTHESIS_PROFILE=dev`` tries more.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci",
    max_examples=8,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
settings.register_profile(
    "dev",
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"

os.environ.setdefault("VTK_DEFAULT_OPENGL_WINDOW", "vtkEGLRenderWindow")
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def _missing(what: str, variable: str) -> None:
    if os.environ.get(variable) == "1":
        pytest.fail(f"{what} is required here ({variable}=1)")
    pytest.skip(f"{what} is not available")


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    if not (SHARED / "README.md").is_file():
        _missing(f"the shared fixtures folder {SHARED}", "TRIBEV2_REQUIRE_SHARED")
    return SHARED


@pytest.fixture(scope="session")
def require_program():
    def check(name: str) -> str:
        path = shutil.which(name)
        if path is None:
            _missing(f"the system program '{name}'", "TRIBEV2_REQUIRE_SYSTEM")
        return path

    return check


@pytest.fixture(autouse=True)
def _isolated_caches(tmp_path_factory, monkeypatch):
    """Each test session shares one cache root (built demo models are reused across tests) that is
    never the user's real cache."""
    root = tmp_path_factory.getbasetemp() / "tribev2-cache"
    monkeypatch.setenv("TRIBEV2_CACHE", str(root))
    monkeypatch.setenv("HF_HOME", str(tmp_path_factory.getbasetemp() / "hf-home"))


SEEDED_ATLASES = {"HCP-MMP1": "HCPMMP1", "Desikan-Killiany": "aparc", "Schaefer-400": "Schaefer400"}


@pytest.fixture(scope="module")
def seeded_cache(shared_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp("notebook-cache")
    for name, stem in SEEDED_ATLASES.items():
        folder = root / "atlases" / name
        folder.mkdir(parents=True)
        for hemi in ("lh", "rh"):
            shutil.copy(shared_dir / "atlases" / f"{hemi}.{stem}.fsaverage5.annot", folder)
    return root
