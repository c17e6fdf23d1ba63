"""Many stimuli into one Zarr store, in this process or over a Dask cluster, resumable and atomic.

::

    ds = tribev2.predict_many(["a.mp4", "b.mp4"], store="out.zarr", model="demo")           # in this process
    ds = tribev2.predict_many(files, store="out.zarr", model="facebook/tribev2", client=client)  # on Dask

The store holds one Zarr group per stimulus (named after the file; a mapping ``{name: path}`` chooses the names),
each exactly the Dataset :func:`tribev2.predict` returns for it, events included. Why groups and not a
``stimulus`` dimension: stimuli differ in length and in their events tables, so one array along ``stimulus``
would pad every stimulus to the longest and write each one as a region of shared arrays (a reader could see half
of it, and growing the arrays from several workers races). A group is written whole in a hidden folder beside
it and moved in by one rename: a reader (``xr.open_datatree(store, engine="zarr")``, ``xr.open_zarr(store,
group=name)``, :func:`open_many`) sees a stimulus entirely or not at all. :func:`open_many` gives the lazy view
across stimuli (``prediction (stimulus, time, vertex, subject)``, NaN past each stimulus's end).

The root group's attributes record the run's settings (a rerun with other settings is refused) and the
stimuli that failed, with their errors (``failed``). A rerun with the same arguments computes only the stimuli
that are not in the store (failed ones are tried again).

On a ``distributed.Client`` the model travels as its *source* (a folder, hub id or ``"demo"``), never as a
pickled module: each worker process loads the model and extractors once (:func:`_predictor`, a per-process cache
keyed by the sources) and keeps them. With ``dask-cuda``'s ``LocalCUDACluster`` each worker sees one GPU, so
``device="auto"`` pins it; each worker also undoes the allocator setting Dask starts it with, which costs 10-15 %
of a CPU worker's time (:func:`keep_large_buffers_on_the_heap`). Each stimulus is three kinds of task: its
events (speech recognition included), its windows in ranges of ``windows_per_task``
(:func:`tribev2.predict.predict_window_range`; the ranges of one long film spread over the workers) and the
write, which stitches the ranges as :func:`tribev2.predict` does (:meth:`~tribev2.predict.Windows.stitch`). A task
whose worker dies is run again by the scheduler, at most ``distributed.scheduler.allowed-failures`` times (default
3); then, like a bad file, the stimulus is recorded as failed and the others go on. The store must be a folder
every worker can write (a shared file system).
"""

from __future__ import annotations

import dataclasses
import functools
import glob
import json
import os
import re
import threading
import time
import unicodedata
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from .atlas import DEFAULT_ATLAS
from .cache import cache_root
from .checks import check_writable, count_of_windows, user_path
from .dataset import EVENT_DIM, OVERLAP_DIM, from_storage
from .events import events_from
from .events.asr import whisper_model_name
from .events.table import timeline_stop
from .io import holds_other_files, is_zarr_group, save_dataset
from .model import TribeModel
from .predict import Windows, extractors_used, predict_window_range, resolve_predictor, stimulus_dataset
from .sources import extractor_sources, weights_source

SETTINGS_ATTR = "tribev2_many"  # the root group's record of the run's settings
FAILED_ATTR = "failed"  # the root group's {stimulus name: error}
LIST_SUFFIXES = (".txt", ".lst", ".list")
GROUP_NAME = r"[A-Za-z0-9_\-][A-Za-z0-9_.\-]*"  # a store group: portable on every file system and object store
GIVEN = "given"  # Settings' mark for a model or extractors passed loaded (in this process only)


@dataclasses.dataclass(frozen=True)
class Settings:
    """What a run computes, as sources and plain values: it travels to the workers and into the store."""

    model: str
    extractors: str | tuple[tuple[str, str], ...] | None = None
    modalities: tuple[str, ...] | None = None
    subjects: str | tuple[int | str, ...] | None = None
    language: str = "english"
    asr_model: str = ""
    atlas: str | None = DEFAULT_ATLAS
    hop_s: float | None = None
    device: str = "auto"
    batch_size: int = 8
    cache_dir: str | None = None
    precision: str = "auto"
    text_mode: str | None = None
    keep_text: bool = True

    def record(self) -> dict:
        """The settings that change the results (JSON), as stored in the root group."""
        fields = dataclasses.asdict(self)
        for name in ("device", "batch_size", "cache_dir"):
            del fields[name]
        return json.loads(json.dumps(fields))


