"""The textbook demo model: the demo brain model plus one subject row *fitted* (with :func:`tribev2.fit_subject`,
never set by hand) to a synthetic subject whose cortex has textbook organisation.

The synthetic subject watches generated clips: three runs in which short blocks of video (moving shapes), sound
(tone and noise bursts) and speech-like text (timed words) come and go independently. Its BOLD at each vertex is
the feature energy of the modalities that drive the vertex's region, convolved with a canonical haemodynamic
response, plus noise: video drives the visual areas (V1-V4, MT/MST, FFC, ...), audio the auditory core and belt
(A1, belts, parabelt), text the temporal and frontal language areas (STS, TPOJ, 44/45, 55b, ...). The demo
extractors' features of those runs and this BOLD go through ``fit_subject``. One calibration of the seeded
base comes first: each modality's projector is scaled so that its features reach the encoder at one scale (the
demo video features are four times the others and would otherwise swamp every region's read-out; recorded in
the provenance); the fitted row is the model's default
subject, stored with the weights, so ``predict`` uses it with no ``subjects=``.

Everything it predicts is **synthetic textbook organisation, not TRIBE v2's learned responses**: it is there so
that figures and analyses (contributions, attributions, regions) show a recognisable organisation, and so that
the analysis chain can be checked against a planted truth.

Regions come from HCP-MMP1 when its files are available without the network (given by ``TRIBEV2_ATLAS_DIR`` or
already in the cache; ``atlas="HCP-MMP1"`` also allows the download), else from Desikan-Killiany, which ships
with the dev install (visual: pericalcarine, cuneus, lingual, lateral occipital, fusiform; auditory: transverse
temporal; language: banks of the STS, middle temporal, pars opercularis and triangularis). The atlas used is
recorded in the row's provenance.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from .atlas import AtlasUnavailableError, load_atlas
from .cache import cache_dir as cache_folder
from .events import events_from
from .events.table import media_row
from .features import extract_features, feature_dims
from .features.demo import demo_extractors
from .fitting import fit_subject
from .model import TribeModel
from .model.demo import demo_model
from .surface import mesh_for_vertices

TEXTBOOK_LABEL = "synthetic textbook organisation, not TRIBE v2's learned responses"
TEXTBOOK_SUBJECT = "textbook"
TEXTBOOK_SEED = 2028
TEXTBOOK_VERSION = 2  # bump when the recipe changes: the cached model is rebuilt (2: lossless runs video)
# A small encoder (the demo extractors' widths in, the release's mesh and head out): built and fitted in seconds.
GEOMETRY = {"hidden": 192, "depth": 2, "heads": 4, "low_rank_head": 256}
TEXTBOOK_AREAS = {
    "HCP-MMP1": {
        "video": (
            "V1",
            "V2",
            "V3",
            "V4",
            "V3A",
            "V3B",
            "V6",
            "V7",
            "V8",
            "LO1",
            "LO2",
            "LO3",
            "MT",
            "MST",
            "FST",
            "V4t",
            "PIT",
            "FFC",
            "VMV1",
            "VMV2",
            "VMV3",
            "VVC",
        ),
        "audio": ("A1", "LBelt", "MBelt", "PBelt", "RI", "A4"),
        "text": (
            "STSdp",
            "STSda",
            "STSvp",
            "STSva",
            "TPOJ1",
            "TPOJ2",
            "44",
            "45",
            "55b",
            "IFJa",
            "IFSp",
            "47l",
            "SFL",
            "PSL",
            "STGa",
            "TE1a",
        ),
    },
    "Desikan-Killiany": {
        "video": ("pericalcarine", "cuneus", "lingual", "lateraloccipital", "fusiform"),
        "audio": ("transversetemporal",),
        "text": ("bankssts", "middletemporal", "parsopercularis", "parstriangularis"),
    },
}
RUNS, RUN_S, BLOCK_S = 3, 240, 6.0
NOISE_SD = 0.5  # BOLD noise, in units of a modality's (z-scored) drive
_SENTENCE = (
    "the keeper climbed the stairs and lit the lamp before the ships came in while the wind turned and the "
    "boats rocked gently on the water as we walked along the pier counting ropes and gulls"
)
_WORDS = _SENTENCE.split()


def textbook_model(
    *,
    n_outputs: int | None = None,
    atlas: str | None = None,
    device: str = "auto",
    cache_dir: str | os.PathLike | None = None,
) -> TribeModel:
    """The demo model with a fitted ``"textbook"`` subject row as its default subject (see the module doc),
    built once (about half a minute on a laptop CPU) and cached under ``<cache root>/demo/``, then loaded with
    :meth:`TribeModel.from_pretrained`. ``n_outputs``: the mesh (default fsaverage5, as the release);
    ``atlas``: ``"HCP-MMP1"`` or ``"Desikan-Killiany"`` (default: HCP-MMP1 when available offline, else
    Desikan-Killiany). The row's provenance (``model.config.subject_provenance["textbook"]``, and the
    ``subject_provenance`` attribute of every Dataset it predicts) says it is synthetic."""
    n_outputs = n_outputs or 2 * 10242
    mesh = mesh_for_vertices(n_outputs)
    regions = textbook_atlas(atlas, mesh, cache_dir)
    extractors = demo_extractors(cache_dir=cache_dir, device="cpu", progress=False)
    dims = feature_dims(extractors)
    spec = json.dumps(
        [TEXTBOOK_VERSION, TEXTBOOK_SEED, n_outputs, regions.name, GEOMETRY, RUNS, RUN_S, dims], sort_keys=True
    )
    folder = cache_folder("demo", cache_dir) / f"textbook-{hashlib.sha256(spec.encode()).hexdigest()[:16]}"
    if not (folder / "model.safetensors").is_file():
        base = demo_model(feature_dims=dims, n_outputs=n_outputs, device="cpu", cache_dir=cache_dir, **GEOMETRY)
        with tempfile.TemporaryDirectory() as clips:
            runs = [events_from(run) for run in textbook_runs(Path(clips))]
            features = [extract_features(run, extractors=extractors, start=0.0, duration=float(RUN_S)) for run in runs]
            scales = _balance_projectors(base, features)
            bold = [textbook_bold(f, regions) for f in features]
            note = (
                f"{TEXTBOOK_LABEL}: {RUNS} synthetic runs of {RUN_S} s of generated clips; BOLD = feature "
                f"energy of video/audio/text in their {regions.name} areas * canonical HRF + noise (sd "
                f"{NOISE_SD:g}); demo projectors scaled by " + ", ".join(f"{m} {s:.3g}" for m, s in scales.items())
            )
            fitted, _ = fit_subject(
                base,
                runs,
                bold,
                name=TEXTBOOK_SUBJECT,
                default=True,
                extractors=extractors,
                note=note,
                device="cpu",
                cache_dir=cache_dir,
            )
        fitted.experiment_config = {**fitted.experiment_config, "tribev2_textbook": TEXTBOOK_LABEL}
        fitted.save_pretrained(folder)  # atomic
    return TribeModel.from_pretrained(folder, device=device)


def textbook_areas(atlas_name: str) -> dict[str, tuple[str, ...]]:
    """The regions each modality drives in the synthetic subject, in ``atlas_name``'s names."""
    return TEXTBOOK_AREAS[atlas_name]


