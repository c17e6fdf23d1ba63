"""A self-contained HTML page that lines up, TR by TR, what was seen and heard with the predicted brain.

``save_report(ds, "report.html")`` writes one file (images inlined, no network needed to open it): the stimulus
frame at the middle of each TR, the words heard during it (the whole transcript, current words highlighted),
the cortex rendered off-screen, and a timeline with a time cursor (slider, play button, arrow keys, a click on
the timeline; ``report.html#t=12`` opens at 12 s).

Alignment: prediction row ``t`` covers the stimulus from ``t`` to ``t + TR`` and models the BOLD signal
``hemodynamic_offset_s`` (5 s) later; the page shows that row's brain beside that stretch of stimulus.
"""

from __future__ import annotations

import base64
import html
import io
import json
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..cache import atomic_path
from ..checks import is_whole_number
from ..progress import bar
from .movie import brain_frames
from .scene import MAX_PICTURE_PX, _pick_subject


def save_report(
    ds,
    path: str | os.PathLike,
    *,
    events=None,
    video: str | os.PathLike | None = None,
    views: str | Sequence[str] = ("lateral",),
    title: str | None = None,
    frame_width: int = 360,
    jpeg_quality: int = 85,
    progress: bool = False,
    **frame_options,
) -> Path:
    """Write the HTML report of a prediction Dataset to ``path`` (``.html``) and return the path.

    ``ds``: what :func:`tribev2.predict` returns (its events give the frames and words); a Dataset from
    :func:`tribev2.predict_features` works with ``events=`` (an events table) or ``video=`` (a video file
    that starts with the stimulus), or shows the brain alone. ``views`` and ``frame_options`` (``hemi``,
    ``surface``, ``cmap``, ``vmin``/``vmax``, ``percentile``, ``threshold``, ``outlines``, ``subject``,
    ``size``...) are those of :func:`tribev2.viz.brain_frames`. ``frame_width``: pixels of the stimulus
    frames. The file is written atomically. ``progress``: a bar over the brain pictures.
    """
    from ..dataset import attach_events, events_table

    path = Path(path)
    if path.suffix.lower() not in (".html", ".htm"):
        raise ValueError(f"{path}: expected a file name ending in .html")
    for name, value, low, high in (
        ("frame_width", frame_width, 16, MAX_PICTURE_PX),
        ("jpeg_quality", jpeg_quality, 1, 100),
    ):
        if not is_whole_number(value, low, high):
            raise ValueError(f"{name}={value!r}: expected a whole number from {low} to {high}")
    if events is not None:
        ds = attach_events(ds, events)
    if "time" not in ds.dims:
        raise ValueError("the Dataset has no 'time' dimension: a report follows a prediction over time")
    if "time" in frame_options:
        raise ValueError(
            "save_report shows every TR of the Dataset; to show some, select them first (ds.sel(time=slice(10, 30)))"
        )
    table = events_table(ds) if "event_type" in ds.coords else None
    times = np.asarray(ds["time"].values, dtype=np.float64)
    tr = float(ds["time"].attrs.get("tr_s", np.median(np.diff(times)) if len(times) > 1 else 1.0))
    pictures = bar(
        brain_frames(ds, views=views, **frame_options),
        enabled=progress,
        total=ds.sizes["time"],
        desc="brain pictures",
        unit="TR",
    )
    brains = [_jpeg(image, jpeg_quality) for _, image in pictures]
    videos = _video_rows(table, video)
    frames = _stimulus_frames(videos, times + tr / 2, frame_width, jpeg_quality) if videos else [None] * len(times)
    words = table[table["type"] == "Word"] if table is not None else None
    prediction = ds["prediction"]
    if "subject" in prediction.dims:  # the subject the brain pictures show
        prediction = prediction.sel(subject=_pick_subject(prediction, frame_options.get("subject")))
    data = {
        "times": times.tolist(),
        "tr": tr,
        "offset": float(ds["time"].attrs.get("hemodynamic_offset_s", 0.0)),
        "brain": brains,
        "frames": frames,
        "words": []
        if words is None
        else [[str(w), float(s), float(s + d)] for w, s, d in zip(words["text"], words["start"], words["duration"])],
        "trWords": [str(w) for w in ds["words"].values] if "words" in ds.coords else [""] * len(times),
        "mean": np.nan_to_num(prediction.mean("vertex").values.astype(float)).round(6).tolist(),
    }
    page = _PAGE.replace("{{title}}", html.escape(title or _default_title(ds)))
    page = page.replace("{{details}}", html.escape(_details(ds)))
    page = page.replace("{{data}}", json.dumps(data).replace("</", "<\\/"))
    with atomic_path(path) as tmp:
        tmp.write_text(page, encoding="utf-8")
    return path