@dataclasses.dataclass(frozen=True)
class Job:
    """One stimulus to predict: its name in the store and its file."""

    name: str
    stimulus: str


@dataclasses.dataclass(frozen=True)
class Run:
    """One call's work, as both runners (here, on a client) take it: the stimuli left to do, the settings, the
    store, model windows per task, whether to show progress, and where each stimulus's outcome is recorded."""

    jobs: list[Job]
    settings: Settings
    store: Path
    per_task: int
    progress: bool
    on_result: Callable[[str, str | None], None]


# -- the public entry points --------------------------------------------------------------------------------------
def predict_many(
    stimuli: str | os.PathLike | Iterable[str | os.PathLike] | Mapping[str, str | os.PathLike],
    *,
    store: str | os.PathLike,
    model: TribeModel | str | os.PathLike | None = None,
    extractors=None,
    client=None,
    windows_per_task: int = 8,
    progress: bool = True,
    cache_dir: str | os.PathLike | None = None,
    **predict_kwargs,
) -> xr.Dataset:
    """Predict every stimulus into the Zarr ``store`` and return :func:`open_many` of it (lazy).

    ``stimuli``: files (a list, a glob pattern, or a ``.txt`` file with one path per line), or ``{name: path}``.
    ``model``, ``extractors`` and ``predict_kwargs`` (``modalities``, ``subjects``, ``language``,
    ``asr_model``, ``atlas``, ``hop_s``, ``device``, ``batch_size``) as in :func:`tribev2.predict`; on a
    ``client`` the model and extractors must be sources (a folder, hub id, ``"demo"``, ``{modality: source}``).
    ``client``: a ``distributed.Client`` to spread the work over its workers; None runs here, one stimulus after
    the other, with a progress bar. ``windows_per_task``: model windows per task (a long film becomes several
    tasks). ``cache_dir``: the cache root (default ``$TRIBEV2_CACHE`` here), given to every worker: on a cluster, a
    folder they all reach.

    Stimuli already in the store are skipped; each one written is complete. A stimulus that fails is recorded
    with its error (the returned Dataset's ``attrs["failed"]`` and the store's root attributes) and the
    others go on. ``attrs`` also hold ``computed`` (the names computed by this call) and ``seconds``; a
    one-line summary is printed when ``progress``.
    """
    started = time.perf_counter()
    jobs = stimulus_jobs(stimuli)
    settings = _settings(model, extractors, cache_dir, predict_kwargs, local=client is None)
    count_of_windows(windows_per_task, "windows_per_task")
    store = _checked_store(user_path(store))
    record = settings.record()
    if isinstance(model, TribeModel):
        record["model"] = str(model.source)
    done = set(stored_stimuli(store))
    todo = [job for job in jobs if job.name not in done]
    # the models are loaded and the settings checked (subjects, hop_s) before the store is touched
    if client is None and GIVEN in (settings.model, settings.extractors):  # loaded objects, used as they are
        predictor = resolve_predictor(
            model,
            extractors,
            settings.modalities,
            hop_s=settings.hop_s,
            device=settings.device,
            progress=False,
            cache_dir=cache_dir,
            precision=settings.precision,
            text_mode=settings.text_mode,
        )
    elif client is None:
        predictor = _predictor(settings) if todo else None
    else:
        loading = _load_on_workers(client, settings) if todo else []
    if client is None and predictor is not None:
        predictor[0].subject_rows(settings.subjects)
    root = _open_root(store, record)
    failed = dict(root.attrs.get(FAILED_ATTR, {}))
    run = Run(todo, settings, store, windows_per_task, progress, _recorder(root, failed))
    if client is None:
        _run_here(run, predictor)
    else:
        _run_on_client(run, client)
        client.cancel(loading)
    seconds = time.perf_counter() - started
    stored = set(stored_stimuli(store))
    failed = {job.name: failed[job.name] for job in jobs if job.name in failed and job.name not in stored}
    computed = [job.name for job in todo if job.name in stored]
    ds = open_many(store, names=[job.name for job in jobs if job.name in stored])
    ds.attrs.update(failed=failed, computed=computed, seconds=seconds)
    if progress:
        print(
            f"predict_many: {len(jobs) - len(failed)} of {len(jobs)} stimuli in {store} ({len(computed)} computed, "
            f"{len(jobs) - len(todo)} already there), {len(failed)} failed, {seconds:.1f} s"
        )
    return ds


