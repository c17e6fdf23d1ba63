"""Seeing the brain: figures, an interactive notebook viewer, MP4 movies and a stimulus-aligned HTML report.

======================================  ====================================================================
``plot_surface(ds, time=..., views=)``  matplotlib figure, views × time points, one colour scale, colorbar
``plot_contributions(contributions)``   text / audio / video contributions as one RGB map
``plot_timecourse(ds, roi=[...])``      region means over time, one line per region
``plot_evaluation(scores)``             what ``tribev2.evaluate`` returns: r map, or the best regions
``ds.tribe.plot(time=...)``             the figure the data calls for (maps, evaluation, contributions)
``ds.tribe.plot_timecourse(roi=...)``   as ``plot_timecourse``
``render(data, view=...)``              one view as an ``(H, W, 3)`` image array
``brain(ds, ...)``                      interactive viewer (PyVista + ipywidgets): time, views, regions
``view(ds)``                            the brain in one self-contained HTML page (WebGL): no kernel, no network
``save_movie(ds, "out.mp4")``           MP4 of the prediction over time (PyAV)
``save_report(ds, "out.html", ...)``    one self-contained HTML page: stimulus frames, words, brain per TR
======================================  ====================================================================

Rendering is done by PyVista, off-screen when there is no display (EGL; set
``VTK_DEFAULT_OPENGL_WINDOW=vtkEGLRenderWindow`` on headless machines to skip the X11 attempt). Importing this
package is cheap: PyVista and matplotlib load on first use.
"""

from __future__ import annotations

import importlib

from . import accessor

_EXPORTS = {
    "plot_surface": "static",
    "plot_contributions": "static",
    "render": "static",
    "plot_data": "accessor",
    "plot_evaluation": "accessor",
    "plot_timecourse": "accessor",
    "brain": "viewer",
    "BrainViewer": "viewer",
    "view": "standalone",
    "BrainView": "standalone",
    "save_movie": "movie",
    "brain_frames": "movie",
    "save_report": "report",
    "BrainScene": "scene",
    "brain_maps": "scene",
    "VIEWS": "scene",
}
__all__ = sorted(_EXPORTS)

accessor.attach()  # ds.tribe.plot and ds.tribe.plot_timecourse (the analysis layer never imports viz)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'tribev2.viz' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    globals()[name] = value
    return value


def __dir__():
    return __all__