# -- the synthetic subject ---------------------------------------------------------------------------------------
def textbook_runs(folder: Path) -> list[pd.DataFrame]:
    """Events tables of the synthetic runs: blocks of ``BLOCK_S`` seconds in which each modality is on or off
    independently (half the time each), with clips written into ``folder``."""
    from .data.make_demo_stimulus import demo_frame, write_mp4

    rng = np.random.default_rng(TEXTBOOK_SEED)
    fps, rate = 10, 16000
    video = write_mp4(folder / "shapes.mp4", lambda t: demo_frame(t, BLOCK_S), BLOCK_S, fps=fps, crf=0)
    audio = folder / "bursts.wav"
    import soundfile

    t = np.arange(int(BLOCK_S * rate)) / rate
    envelope = (np.sin(2 * np.pi * 1.5 * t) > 0).astype(np.float32)
    tone = 0.3 * np.sin(2 * np.pi * (300 + 200 * t) * t) + 0.1 * rng.standard_normal(len(t))
    soundfile.write(audio, (envelope * tone).astype(np.float32), rate)
    runs = []
    n_blocks = int(RUN_S / BLOCK_S)
    for _ in range(RUNS):
        on = rng.random((n_blocks, 3)) < 0.5  # (blocks, [video, audio, text])
        rows = []
        for block in range(n_blocks):
            start = block * BLOCK_S
            if on[block, 0]:
                rows.append(media_row("Video", video, duration=BLOCK_S, frequency=fps, start=start))
            if on[block, 1]:
                rows.append(media_row("Audio", audio, duration=BLOCK_S, frequency=rate, start=start))
            if on[block, 2]:
                words = rng.choice(_WORDS, size=int(BLOCK_S / 0.4))
                rows += [
                    {"type": "Word", "start": start + 0.4 * k, "duration": 0.3, "text": str(word)}
                    for k, word in enumerate(words)
                ]
        rows.append({"type": "Word", "start": RUN_S - 0.4, "duration": 0.3, "text": "end"})  # every run lasts RUN_S
        runs.append(pd.DataFrame(rows))
    return runs