def open_many(store: str | os.PathLike, names: Sequence[str] | None = None) -> xr.Dataset:
    """The stimuli of a :func:`predict_many` store side by side, lazily: ``prediction (stimulus, time, vertex,
    subject)`` (NaN past each stimulus's end), ``words (stimulus, time)``, the per-stimulus attributes as
    coordinates along ``stimulus`` (``stimulus_path``, ``stimulus_duration_s``, ...), ``roi`` and ``hemi``
    indexed. ``names`` picks stimuli (default: every one in the store). Each stimulus's own Dataset, events
    included, is ``tribev2.open_dataset`` of ``<store>/<name>`` or ``xr.open_zarr(store, group=name)``.
    The root's ``failed`` record is in ``attrs["failed"]``. Nothing is read here, so nothing is verified: a
    stimulus's checksums are checked when it is opened with ``tribev2.open_dataset(<store>/<name>)``."""
    store = Path(store)
    names = stored_stimuli(store) if names is None else list(names)
    parts = [_stimulus_view(store, name) for name in names]
    attrs = {FAILED_ATTR: dict(_open_root(store).attrs.get(FAILED_ATTR, {}))}
    if not parts:
        return xr.Dataset(coords={"stimulus": np.array([], dtype=object)}, attrs=attrs)
    ds = xr.concat(
        parts,
        dim="stimulus",
        join="outer",
        fill_value={"prediction": np.nan, "words": "", "window": -1},
        combine_attrs="drop_conflicts",
        data_vars="all",
        coords="different",
        compat="equals",
    )
    ds.attrs.update(attrs)
    return from_storage(ds, verify=False)  # lazy: each stimulus's checksums are checked by open_dataset(store/name)


def stored_stimuli(store: str | os.PathLike) -> list[str]:
    """The names of the stimuli written completely in ``store`` (its groups), sorted."""
    store = Path(store)
    if not store.is_dir():
        return []
    return sorted(p.name for p in store.iterdir() if p.is_dir() and not p.name.startswith(".") and is_zarr_group(p))


def stimulus_jobs(stimuli) -> list[Job]:
    """``stimuli`` (see :func:`predict_many`) as named jobs; missing files and clashing names are errors here,
    before any slow step."""
    if isinstance(stimuli, Mapping):
        pairs = [(str(name), str(path)) for name, path in stimuli.items()]
    else:
        paths = _paths(stimuli)
        pairs = [(_group_name(Path(p).stem), p) for p in paths]
    if not pairs:
        raise ValueError(f"stimuli: {stimuli!r} names no file")
    names: dict[str, str] = {}
    jobs = []
    for name, path in pairs:
        if not re.fullmatch(GROUP_NAME, name):
            raise ValueError(
                f"stimulus name {name!r} ({path}): a store group name takes letters, digits and "
                f"'_.-' and does not start with '.'; pass {{name: path}} to choose names"
            )
        if name in names:
            raise ValueError(
                f"{names[name]} and {path} would both be stored as {name!r}: pass {{name: path}} to name them"
            )
        if not Path(path).is_file():
            raise FileNotFoundError(f"{path}: no such stimulus file")
        names[name] = path
        jobs.append(Job(name, path))
    return jobs


