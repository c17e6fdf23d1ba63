"""Real environment faults (issue 15): a full disk and a read-only file system, made as small tmpfs mounts in a
private mount namespace (``unshare -m``; CI runs as root, and root ignores ``chmod``). Every scenario runs in
one child process, so that a crash (the segmentation fault HDF5 gave when writing NetCDF straight to a full
disk) fails the test instead of killing pytest. Without ``unshare`` or root the test is skipped, a failure
under ``TRIBEV2_REQUIRE_SYSTEM=1``."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap

import pytest

SCENARIOS = textwrap.dedent(r'''
    import errno, json, os, shutil, sys, traceback
    from pathlib import Path

    import numpy as np
    import xarray as xr

    import tribev2
    import tribev2.demo
    from tribev2 import cli
    from tribev2.cache import file_sha256
    from tribev2.features.cache import cached_array

    full, ro = Path(sys.argv[1]), Path(sys.argv[2])
    results = {}

    def files(folder):  # empty cache folders are not partial entries
        return {str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()}

    def outcome(name, run, folder):
        before = files(folder)
        try:
            value = run()
            results[name] = {"value": value}
        except Exception as err:
            results[name] = {"error": type(err).__name__, "message": str(err), "errno": getattr(err, "errno", None),
                             "traceback": "Traceback" in str(err)}
        results[name]["leftovers"] = sorted(files(folder) - before - {"kept.nc"})

    def fill(folder, leave):
        """Fill the file system of ``folder`` so that ``leave`` bytes stay free."""
        filler = folder / "filler"
        free = shutil.disk_usage(folder).free
        with open(filler, "ab") as f:
            f.write(b"\0" * max(0, free - leave))
        return filler

    ds = xr.Dataset({"prediction": (("time", "vertex"), np.random.default_rng(0).random((40, 6000), np.float32))})
    nbytes = ds.nbytes

    # a full disk whose free space passes the check before writing, and runs out during the write
    kept = tribev2.save_dataset(ds.isel(time=slice(0, 2)), full / "kept.nc")
    kept_bytes = kept.read_bytes()
    filler = fill(full, nbytes + 4096)
    outcome("full-netcdf", lambda: str(tribev2.save_dataset(ds, full / "out.nc")), full)
    outcome("full-netcdf-overwrite", lambda: str(tribev2.save_dataset(ds, kept)), full)
    results["full-netcdf-overwrite"]["old_file_kept"] = kept.read_bytes() == kept_bytes
    noise = np.random.default_rng(1).integers(0, 256, (40, 24000), np.uint8)
    noise = xr.Dataset({"noise": (("time", "vertex"), noise)})
    outcome("full-zarr", lambda: str(tribev2.save_dataset(noise, full / "out.zarr")), full)  # incompressible
    outcome("full-features-cache", lambda: cached_array("text", {"k": 1}, lambda: np.ones((2, 400_000), np.float32),
                                                         root=full / "cache").shape, full)
    filler.unlink()
    fill(full, 64 * 1024)
    outcome("full-demo-weights", lambda: tribev2.demo.demo_model(device="cpu", cache_dir=full / "cache", hidden=96,
                                                                 depth=1, heads=2, low_rank_head=8).source, full)
    outcome("full-check-free-space", lambda: str(tribev2.save_dataset(ds, full / "big.nc")), full)

    # a read-only file system holding a warm cache entry and a file to hash
    outcome("ro-netcdf", lambda: str(tribev2.save_dataset(ds, ro / "out.nc")), ro)
    outcome("ro-zarr", lambda: str(tribev2.save_dataset(ds, ro / "out.zarr")), ro)
    outcome("ro-warm-features-cache", lambda: float(cached_array("text", {"k": "warm"}, lambda: np.zeros(3),
                                                                 root=ro / "cache").sum()), ro)
    outcome("ro-cold-features-cache", lambda: cached_array("text", {"k": "cold"}, lambda: np.zeros(3),
                                                           root=ro / "cache").shape, ro)
    outcome("ro-digest-memo", lambda: file_sha256(ro / "data.bin", ro / "cache"), ro)
    outcome("ro-save-pretrained", lambda: str(tribev2.demo.demo_model(
        device="cpu", cache_dir=Path(sys.argv[3]), hidden=96, depth=1, heads=2, low_rank_head=8).save_pretrained(
            ro / "model")), ro)
    code = cli.main(["predict", sys.argv[4], "-o", str(ro / "pred.nc"), "--model", "/nonexistent", "-q"])
    results["ro-cli-output"] = {"value": code, "leftovers": []}
    print("RESULTS" + json.dumps(results))
''')

PREPARE_RO = textwrap.dedent(r"""
    import sys
    from pathlib import Path
    import numpy as np
    from tribev2.features.cache import cached_array
    ro = Path(sys.argv[1])
    cached_array("text", {"k": "warm"}, lambda: np.full(3, 2.0), root=ro / "cache")
    (ro / "data.bin").write_bytes(b"abc")
