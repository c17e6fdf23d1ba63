"""The ``tribev2`` command line: a thin layer over the public functions.

Commands: ``predict`` (a stimulus file -> predictions as NetCDF or Zarr), ``predict-many`` (many stimuli -> one
Zarr store, here or on a Dask cluster), ``report``, ``movie`` and ``plot`` (a saved result -> an HTML report, an
MP4, a figure), ``convert`` (checkpoint -> safetensors form) and ``doctor`` (what is installed, what is missing,
and how to get it).

Exit codes: 0 success; 1 an unexpected error (a bug: the traceback is printed); 2 bad input (a file that is
missing, unreadable or of the wrong kind, a bad option); 3 a model or program that is not available (offline,
gated, not installed); 4 a file cannot be written (disk full, read-only file system, no permission: nothing
partial is left); 130 interrupted (Ctrl-C); for ``doctor``, 1 when a check failed.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import math
import shutil
import sys
from pathlib import Path

from .atlas import DEFAULT_ATLAS
from .checks import check_writable

EXIT_BAD_INPUT = 2
EXIT_UNAVAILABLE = 3
EXIT_CANNOT_WRITE = 4
EXIT_INTERRUPTED = 130
_EPILOG = (
    "exit codes: 0 success; 1 unexpected error (a bug); 2 bad input (missing, unreadable or unsupported "
    "file, bad option); 3 a model, program or Dask scheduler is not available (offline, gated, not installed, "
    "not running); 4 a file "
    "cannot be written (disk full, read-only, no permission); 130 interrupted."
)


# -- predict ---------------------------------------------------------------------------------------------------
def _predict(args: argparse.Namespace) -> int:
    from . import predict, save_dataset
    from .atlas import check_atlas

    output = Path(args.output or Path(args.stimulus).with_suffix(".nc").name)
    if output.suffix not in (".nc", ".zarr"):
        raise ValueError(f"--output {output}: expected a .nc (NetCDF) or .zarr (Zarr) path")
    if not Path(args.stimulus).is_file():
        raise FileNotFoundError(f"stimulus {args.stimulus}: no such file")
    if args.transcript and not Path(args.transcript).is_file():
        raise FileNotFoundError(f"--transcript {args.transcript}: no such file")
    if args.atlas.lower() != "none":
        check_atlas(args.atlas)
    if args.events:
        _check_events_path(Path(args.events), output=output, inputs=(args.stimulus, args.transcript))
    for target, what in ((output, "--output"), (args.events, "--events")):  # before the slow steps
        if target:
            check_writable(target, what)
    ds = predict(args.stimulus, transcript=args.transcript, **_model_kwargs(args))
    save_dataset(ds, output)
    if args.events:
        from .cache import atomic_path

        with atomic_path(args.events, "events table") as tmp:
            ds.tribe.events().to_csv(tmp, sep="\t", index=False)
    if not args.quiet:
        print(
            f"wrote {output}: prediction {dict(ds.prediction.sizes)} on {ds.attrs['mesh']}, "
            f"{ds.sizes['event']} events, modalities {ds.attrs['modalities']}"
        )
    return 0


def _check_events_path(events: Path, *, output: Path, inputs) -> None:
    """``--events``: a ``.tsv`` that is neither the output nor one of the ``inputs`` (it would overwrite them)."""
    if events.suffix.lower() != ".tsv":
        raise ValueError(f"--events {events}: expected a .tsv path (the events table is tab-separated)")
    for other, what in ((output, "--output"), *zip(inputs, ("the stimulus", "--transcript"))):
        if other and events.resolve() == Path(other).resolve():
            raise ValueError(f"--events {events} is {what}: it would be overwritten; name another file")


# -- predict-many ----------------------------------------------------------------------------------------------
def _predict_many(args: argparse.Namespace) -> int:
    from .many import local_cluster, predict_many, stimulus_jobs

    stimuli = args.stimuli[0] if len(args.stimuli) == 1 else args.stimuli
    stimulus_jobs(stimuli)  # missing files and clashing names, before any cluster is reached
    options = {**_model_kwargs(args), "windows_per_task": args.windows_per_task}
    if args.scheduler or args.local_workers:
        where = local_cluster(args.local_workers) if args.local_workers else contextlib.nullcontext(args.scheduler)
        with where as cluster, _client(cluster) as client:
            ds = predict_many(stimuli, store=args.store, client=client, **options)
    else:
        ds = predict_many(stimuli, store=args.store, **options)
    for name, error in ds.attrs["failed"].items():
        print(f"tribev2 predict-many: {name} failed: {error}", file=sys.stderr)
    return EXIT_BAD_INPUT if ds.attrs["failed"] else 0


class SchedulerUnavailableError(ConnectionError):
    """A Dask scheduler that cannot be reached."""


def _client(cluster):
    """A ``distributed.Client`` of ``cluster`` (a local cluster, or a scheduler's address)."""
    from distributed import Client

    try:
        return Client(cluster)
    except OSError as err:  # distributed's connection timeout and refusals
        raise SchedulerUnavailableError(
            f"--scheduler {cluster}: the Dask scheduler cannot be reached ({err}); is it running (`dask scheduler`) "
            f"at that address? Or start a cluster here with --local-workers N"
        ) from None


def _model_kwargs(args: argparse.Namespace) -> dict:
    """The options of ``_add_model_options`` as keywords of ``predict`` and ``predict_many``."""
    return {
        "model": args.model,
        "extractors": _extractors(args),
        "modalities": args.modalities,
        "language": args.language,
        "asr_model": args.asr_model,
        "subjects": _subjects(args.subjects),
        "hop_s": args.hop,
        "atlas": None if args.atlas.lower() == "none" else args.atlas,
        "cache_dir": args.cache_dir,
        "device": args.device,
        "progress": not args.quiet,
        "batch_size": args.batch_size,
        "precision": args.precision,
        "text_mode": args.text_mode,
    }


def _extractors(args: argparse.Namespace) -> dict | None:
    sources = {"text": args.text_model, "audio": args.audio_model, "video": args.video_model}
    return {m: source for m, source in sources.items() if source} or None


def _subjects(value: str | None):
    if value is None or value in ("average", "all"):
        return value
    try:
        return [s if s == "average" else int(s) for s in (part.strip() for part in value.split(","))]
    except ValueError:
        raise ValueError(f"--subjects {value!r}: expected 'average', 'all' or comma-separated row numbers") from None


def _positive_int(value: str, maximum: int | None = None) -> int:
    if not value.strip().isdigit() or int(value) < 1 or (maximum is not None and int(value) > maximum):
        upto = "" if maximum is None else f" and at most {maximum}"
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 1{upto}, got {value!r}")
    return int(value)


def _figure_px(value: str) -> int:
    """An argparse type: a figure side in pixels, up to :data:`tribev2.viz.static.MAX_FIGURE_PX`."""
    from .viz.static import MAX_FIGURE_PX

    return _positive_int(value, MAX_FIGURE_PX)


def _seconds(value: str) -> list[float]:
    """``"0, 10.5,20"`` -> ``[0.0, 10.5, 20.0]``."""
    try:
        times = [float(part) for part in _comma_list(value)]
    except ValueError:
        times = []
    if not times or not all(math.isfinite(t) for t in times):
        raise argparse.ArgumentTypeError(f"expected comma-separated times in seconds (e.g. 0,10,20), got {value!r}")
    return times


# -- report, movie, plot: saved results -------------------------------------------------------------------------
FIGURE_SUFFIXES = (".png", ".jpg", ".jpeg", ".pdf", ".svg")
MAX_DPI = 600  # beyond: gigabytes of pixels, not a sharper figure


def _report(args: argparse.Namespace) -> int:
    from .viz import save_report

    output = _output(args, ".html", (".html", ".htm"))
    ds = _open_results(args.results)
    path = save_report(ds, output, video=args.video, title=args.title, progress=not args.quiet, **_map_options(args))
    _say(args, f"wrote {path}: {ds.sizes.get('time', 0)} TRs")
    return 0


def _movie(args: argparse.Namespace) -> int:
    from .viz import save_movie

    output = _output(args, ".mp4", (".mp4",))
    ds = _open_results(args.results)
    path = save_movie(ds, output, fps=args.fps, progress=not args.quiet, **_map_options(args))
    _say(args, f"wrote {path}: {ds.sizes.get('time', 1)} frames at {args.fps:g} per second")
    return 0


def _plot(args: argparse.Namespace) -> int:
    from .viz import plot_data, plot_timecourse

    if (args.width is None) != (args.height is None):
        raise ValueError("--width and --height: give both (the figure's size in pixels) or neither")
    output = _output(args, ".png", FIGURE_SUFFIXES)
    ds = _open_results(args.results)
    variable = args.variable or _plotted_variable(ds)
    size = {"figsize": (args.width / args.dpi, args.height / args.dpi)} if args.width else {}
    if args.roi:
        try:
            figure = plot_timecourse(
                ds, args.roi, variable=variable or "prediction", subject=args.subject, dpi=args.dpi, **size
            )
        except KeyError as err:  # a name or pattern that matches no region
            raise ValueError(f"--roi: {err.args[0]}") from None
    else:
        figure = plot_data(ds, time=args.time, variable=variable, dpi=args.dpi, **size, **_map_options(args))
    figure.savefig(output, dpi=args.dpi)
    _say(args, f"wrote {output}")
    return 0


def _output(args: argparse.Namespace, default_suffix: str, suffixes: tuple[str, ...]) -> Path:
    """The output path (default: the results file's name with ``default_suffix``, in the current folder),
    checked and its folder made before any work."""
    output = Path(args.output or Path(args.results).with_suffix(default_suffix).name)
    if output.suffix.lower() not in suffixes:
        raise ValueError(f"--output {output}: expected a file name ending in {' or '.join(suffixes)}")
    return check_writable(output, "--output")


def _open_results(path: str):
    """A Dataset saved by ``tribev2 predict`` / ``tribev2.save_dataset`` (NetCDF or Zarr) holding cortical data,
    or a clear error (:func:`tribev2.open_dataset` names the file it cannot read)."""
    from .io import open_dataset

    ds = open_dataset(path)
    if not any("vertex" in var.dims for var in ds.data_vars.values()) and "roi" not in ds.dims:
        raise ValueError(
            f"{path}: holds no cortical data (no variable with a 'vertex' or 'roi' dimension; "
            f"variables: {sorted(ds.data_vars)})"
        )
    return ds


def _plotted_variable(ds) -> str | None:
    """None where ``plot_data`` knows what to draw (a prediction, an evaluation); else the one variable with a
    ``vertex`` dimension (e.g. ``contribution``)."""
    if "prediction" in ds.data_vars or "pearson_r" in ds.data_vars:
        return None
    candidates = [name for name, var in ds.data_vars.items() if "vertex" in var.dims]
    if len(candidates) != 1:
        raise ValueError(f"the file holds the variables {sorted(ds.data_vars)}: choose one with --variable")
    return candidates[0]


def _map_options(args: argparse.Namespace) -> dict:
    options = {
        "views": args.views,
        "hemi": args.hemi,
        "subject": args.subject,
        "percentile": args.percentile,
        "threshold": args.threshold,
        "cmap": args.cmap,
    }
    if getattr(args, "size", None):
        options["size"] = args.size
    return {k: v for k, v in options.items() if v is not None}


def _say(args: argparse.Namespace, text: str) -> None:
    if not args.quiet:
        print(text)


def _comma_list(value: str) -> list[str]:
    """``"a, b,,c"`` -> ``["a", "b", "c"]``."""
    return [part.strip() for part in value.split(",") if part.strip()]


def _views(value: str) -> list[str]:
    from .viz import VIEWS

    views = _comma_list(value)
    unknown = [v for v in views if v not in VIEWS]
    if not views or unknown:
        raise argparse.ArgumentTypeError(f"expected comma-separated views among {', '.join(VIEWS)}, got {value!r}")
    return views


def _picture_size(value: str) -> tuple[int, int]:
    from .viz.scene import MAX_PICTURE_PX, picture_size

    try:
        return picture_size(value.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected WIDTHxHEIGHT in pixels, from 16x16 to {MAX_PICTURE_PX}x{MAX_PICTURE_PX} (e.g. 480x360), "
            f"got {value!r}"
        ) from None


def _add_map_options(command: argparse.ArgumentParser, *, picture_size: bool) -> None:
    command.add_argument(
        "results", help="a Dataset written by `tribev2 predict` or tribev2.save_dataset (.nc or .zarr)"
    )
    command.add_argument(
        "--views",
        type=_views,
        help="comma-separated views: lateral, medial, dorsal, ventral, anterior, posterior (default: lateral)",
    )
    command.add_argument("--hemi", choices=("left", "right", "both"), help="hemispheres shown (default: both)")
    command.add_argument("--subject", help="the subject row shown (default: 'average' when present, else the first)")
    command.add_argument("--percentile", type=float, help="colour limits at this percentile of |values| (e.g. 99)")
    command.add_argument("--threshold", type=float, help="values with |value| below it show the cortex gray")
    command.add_argument("--cmap", help="a matplotlib colormap name (default: RdBu_r for signed data)")
    if picture_size:
        command.add_argument(
            "--size", type=_picture_size, metavar="WxH", help="pixels of one hemisphere's picture (default: 480x360)"
        )
    command.add_argument("-q", "--quiet", action="store_true", help="no progress bar or summary")


# -- convert ---------------------------------------------------------------------------------------------------
def _convert(args: argparse.Namespace) -> int:
    from .model import convert

    check_writable(args.output, "output folder")  # before the checkpoint is read
    out = convert(args.source, args.output)
    print(f"wrote {out}/model.safetensors, build_args.json, config.yaml")
    return 0


# -- doctor ----------------------------------------------------------------------------------------------------
def _doctor(args: argparse.Namespace) -> int:
    checks = [
        _check_python_packages,
        _check_device,
        _check_espeak,
        _check_spacy,
        _check_whisper,
        _check_chromium,
        _check_caches,
        _check_hub,
    ]
    failed = 0
    for check in checks:
        for status, name, detail in _never_crashing(check):
            failed += status == "missing"
            print(f"[{status:^7}] {name}: {detail}")
    print("everything needed is there" if not failed else f"{failed} thing(s) missing: see the lines above")
    return 1 if failed else 0


def _never_crashing(check):
    """The lines of one doctor check; a check that fails (a broken install, an odd network error) is a line."""
    try:
        yield from check()
    except Exception as err:  # doctor must report every other check whatever one of them meets
        name = check.__name__.removeprefix("_check_").replace("_", " ")
        yield "missing", name, f"the check failed: {type(err).__name__}: {err}"


def _check_python_packages():
    for module, extra, purpose in (
        ("av", "media", "video and audio decoding"),
        ("soundfile", "media", "audio files"),
        ("faster_whisper", "media", "speech recognition"),
        ("spacy", "media", "sentence splitting"),
        ("pyvista", "viz", "3-D cortex views"),
    ):
        try:
            version = getattr(importlib.import_module(module), "__version__", "installed")
            yield "ok", module, f"{version} ({purpose})"
        except Exception:  # ImportError, or a broken install that fails while importing
            yield "missing", module, f"needed for {purpose}: pip install 'tribev2[{extra}]'"


def _check_device():
    import torch

    if torch.cuda.is_available():
        yield "ok", "GPU", f"CUDA: {torch.cuda.get_device_name(0)} (torch {torch.__version__})"
    elif getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        yield "ok", "GPU", f"Apple MPS (torch {torch.__version__})"
    else:
        yield (
            "note",
            "GPU",
            (
                f"none: everything runs on the CPU (torch {torch.__version__}); the released "
                f"extractors are slow there, consider a CUDA machine"
            ),
        )


def _check_espeak():
    if shutil.which("espeak-ng"):
        yield "ok", "espeak-ng", f"{shutil.which('espeak-ng')} (reads .txt stimuli aloud)"
    else:
        yield (
            "missing",
            "espeak-ng",
            (
                "needed to read .txt stimuli aloud: apt-get install espeak-ng (Debian/Ubuntu), "
                "brew install espeak-ng (macOS); media files and transcripts work without it"
            ),
        )


def _check_spacy():
    from .events.language import spacy_pipeline_name

    name = spacy_pipeline_name("english")
    if name is None:
        yield (
            "missing",
            "spaCy English pipeline",
            (
                "none installed: sentences would be split by rules; "
                "python -m spacy download en_core_web_lg (the reference's)"
            ),
        )
    elif "_lg" in name:
        yield "ok", "spaCy English pipeline", name
    else:
        yield (
            "note",
            "spaCy English pipeline",
            (f"{name} (the reference used en_core_web_lg: python -m spacy download en_core_web_lg)"),
        )


def _check_whisper():
    from .events.asr import WHISPER_MODEL_VARIABLE, packaged_tiny_whisper, whisper_model_name

    name = whisper_model_name()
    local = Path(name).expanduser()
    if local.exists():
        found = (local / "model.bin").is_file()
    else:
        from faster_whisper.utils import _MODELS
        from huggingface_hub import try_to_load_from_cache

        found = isinstance(try_to_load_from_cache(_MODELS.get(name, name), "model.bin"), str)
    if found:
        yield "ok", "Whisper model", f"{name} (speech recognition)"
    else:
        tiny = packaged_tiny_whisper()
        hint = f"; an offline tiny.en model is at {tiny}" if tiny else ""
        yield (
            "note",
            "Whisper model",
            (
                f"{name} is not downloaded yet: it downloads on first use (about 3 GB for "
                f"large-v3), or set {WHISPER_MODEL_VARIABLE} to a local model{hint}"
            ),
        )


def _check_chromium():
    found = next((shutil.which(p) for p in ("chromium", "chromium-browser", "google-chrome") if shutil.which(p)), None)
    if found:
        yield "ok", "chromium", f"{found} (HTML reports to PDF/PNG)"
    else:
        yield "note", "chromium", "not found: only needed to render HTML reports (apt-get install chromium)"


def _check_caches():
    from .cache import cache_root

    root = cache_root()
    try:
        root.mkdir(parents=True, exist_ok=True)
        probe = root / ".doctor-write-test"
        probe.write_text("ok")
        probe.unlink()
    except OSError as err:
        yield "missing", "cache", f"{root} is not writable ({err}); set TRIBEV2_CACHE to a writable folder"
        return
    size = sum(p.stat().st_size for p in root.rglob("*") if p.is_file())
    yield "ok", "cache", f"{root} ({size / 1e6:.1f} MB; TRIBEV2_CACHE moves it)"
    from huggingface_hub.constants import HF_HUB_CACHE

    yield "ok", "Hugging Face cache", HF_HUB_CACHE


def _check_hub():
    from huggingface_hub import constants, try_to_load_from_cache

    from .model import CHECKPOINT_FILE, DEFAULT_SOURCE
    from .sources import configured_weights

    cached = isinstance(try_to_load_from_cache(DEFAULT_SOURCE, CHECKPOINT_FILE), str)
    weights = configured_weights()
    if weights:
        yield "ok", "brain weights", f"TRIBEV2_WEIGHTS={weights}"
    elif cached:
        yield "ok", "brain weights", f"{DEFAULT_SOURCE} is in the Hugging Face cache"
    if constants.HF_HUB_OFFLINE:
        yield "note", "Hugging Face Hub", "offline (HF_HUB_OFFLINE=1): only cached models can be used"
        if not weights and not cached:
            yield "missing", "brain weights", f"{DEFAULT_SOURCE} is not cached; download it once while online"
        return
    from huggingface_hub import auth_check
    from huggingface_hub.errors import GatedRepoError, HfHubHTTPError

    for repo, what in ((DEFAULT_SOURCE, "brain weights"), ("meta-llama/Llama-3.2-3B", "text model (gated)")):
        try:
            auth_check(repo)
            yield "ok", "Hugging Face Hub", f"{repo} reachable ({what})"
        except GatedRepoError:
            yield (
                "missing",
                "Hugging Face Hub",
                (f"{repo} is gated: request access on its page and log in with `hf auth login` ({what})"),
            )
        except (HfHubHTTPError, OSError) as err:
            yield "missing", "Hugging Face Hub", f"{repo} not reachable ({type(err).__name__}): check the network"
        except Exception as err:  # requests/httpx/urllib3 errors that are not OSErrors, proxies, TLS
            yield "missing", "Hugging Face Hub", f"{repo} not reachable ({type(err).__name__}: {err})"


# -- the parser ------------------------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tribev2", description="Run the TRIBE v2 brain-encoding model.", epilog=_EPILOG
    )
    sub = parser.add_subparsers(dest="command", required=True)

    predict = sub.add_parser(
        "predict",
        help="predict cortical activity for a video, audio, text or transcript file",
        epilog=_EPILOG,
        description="Stimulus -> events (audio track, words from speech recognition or a transcript, sentences) "
        "-> features per 100-s window -> brain model -> a Dataset (time x vertex x subject) with the "
        "events, written as NetCDF (.nc, default) or Zarr (.zarr). Open it with "
        "tribev2.open_dataset.",
    )
    predict.add_argument(
        "stimulus",
        help="video (.mp4 .mkv .mov .avi .webm), audio (.wav .mp3 .flac .ogg .m4a), "
        "text (.txt: read aloud, then transcribed), transcript (.json .tsv .csv "
        ".srt .vtt) or events table (.parquet, or .tsv with a 'type' column)",
    )
    predict.add_argument(
        "-o", "--output", help="where to write: .nc (NetCDF) or .zarr (default: <stimulus>.nc in the current folder)"
    )
    predict.add_argument(
        "--transcript",
        help="words with timings for the stimulus' speech (whisperX JSON, word "
        "list TSV/CSV/JSON, SRT/WebVTT): skips speech recognition",
    )
    _add_model_options(predict)
    predict.add_argument("--events", help="also write the events table to this TSV file")
    predict.set_defaults(run=_predict)

    many = sub.add_parser(
        "predict-many",
        help="predict many stimuli into one Zarr store, here or on a Dask cluster",
        epilog=_EPILOG + " predict-many exits with 2 when a stimulus failed (the others are in the store).",
        description="Every stimulus -> one group of a Zarr store (what predict writes for it), written atomically. "
        "A rerun with the same arguments computes only the stimuli that are not in the store. Failures "
        "are recorded in the store with their error. Open it with tribev2.open_many or "
        "xr.open_datatree(store, engine='zarr').",
    )
    many.add_argument(
        "stimuli",
        nargs="+",
        help="stimulus files, a quoted glob pattern ('clips/*.mp4') or a .txt file listing one path per line",
    )
    many.add_argument("--store", required=True, help="the Zarr store to write (a folder, e.g. out.zarr)")
    where = many.add_mutually_exclusive_group()
    where.add_argument("--scheduler", help="address of a running Dask scheduler (tcp://host:8786)")
    where.add_argument(
        "--local-workers",
        type=_positive_int,
        help="start a local Dask cluster of N worker processes (one per GPU with dask-cuda)",
    )
    many.add_argument(
        "--windows-per-task",
        type=_positive_int,
        default=8,
        help="model windows per Dask task: a long film is split into several (default: 8)",
    )
    _add_model_options(many)
    many.set_defaults(run=_predict_many)

    report = sub.add_parser(
        "report",
        help="an HTML page of a saved prediction: stimulus frames, words and brain, TR by TR",
        epilog=_EPILOG,
        description="Reads a saved prediction (its events give the frames and words) and "
        "writes one self-contained HTML file (tribev2.viz.save_report).",
    )
    _add_map_options(report, picture_size=True)
    report.add_argument("-o", "--output", help="the .html file (default: <results>.html in the current folder)")
    report.add_argument("--video", help="the stimulus video, where it is not where the events say (moved files)")
    report.add_argument("--title", help="the page's title")
    report.set_defaults(run=_report)

    movie = sub.add_parser(
        "movie",
        help="an MP4 of a saved prediction over time",
        epilog=_EPILOG,
        description="One frame per TR: the views side by side, a colorbar and the time (tribev2.viz.save_movie).",
    )
    _add_map_options(movie, picture_size=True)
    movie.add_argument("-o", "--output", help="the .mp4 file (default: <results>.mp4 in the current folder)")
    movie.add_argument("--fps", type=float, default=2.0, help="frames (TRs) per second (default: 2)")
    movie.set_defaults(run=_movie)

    plot = sub.add_parser(
        "plot",
        help="a figure of a saved result: maps, an evaluation, or region time courses",
        epilog=_EPILOG,
        description="Maps of a prediction at some times, an evaluation's r map, contributions "
        "as RGB, or with --roi the regions' mean time courses "
        "(ds.tribe.plot / plot_timecourse).",
    )
    _add_map_options(plot, picture_size=False)
    plot.add_argument("-o", "--output", help="the figure file: .png (default: <results>.png), .jpg, .pdf or .svg")
    plot.add_argument(
        "--time", type=_seconds, help="comma-separated times in seconds (default: three spread over the recording)"
    )
    plot.add_argument(
        "--roi",
        type=_comma_list,
        help="comma-separated region names or patterns: plot their time courses instead of maps",
    )
    plot.add_argument(
        "--variable",
        help="the Dataset variable to draw (default: prediction, an evaluation's "
        "pearson_r, or the only variable with a vertex dimension)",
    )
    plot.add_argument("--width", type=_figure_px, help="figure width in pixels (with --height)")
    plot.add_argument("--height", type=_figure_px, help="figure height in pixels (with --width)")
    plot.add_argument(
        "--dpi",
        type=lambda value: _positive_int(value, MAX_DPI),
        default=100,
        help="pixels per inch of the file (default: 100)",
    )
    plot.set_defaults(run=_plot)

    convert = sub.add_parser(
        "convert",
        help="write model.safetensors + build_args.json + config.yaml from a best.ckpt folder or hub repo id",
        description="Convert a Lightning checkpoint (config.yaml + best.ckpt) into the "
        "safetensors form. The converted folder loads to identical weights.",
        epilog=_EPILOG,
    )
    convert.add_argument("source", help="folder holding config.yaml and best.ckpt, or a Hugging Face repo id")
    convert.add_argument("output", help="folder to write (created if missing)")
    convert.set_defaults(run=_convert)

    doctor = sub.add_parser(
        "doctor",
        help="check what is installed and say what is missing",
        description="Checks the Python media packages, GPU, espeak-ng, spaCy pipelines, the "
        "Whisper model, chromium, the caches and Hugging Face Hub access "
        "(no network call when HF_HUB_OFFLINE=1). Exit code 1 if something "
        "needed is missing.",
    )
    doctor.set_defaults(run=_doctor)
    return parser