def _group_name(stem: str) -> str:
    """A file's stem as a store group name: accents dropped, each run of other characters than ASCII letters,
    digits and ``_.-`` made one ``_`` (``"Clip 01 (été)"`` -> ``"Clip_01_ete_"``), no leading ``.``."""
    plain = unicodedata.normalize("NFKD", stem).encode("ascii", "ignore").decode()
    return re.sub(r"[^A-Za-z0-9_.\-]+", "_", plain).lstrip(".") or "_"


# -- the three tasks of a stimulus (run here or on a worker) -----------------------------------------------------
def _events_task(model: TribeModel, extractors, settings: Settings, stimulus: str) -> tuple[pd.DataFrame, Windows]:
    """The stimulus's events and its model windows."""
    events = events_from(
        stimulus,
        language=settings.language,
        asr_model=settings.asr_model,
        keep_text=settings.keep_text,
        device=settings.device,
        cache_dir=settings.cache_dir,
    )
    extractors_used(events, extractors, stimulus)  # a stimulus no extractor reads fails here, before its windows
    return events, Windows.plan(timeline_stop(events), model.config, settings.hop_s)


def _range_task(
    model: TribeModel, extractors, settings: Settings, events: pd.DataFrame, windows: Windows, first: int, stop: int
) -> np.ndarray:
    """Windows ``first`` to ``stop`` of a stimulus: ``(n, T_out, V, S)``."""
    return predict_window_range(
        events,
        model=model,
        extractors=extractors_used(events, extractors),
        windows=windows,
        rows=model.subject_rows(settings.subjects),
        first=first,
        stop=stop,
        batch_size=settings.batch_size,
    )


def _write_task(
    model: TribeModel,
    extractors,
    settings: Settings,
    store: Path,
    job: Job,
    events: pd.DataFrame,
    windows: Windows,
    *parts: np.ndarray,
) -> str:
    """Stitch the ranges as :func:`tribev2.predict` does and write the stimulus's group atomically."""
    ds = stimulus_dataset(
        windows.stitch(np.concatenate(parts)),
        events,
        stimulus=job.stimulus,
        model=model,
        rows=model.subject_rows(settings.subjects),
        extractors=extractors,
        windows=windows,
        language=settings.language,
        atlas=settings.atlas,
        cache_dir=settings.cache_dir,
    )
    save_dataset(ds, store / job.name, format="zarr")
    return job.name


def _ranges(n_windows: int, per_task: int) -> list[tuple[int, int]]:
    return [(first, min(first + per_task, n_windows)) for first in range(0, n_windows, per_task)]


# -- in this process ----------------------------------------------------------------------------------------------
def _run_here(run: Run, predictor) -> None:
    from tqdm.auto import tqdm

    settings, on_result = run.settings, run.on_result
    model, extractors = predictor or (None, None)
    for job in tqdm(run.jobs, desc="stimuli", disable=not run.progress or not run.jobs):
        try:
            events, windows = _events_task(model, extractors, settings, job.stimulus)
            parts = [
                _range_task(model, extractors, settings, events, windows, first, stop)
                for first, stop in _ranges(windows.n_windows, run.per_task)
            ]
            _write_task(model, extractors, settings, run.store, job, events, windows, *parts)
        except Exception as err:  # noqa: BLE001  (recorded; the others go on; KeyboardInterrupt stops the run)
            on_result(job.name, _error_text(err))
        else:
            on_result(job.name, None)


# -- on a Dask cluster --------------------------------------------------------------------------------------------
_LOADED: dict[Settings, tuple] = {}  # the last sources loaded in this process (one entry: memory stays bounded)
_LOADING = threading.Lock()


def _predictor(settings: Settings) -> tuple[TribeModel, list]:
    """The model and extractors of ``settings``, loaded once per process: a worker keeps them between tasks,
    and so does this process between calls with the same sources."""
    key = dataclasses.replace(settings, subjects=None, language="english", asr_model="", atlas=None, batch_size=1)
    with _LOADING:
        if key not in _LOADED:
            _LOADED.clear()
            extractors = dict(settings.extractors) if isinstance(settings.extractors, tuple) else settings.extractors
            _LOADED[key] = resolve_predictor(
                settings.model,
                extractors,
                settings.modalities,
                hop_s=settings.hop_s,
                device=settings.device,
                progress=False,
                cache_dir=settings.cache_dir,
                precision=settings.precision,
                text_mode=settings.text_mode,
            )
        return _LOADED[key]