""")


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory):
    import shutil

    if shutil.which("unshare") is None or os.geteuid() != 0:
        _missing("unshare -m as root (private mounts for a full and a read-only file system)")
    root = tmp_path_factory.mktemp("faults")
    full, ro, scratch = root / "full", root / "ro", root / "scratch"
    for folder in (full, ro, scratch):
        folder.mkdir()
    wav = scratch / "speech.wav"
    import numpy as np
    import soundfile

    soundfile.write(wav, np.zeros(16000, np.float32), 16000)
    python = sys.executable
    (root / "prepare.py").write_text(PREPARE_RO)
    (root / "scenarios.py").write_text(SCENARIOS)
    script = (
        f"mount -t tmpfs -o size=3m tmpfs {full} && mount -t tmpfs -o size=2m tmpfs {ro} && "
        f"{python} {root / 'prepare.py'} {ro} && mount -o remount,ro {ro} && "
        f"{python} {root / 'scenarios.py'} {full} {ro} {scratch} {wav}"
    )
    run = subprocess.run(
        ["unshare", "-m", "--propagation", "private", "sh", "-c", script],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "TRIBEV2_CACHE": str(scratch / "cache")},
    )
    if run.returncode != 0 and "unshare" in run.stderr and "Operation not permitted" in run.stderr:
        _missing(f"private mounts (unshare: {run.stderr.strip()})")
    assert run.returncode == 0, f"the child process died (exit {run.returncode}; -11 is a segfault):\n{run.stderr}"
    line = next(line for line in run.stdout.splitlines() if line.startswith("RESULTS"))
    return json.loads(line.removeprefix("RESULTS")), run.stderr


def _missing(what: str) -> None:
    if os.environ.get("TRIBEV2_REQUIRE_SYSTEM") == "1":
        pytest.fail(f"{what} is required here (TRIBEV2_REQUIRE_SYSTEM=1)")
    pytest.skip(f"{what} is not available")


# (scenario, errno expected or None for a result, what the message names)
EXPECTED = [
    ("full-netcdf", "ENOSPC", r"out\.nc: the disk is full$"),  # the write itself, past the free-space check
    ("full-netcdf-overwrite", "ENOSPC", r"kept\.nc: the disk is full$"),
    ("full-zarr", "ENOSPC", r"out\.zarr: the disk is full$"),
    ("full-features-cache", "ENOSPC", r"features/text/.*\.npy: the disk is full \(a tribev2 cache: .*TRIBEV2_CACHE"),
    ("full-demo-weights", "ENOSPC", r"brain-.*the disk is full"),
    ("full-check-free-space", "ENOSPC", r"big\.nc: the disk is full \(\d+\.\d MB free, \d+\.\d MB needed\)"),
    ("ro-netcdf", "EROFS", r"out\.nc: the file system is read-only"),
    ("ro-zarr", "EROFS", r"out\.zarr: the file system is read-only"),
    (
        "ro-cold-features-cache",
        "EROFS",
        r"features/text/.*\.npy: the file system is read-only \(a tribev2 cache: .*TRIBEV2_CACHE",
    ),
    ("ro-save-pretrained", "EROFS", r"model: the file system is read-only"),
]


def test_every_write_fault_is_one_clear_error_and_nothing_partial(outcomes):
    """One test over every scenario (the child process runs once, on one worker); each failure is named."""
    import errno

    results, stderr = outcomes
    failures = []
    for name, code, match in EXPECTED:
        result = results[name]
        if result.get("error") != "WriteError" or result["errno"] != getattr(errno, code):
            failures.append(f"{name}: expected WriteError {code}, got {result}")
        elif not re.search(match, result["message"]):
            failures.append(f"{name}: the message does not match {match!r}: {result['message']}")
        elif result["leftovers"]:  # nothing partial left behind
            failures.append(f"{name}: left {result['leftovers']}")
    assert results["full-netcdf-overwrite"].get("old_file_kept"), "the older file was not kept"
    # a read-only cache serves what it holds; the digest memo is skipped, not fatal
    if results["ro-warm-features-cache"] != {"value": 6.0, "leftovers": []}:
        failures.append(f"ro-warm-features-cache: {results['ro-warm-features-cache']}")
    if results["ro-digest-memo"].get("value") != "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad":
        failures.append(f"ro-digest-memo: {results['ro-digest-memo']}")
    # the CLI: an unwritable output is exit 4 before any model is loaded, with no traceback
    if (
        results["ro-cli-output"]["value"] != 4
        or not re.search(r"--output .*pred\.nc: the file system is read-only", stderr)
        or "Traceback" in stderr
    ):
        failures.append(f"ro-cli-output: exit {results['ro-cli-output']['value']}, stderr {stderr[-500:]}")
    assert not failures, "\n".join(failures)