def textbook_bold(features: dict[str, np.ndarray], regions) -> np.ndarray:
    """``(time, vertex)`` BOLD of the synthetic subject for one run's features ``{modality: (L, D, T)}`` at 2 Hz,
    one volume per second from 0: each modality's feature energy (z-scored), convolved with a canonical HRF,
    drives its regions; plus Gaussian noise."""
    names = np.asarray(regions.names, dtype=object)[regions.labels]
    areas = TEXTBOOK_AREAS[regions.name]
    n_time = next(iter(features.values())).shape[-1] // 2
    rng = np.random.default_rng([TEXTBOOK_SEED, n_time, *(int(x.sum() * 1e3) % 2**31 for x in features.values())])
    bold = NOISE_SD * rng.standard_normal((n_time, len(names)))
    hrf = _canonical_hrf()
    for modality, x in features.items():
        energy = (np.asarray(x, dtype=np.float64) ** 2).mean(axis=(0, 1))
        energy = energy[: 2 * n_time].reshape(n_time, 2).mean(axis=1)  # one value per second
        drive = np.convolve((energy - energy.mean()) / (energy.std() or 1.0), hrf)[:n_time]
        bold[:, np.isin(names, areas[modality])] += drive[:, None] / (drive.std() or 1.0)
    return bold.astype(np.float32)


def _balance_projectors(model: TribeModel, features: list[dict[str, np.ndarray]]) -> dict[str, float]:
    """Scale each modality's projector so that its features reach the encoder at one scale (the seeded demo
    weights know nothing of the demo extractors' very different feature sizes, and the video features, four times
    the others, would otherwise swamp every region's read-out). Returns the scales."""
    scales = {}
    with torch.no_grad():
        for modality, projector in model.projectors.items():
            x = np.concatenate([f[modality].reshape(-1, f[modality].shape[-1]) for f in features], axis=1)
            on = x[:, (x != 0).any(axis=0)]
            scales[modality] = 1.0 / float(np.sqrt((on.astype(np.float64) ** 2).mean()))
            projector.weight.mul_(scales[modality])
    return scales


def _canonical_hrf(tr_s: float = 1.0, length_s: float = 30.0) -> np.ndarray:
    """SPM's double-gamma haemodynamic response (peak near 5 s, undershoot near 15 s), unit peak."""
    from scipy.stats import gamma

    t = np.arange(0.0, length_s, tr_s)
    hrf = gamma.pdf(t, 6) - gamma.pdf(t, 16) / 6.0
    return hrf / hrf.max()


def textbook_atlas(atlas: str | None = None, mesh: str = "fsaverage5", root=None):
    """The atlas the textbook areas are named in: ``atlas``, else HCP-MMP1 when its files are at hand without
    the network, else Desikan-Killiany (installed with the dev extras)."""
    if atlas is not None:
        if atlas not in TEXTBOOK_AREAS:
            raise ValueError(f"atlas={atlas!r}: the textbook areas are named in {list(TEXTBOOK_AREAS)}")
        return load_atlas(atlas, mesh=mesh, cache_dir=root)
    try:
        return load_atlas("HCP-MMP1", mesh=mesh, download=False, cache_dir=root)
    except AtlasUnavailableError:
        return load_atlas("Desikan-Killiany", mesh=mesh, download=False, cache_dir=root)