M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt() parameter numbers
MMAP_THRESHOLD_CEILING = 32 * 2**20  # where glibc's own dynamic mmap threshold stops rising (64-bit)


def keep_large_buffers_on_the_heap() -> bool:
    """Undo a slowdown that Dask workers start with; True where it did.

    Dask's nanny starts its workers with ``MALLOC_TRIM_THRESHOLD_=65536`` (so that freed memory goes back to the
    system). That freezes glibc's thresholds: every buffer over 128 KiB (a window's activations, its
    20,484-vertex output) becomes a fresh ``mmap``, and any 64 KiB freed at the top of the heap goes back at
    once, so each window's buffers are zero-filled page by page again — 10-15 % of a CPU worker's time
    (``benchmarks/README.md``). This sets the thresholds a plain process reaches by itself once it has freed
    one large buffer (mmap above 32 MiB, trim above twice that): memory still goes back to the system beyond
    64 MiB. Nothing changes where ``MALLOC_TRIM_THRESHOLD_`` is not set, where the environment chose
    ``MALLOC_MMAP_THRESHOLD_`` itself, or where the C library is not glibc. Each worker calls it once, before
    its first task; the client process never does (a nanny writes the workers' variables into its parent's
    environment too, where they describe nothing: that allocator started without them)."""
    import ctypes
    import platform

    if "MALLOC_TRIM_THRESHOLD_" not in os.environ or "MALLOC_MMAP_THRESHOLD_" in os.environ:
        return False
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    libc = ctypes.CDLL(None)
    return (
        libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_CEILING) == 1
        and libc.mallopt(M_TRIM_THRESHOLD, 2 * MMAP_THRESHOLD_CEILING) == 1
    )


@functools.cache
def _tune_this_worker() -> bool:
    return keep_large_buffers_on_the_heap()


def _load(settings: Settings) -> None:
    _tune_this_worker()
    model, _ = _predictor(settings)
    model.subject_rows(settings.subjects)


def _on_worker(task, settings: Settings, *args):
    _tune_this_worker()
    model, extractors = _predictor(settings)
    return task(model, extractors, settings, *args)


def _run_on_client(run: Run, client) -> None:
    from distributed import as_completed
    from tqdm.auto import tqdm

    jobs, settings, on_result = run.jobs, run.settings, run.on_result

    if run.progress and jobs:
        print(
            f"predict_many: {len(jobs)} stimuli on {len(client.scheduler_info()['workers'])} Dask workers; "
            f"dashboard: {client.dashboard_link}"
        )
    pending = as_completed()
    roles = {}
    for job in jobs:  # events first in stimulus order; a stimulus's windows and write go before later events
        future = client.submit(_on_worker, _events_task, settings, job.stimulus, key=_key("events", job), priority=0)
        roles[future.key] = ("events", job)
        pending.add(future)
    with tqdm(total=len(jobs), desc="stimuli", disable=not run.progress or not jobs) as bar:
        for future in pending:
            role, job = roles.pop(future.key)
            if future.status != "finished":
                on_result(job.name, _future_error(future))
                bar.update()
            elif role == "events":
                events, windows = future.result()
                parts = [
                    client.submit(
                        _on_worker,
                        _range_task,
                        settings,
                        events,
                        windows,
                        first,
                        stop,
                        key=_key(f"windows-{first}-{stop}", job),
                        priority=1,
                    )
                    for first, stop in _ranges(windows.n_windows, run.per_task)
                ]
                write = client.submit(
                    _on_worker,
                    _write_task,
                    settings,
                    run.store,
                    job,
                    events,
                    windows,
                    *parts,
                    key=_key("write", job),
                    priority=2,
                )
                roles[write.key] = ("write", job)
                pending.add(write)
            else:
                on_result(job.name, None)
                bar.update()
            future.release()