def _video_rows(table, video) -> list[tuple[float, float, float, str]]:
    """``(start, stop, offset, file)`` of the stimulus' video pieces on the timeline."""
    if video is not None:
        from ..media import probe

        info = probe(video)
        if not info.has_video:
            raise ValueError(f"video={video}: the file has no video stream")
        return [(0.0, info.duration, 0.0, str(video))]
    if table is None:
        return []
    rows = table[table["type"] == "Video"]
    missing = sorted({str(f) for f in rows["filepath"] if not Path(str(f)).is_file()})
    if missing:
        raise FileNotFoundError(
            f"the stimulus video {', '.join(missing)} is not where the events table says; "
            f"pass video=<its new path> to save_report"
        )
    return [
        (float(s), float(s + d), float(o) if np.isfinite(o) else 0.0, str(f))
        for s, d, o, f in zip(rows["start"], rows["duration"], rows["offset"], rows["filepath"])
    ]


def _stimulus_frames(videos, at: np.ndarray, width: int, quality: int) -> list[str | None]:
    """A JPEG data URL of the frame shown at each timeline time in ``at`` (``None`` where no video plays)."""
    from ..media import frame_index, iter_frames, probe

    rates = {file: probe(file).fps for *_, file in videos}
    wanted: dict[str, dict[int, list[int]]] = {}  # file -> frame index -> positions in ``at``
    for position, t in enumerate(at):
        for start, stop, offset, file in videos:
            if start <= t < stop:
                index = int(frame_index(t - start + offset, rates[file]))
                wanted.setdefault(file, {}).setdefault(index, []).append(position)
                break
    frames: list[str | None] = [None] * len(at)
    for file, indices in wanted.items():
        last_seen = None
        for index, image in iter_frames(file, first=min(indices), last=max(indices)):
            last_seen = image
            for position in indices.pop(index, []):
                frames[position] = _jpeg(_resize(image, width), quality)
        for positions in indices.values():  # past the file's last frame: hold it, as a player does
            for position in positions:
                frames[position] = _jpeg(_resize(last_seen, width), quality) if last_seen is not None else None
    return frames


def _resize(image: np.ndarray, width: int) -> np.ndarray:
    from PIL import Image

    height = max(1, round(image.shape[0] * width / image.shape[1]))
    return np.asarray(Image.fromarray(image).resize((width, height), Image.Resampling.BILINEAR))


def _jpeg(image: np.ndarray, quality: int) -> str:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="jpeg", quality=quality)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _default_title(ds) -> str:
    stimulus = ds.attrs.get("stimulus_path") or "stimulus"
    return f"tribev2: {Path(str(stimulus)).name}"


def _details(ds) -> str:
    parts = [
        f"model: {ds.attrs.get('model') or '?'}",
        f"mesh: {ds.attrs.get('mesh', '?')}",
        f"modalities: {ds.attrs.get('modalities', '?')}",
    ]
    if ds.attrs.get("note"):
        parts.append(str(ds.attrs["note"]))
    return " · ".join(parts)


