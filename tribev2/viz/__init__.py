"""Seeing the brain: figures, an interactive notebook viewer, MP4 movies and a stimulus-aligned HTML report.

======================================  ====================================================================
``plot_surface(ds, time=..., views=)``  matplotlib figure, views × time points, one colour scale, colorbar
``plot_contributions(contributions)``   text / audio / video contributions as one RGB map
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

_EXPORTS = {
    "plot_surface": "static", "plot_contributions": "static", "render": "static",
    "brain": "viewer", "BrainViewer": "viewer", "view": "standalone", "BrainView": "standalone",
    "save_movie": "movie", "brain_frames": "movie",
    "save_report": "report",
    "BrainScene": "scene", "brain_maps": "scene", "VIEWS": "scene",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'tribev2.viz' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    globals()[name] = value
    return value


def __dir__():
    return __all__