def _load_on_workers(client, settings: Settings) -> list:
    """Every worker loads the sources now, in parallel (a worker that joins later: at its first task). Returns
    once the first has loaded them and checked the settings (subjects, hop_s); raises what it raised."""
    from distributed import wait

    loading = [
        client.submit(
            _load,
            settings,
            key=f"tribev2-load-{uuid.uuid4().hex}",
            workers=[address],
            allow_other_workers=False,
            priority=3,
        )
        for address in client.scheduler_info()["workers"]
    ]
    first = next(iter(wait(loading, return_when="FIRST_COMPLETED").done))
    if first.status == "error":
        error = first.exception()
        client.cancel(loading)
        raise error
    return loading


def _key(step: str, job: Job) -> str:
    """A task key the dashboard groups by step: ``tribev2-<step>-<stimulus>-<unique>``."""
    return f"tribev2-{step}-{job.name}-{uuid.uuid4().hex}"


def local_cluster(n_workers: int, **options):
    """A Dask cluster on this machine: ``dask-cuda``'s ``LocalCUDACluster`` (one worker per GPU, each pinned to
    its GPU) when it is installed and CUDA is there, else a ``distributed.LocalCluster`` of ``n_workers``
    processes with one thread each. ``options`` go to the cluster."""
    import torch

    if torch.cuda.is_available():
        try:
            from dask_cuda import LocalCUDACluster
        except ImportError:
            pass
        else:
            return LocalCUDACluster(n_workers=n_workers, **options)
    from distributed import LocalCluster

    return LocalCluster(n_workers=n_workers, processes=True, threads_per_worker=1, **options)


# -- the store's root --------------------------------------------------------------------------------------------
def _checked_store(store: Path) -> Path:
    """``store``, where a run can write: a store of earlier runs, or a new or empty folder that can be made there
    (not a file, nor a folder of other files, which the run would fill with its groups)."""
    if store.is_file():
        raise ValueError(f"store {store}: is a file; a predict_many store is a folder (e.g. out.zarr)")
    if holds_other_files(store):
        raise ValueError(
            f"store {store}: a folder of other files, not a predict_many store; name a new folder (e.g. "
            f"{store / 'predictions.zarr'})"
        )
    check_writable(store, "store")  # a file written and removed beside it; the store itself is made later
    return store


def _open_root(store: Path, record: dict | None = None):
    """The store's root group; with ``record``, created if missing and checked against the settings it holds."""
    import zarr

    if record is None:
        if not store.is_dir():
            raise FileNotFoundError(f"{store}: no such predict_many store")
        return zarr.open_group(store, mode="r")
    root = zarr.open_group(store, mode="a")
    held = root.attrs.get(SETTINGS_ATTR)
    if held is None:
        root.attrs.update({SETTINGS_ATTR: record, FAILED_ATTR: root.attrs.get(FAILED_ATTR, {})})
    elif held != record:
        changed = "; ".join(
            f"{k}: {held.get(k)!r} there, {record.get(k)!r} now"
            for k in sorted(set(held) | set(record))
            if held.get(k) != record.get(k)
        )
        raise ValueError(
            f"{store} holds results of other settings ({changed}): use another store, or the same settings"
        )
    return root


def _recorder(root, failed: dict) -> Callable[[str, str | None], None]:
    """Record each stimulus's outcome in the root group as it comes (a killed run keeps what it learnt)."""

    def record(name: str, error: str | None) -> None:
        if error is None and name not in failed:
            return
        if error is None:
            del failed[name]
        else:
            failed[name] = error
        root.attrs.update({FAILED_ATTR: failed})

    return record


def _stimulus_view(store: Path, name: str) -> xr.Dataset:
    """One stored stimulus, lazily, for :func:`open_many`: events left out, attributes as coordinates."""
    ds = xr.open_zarr(store, group=name, consolidated=False)
    ds = ds.drop_vars([v for v, x in ds.variables.items() if {EVENT_DIM, OVERLAP_DIM} & set(x.dims)])
    ds = ds.assign_coords({k: c.load() for k, c in ds.coords.items() if k not in ds.dims})  # small; only data lazy
    per_stimulus = {
        k: ds.attrs.pop(k)
        for k in ("stimulus_path", "stimulus_sha256", "stimulus_duration_s", "modalities")
        if k in ds.attrs
    }
    ds = ds.expand_dims(stimulus=np.array([name], dtype=object))
    return ds.assign_coords({k: ("stimulus", [v]) for k, v in per_stimulus.items()})