def _add_model_options(parser: argparse.ArgumentParser) -> None:
    """The options that choose the models and what a prediction holds (predict and predict-many)."""
    parser.add_argument("--language", default="english", help="language of the speech (default: english)")
    parser.add_argument(
        "--model",
        help="brain weights: a folder (config.yaml + best.ckpt or model.safetensors), "
        "a Hugging Face repo id, or 'demo' (default: $TRIBEV2_WEIGHTS, else "
        "facebook/tribev2)",
    )
    parser.add_argument(
        "--text-model",
        help="text feature model (folder or hub id) instead of the one the "
        "brain's config.yaml names (default: $TRIBEV2_EXTRACTORS=demo for the "
        "demo extractors)",
    )
    parser.add_argument("--audio-model", help="audio feature model (folder or hub id)")
    parser.add_argument("--video-model", help="video feature model (folder or hub id)")
    parser.add_argument(
        "--modalities",
        type=_comma_list,
        help="comma-separated subset of text,audio,video to use (the others count as missing)",
    )
    parser.add_argument(
        "--asr-model",
        help="Whisper model for speech recognition: a faster-whisper name "
        "(large-v3, tiny.en, ...) or folder (default: $TRIBEV2_WHISPER_MODEL, "
        "else large-v3)",
    )
    parser.add_argument(
        "--subjects",
        help="'average' (the shared row for new people), 'all', or row numbers 0,1,... "
        "(default: the model's default subject, 'average' for the release)",
    )
    parser.add_argument(
        "--atlas",
        default=DEFAULT_ATLAS,
        help=f"parcellation for the roi coordinate (default: {DEFAULT_ATLAS}; see tribev2.load_atlas), or 'none'",
    )
    parser.add_argument(
        "--device", default="auto", help="auto (default: CUDA, then MPS, then CPU), cpu, cuda, cuda:1, mps"
    )
    parser.add_argument(
        "--precision",
        choices=("auto", "exact", "fast"),
        default="auto",
        help="exact: float32 everywhere (the reference's numbers); fast: bfloat16 arithmetic in the extractors "
        "and brain model (several times faster on GPUs); auto (default): fast on CUDA, else exact",
    )
    parser.add_argument(
        "--text-mode",
        choices=("exact", "windowed"),
        help="exact (default): past the 1,024-word context cap each word gets a pass of its own, as "
        "in the reference; windowed: runs of 128 words share one pass (~100x fewer passes)",
    )
    parser.add_argument(
        "--hop",
        type=float,
        metavar="SECONDS",
        help="overlap the 100-s model windows: start one every SECONDS (a whole number of TRs; "
        "about 100/SECONDS times the compute); each TR comes from the window where it is most "
        "central (default: back to back, as the reference)",
    )
    parser.add_argument(
        "--batch-size", type=_positive_int, default=8, help="windows per brain-model batch (default: 8)"
    )
    parser.add_argument("--cache-dir", help="cache root for this run (default: $TRIBEV2_CACHE, else ~/.cache/tribev2)")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bars or summary")


def main(argv: list[str] | None = None) -> int:
    from .checks import WriteError
    from .events import ModelUnavailableError
    from .features import ExtractorLoadError

    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except WriteError as err:
        print(f"tribev2 {args.command}: error: {err}", file=sys.stderr)
        return EXIT_CANNOT_WRITE
    except (ModelUnavailableError, ExtractorLoadError, SchedulerUnavailableError) as err:
        print(f"tribev2 {args.command}: error: {err}", file=sys.stderr)
        return EXIT_UNAVAILABLE
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError, PermissionError, ValueError) as err:
        print(f"tribev2 {args.command}: error: {err}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print(f"tribev2 {args.command}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