_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{{title}}</title>
<style>
 body { font-family: system-ui, sans-serif; margin: 16px; color: #222; background: #fff; }
 h1 { font-size: 18px; margin: 0 0 2px; } .details { color: #666; font-size: 12px; margin-bottom: 10px; }
 .panels { display: flex; gap: 16px; align-items: flex-start; }
 .panel { display: flex; flex-direction: column; align-items: flex-start; gap: 4px; }
 .panel h2 { font-size: 13px; margin: 0; color: #555; }
 .panel.brain { flex: 1 1 0; min-width: 240px; } .panel.brain img { max-width: 100%; height: auto; }
 #frame { background: #000; } #noframe { color: #888; font-size: 13px; padding: 20px; border: 1px dashed #bbb; }
 #now { font-size: 20px; min-height: 28px; font-weight: 600; }
 .controls { display: flex; gap: 10px; align-items: center; margin: 10px 0; }
 #slider { width: 480px; } #clock { font-variant-numeric: tabular-nums; font-size: 13px; }
 #timeline { border: 1px solid #ddd; cursor: pointer; display: block; }
 #transcript { max-width: 980px; line-height: 1.7; font-size: 14px; margin-top: 10px; }
 #transcript span.on { background: #ffd54f; border-radius: 3px; }
</style></head>
<body>
<h1>{{title}}</h1><div class="details">{{details}}</div>
<div class="panels">
 <div class="panel"><h2 id="frameTitle">stimulus</h2><img id="frame" alt="stimulus frame">
  <div id="noframe" hidden>no video in this stimulus</div><div id="now"></div></div>
 <div class="panel brain"><h2 id="brainTitle">predicted BOLD</h2>
  <img id="brain" alt="predicted cortical activity"></div>
</div>
<div class="controls"><button id="play">&#9654; play</button><input id="slider" type="range" min="0" value="0">
 <span id="clock"></span></div>
<svg id="timeline" width="980" height="90"></svg>
<div id="transcript"></div>
<script id="data" type="application/json">{{data}}</script>
<script>
const D = JSON.parse(document.getElementById("data").textContent);
const n = D.times.length, el = id => document.getElementById(id);
const slider = el("slider"), svg = el("timeline"), W = 980, H = 90, pad = 30;
slider.max = n - 1;
const tEnd = D.times[n - 1] + D.tr, x = t => pad + (W - 2 * pad) * t / tEnd;
const lo = Math.min(...D.mean), hi = Math.max(...D.mean), y = v => H - 18 - (H - 30) * (v - lo) / ((hi - lo) || 1);
const NS = "http://www.w3.org/2000/svg", add = (tag, attrs) => {
  const e = document.createElementNS(NS, tag); for (const k in attrs) e.setAttribute(k, attrs[k]);
  svg.appendChild(e); return e; };
add("polyline", {points: D.mean.map((v, i) => x(D.times[i] + D.tr / 2) + "," + y(v)).join(" "),
                 fill: "none", stroke: "#1976d2", "stroke-width": 1.5});
add("text", {x: pad, y: 11, "font-size": 10, fill: "#666"}).textContent = "mean predicted BOLD over the cortex";
D.words.forEach(w => add("rect", {x: x(w[1]), y: H - 14, width: Math.max(1, x(w[2]) - x(w[1])), height: 8,
                                  fill: "#ffb300", opacity: 0.8}));
for (let s = 0; s <= tEnd; s += Math.max(1, Math.round(tEnd / 10))) {
  add("text", {x: x(s), y: H - 1, "font-size": 9, fill: "#888", "text-anchor": "middle"}).textContent = s + " s"; }
const cursor = add("rect", {y: 14, height: H - 30, fill: "#e53935", opacity: 0.25});
const transcript = el("transcript"), spans = D.words.map(w => {
  const s = document.createElement("span"); s.textContent = w[0]; transcript.appendChild(s);
  transcript.appendChild(document.createTextNode(" ")); return s; });
let i = 0, timer = null;
function show(k) {
  i = Math.max(0, Math.min(n - 1, k)); slider.value = i;
  const t = D.times[i], f = D.frames[i];
  el("brain").src = D.brain[i];
  el("frame").hidden = !f; el("noframe").hidden = !!f; if (f) el("frame").src = f;
  el("frameTitle").textContent = "stimulus " + t.toFixed(1) + "\u2013" + (t + D.tr).toFixed(1) + " s";
  el("brainTitle").textContent = "predicted BOLD at " + (t + D.offset).toFixed(1) + " s (row t = " + t + " s)";
  el("now").textContent = D.trWords[i] || "\u00a0";
  el("clock").textContent = "t = " + t.toFixed(1) + " s  (" + (i + 1) + " / " + n + ")";
  cursor.setAttribute("x", x(t)); cursor.setAttribute("width", Math.max(2, x(t + D.tr) - x(t)));
  D.words.forEach((w, j) => spans[j].classList.toggle("on", w[1] < t + D.tr && w[2] > t));
}
function play() {
  if (timer) { clearInterval(timer); timer = null; el("play").innerHTML = "&#9654; play"; return; }
  el("play").innerHTML = "&#10074;&#10074; pause";
  timer = setInterval(() => { if (i >= n - 1) play(); else show(i + 1); }, 1000 * D.tr);
}
slider.oninput = () => show(+slider.value);
el("play").onclick = play;
svg.onclick = e => { const t = (e.offsetX - pad) / (W - 2 * pad) * tEnd; show(Math.floor(t / D.tr)); };
document.onkeydown = e => { if (e.key === "ArrowRight") show(i + 1); if (e.key === "ArrowLeft") show(i - 1); };
const start = /t=([0-9.]+)/.exec(location.hash);
show(start ? Math.round(parseFloat(start[1]) / D.tr) : 0);
</script></body></html>
"""