# -- arguments ----------------------------------------------------------------------------------------------------
PREDICT_OPTIONS = (
    "modalities",
    "subjects",
    "language",
    "asr_model",
    "keep_text",
    "atlas",
    "hop_s",
    "device",
    "batch_size",
    "precision",
    "text_mode",
)


def _settings(model, extractors, cache_dir, options: dict, *, local: bool) -> Settings:
    unknown = sorted(set(options) - set(PREDICT_OPTIONS))
    if unknown:
        raise TypeError(
            f"predict_many: unexpected argument(s) {unknown}; it takes {list(PREDICT_OPTIONS)} as "
            f"tribev2.predict does (a transcript belongs to one stimulus: predict it alone)"
        )
    if not local and not (model is None or isinstance(model, (str, os.PathLike))):
        raise TypeError(
            f"model: on a Dask client pass the model's source (a folder, hub id or 'demo'), not a "
            f"{type(model).__name__}: each worker loads it once (save_pretrained a model you built)"
        )
    # the environment is read here, once (weights, extractors, Whisper model): the workers' may differ
    model = weights_source(model)
    extractors = extractor_sources(extractors)
    if isinstance(extractors, dict):
        extractors = tuple(sorted(extractors.items()))
    elif not (extractors is None or isinstance(extractors, str)):
        if not local:
            raise TypeError(
                "extractors: on a Dask client pass sources (None, 'demo' or {modality: folder or hub "
                "id}), not loaded extractors"
            )
        extractors = GIVEN
    modalities = options.get("modalities")
    subjects = options.get("subjects")
    atlas = options.get("atlas", DEFAULT_ATLAS)
    if not (atlas is None or isinstance(atlas, str)):
        raise TypeError("atlas: pass a load_atlas name or None to predict_many")
    return Settings(
        model=str(model) if isinstance(model, (str, os.PathLike)) else GIVEN,
        extractors=extractors,
        modalities=(modalities,) if isinstance(modalities, str) else None if modalities is None else tuple(modalities),
        subjects=subjects if subjects is None or isinstance(subjects, str) else tuple(subjects),
        language=options.get("language", "english"),
        asr_model=whisper_model_name(options.get("asr_model")),
        atlas=atlas,
        hop_s=options.get("hop_s"),
        device=options.get("device", "auto"),
        batch_size=options.get("batch_size", 8),
        cache_dir=str(cache_root(cache_dir)),
        precision=options.get("precision", "auto"),
        text_mode=options.get("text_mode"),
        keep_text=options.get("keep_text", True),
    )


def _paths(stimuli) -> list[str]:
    """Files from a glob pattern, a list file (one path per line, relative to it; ``#`` comments) or a list."""
    if isinstance(stimuli, (str, os.PathLike)):
        spec = str(user_path(stimuli))
        if Path(spec).suffix in LIST_SUFFIXES and Path(spec).is_file():
            lines = [line.strip() for line in Path(spec).read_text().splitlines()]
            return [str(Path(spec).parent / line) for line in lines if line and not line.startswith("#")]
        if glob.has_magic(spec):
            found = sorted(glob.glob(spec))
            if not found:
                raise FileNotFoundError(f"{spec}: no file matches this pattern")
            return found
        return [spec]
    return [str(user_path(p)) for p in stimuli]


def _error_text(err: BaseException) -> str:
    return f"{type(err).__name__}: {err}"


def _future_error(future) -> str:
    """What went wrong with a Dask future that did not finish."""
    from distributed import KilledWorker

    if future.status == "cancelled":
        return "CancelledError: the scheduler cancelled the task (workers or scheduler lost)"
    err = future.exception()
    if isinstance(err, KilledWorker):
        return (
            f"KilledWorker: the workers running it died too often ({err}); see distributed.scheduler.allowed-failures"
        )
    return _error_text(err)
