"""Progress bars: ours (tqdm) and the libraries' (transformers' "Loading weights", huggingface_hub's downloads),
switched together by the ``progress=`` argument of the public functions.

- ``progress=False`` runs the call inside :func:`progress_bars` ``(False)``: no bar from tribev2, transformers or
  huggingface_hub is drawn, and their global switches are put back as they were when the call returns (an
  exception included). The switches are process-wide: another thread loading a model meanwhile is quiet too.
- One bar per stage: :func:`stage_bar` (e.g. the windows of :func:`tribev2.predict`) hides the bars started
  while it runs (each extractor's per-event bars, the libraries' loading bars) and shows what happens in its
  postfix instead (:func:`note`, e.g. "loading text model").
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

_QUIET = contextvars.ContextVar("tribev2_quiet", default=False)  # inside progress_bars(False)
_STAGE = contextvars.ContextVar("tribev2_stage", default=None)  # the stage bar showing, if any


@contextmanager
def progress_bars(enabled: bool | None) -> Iterator[None]:
    """Within the block, ``enabled=False`` draws no progress bar (ours, transformers', huggingface_hub's);
    ``True`` or ``None`` change nothing. What was switched off is switched back on at the end."""
    if enabled is not False:
        yield
        return
    from huggingface_hub import utils as hub
    from transformers.utils import logging as transformers_logging

    hub_was_off, transformers_was_on = hub.are_progress_bars_disabled(), transformers_logging.is_progress_bar_enabled()
    outer = _QUIET.get()
    _QUIET.set(True)
    transformers_logging.disable_progress_bar()  # switches the hub's off too
    try:
        yield
    finally:
        _QUIET.set(outer)  # not reset(token): a stage's generator may be closed from another context
        if transformers_was_on:
            transformers_logging.enable_progress_bar()  # switches the hub's on too
        if hub_was_off:
            hub.disable_progress_bars()
        elif not transformers_was_on:
            hub.enable_progress_bars()


def quiet() -> bool:
    """Whether bars are hidden here: inside ``progress_bars(False)``, or under a stage bar."""
    return _QUIET.get() or _STAGE.get() is not None


def bar(iterable: Iterable | None = None, *, enabled: bool | None = True, **tqdm_options):
    """A tqdm bar (``tqdm.auto``: a widget in notebooks), drawn when ``enabled`` (``None``: when the output is
    a terminal or a notebook) and not :func:`quiet`; it disappears when done."""
    from tqdm.auto import tqdm

    return tqdm(
        iterable, disable=True if quiet() else (None if enabled is None else not enabled), leave=False, **tqdm_options
    )


def stage_bar(items, *, enabled: bool | None, desc: str, **tqdm_options) -> Iterator:
    """Iterate over ``items`` under one bar named ``desc``; bars started meanwhile are hidden (see the module
    documentation). A stage of one item shows no bar of its own: the bars started in it show instead."""
    with bar(items, enabled=enabled and len(items) > 1, desc=desc, **tqdm_options) as stage:
        shown, outer = not stage.disable, _STAGE.get()
        with progress_bars(False if enabled is False or shown else None):
            for item in stage:
                _STAGE.set(stage if shown else outer)
                try:
                    yield item
                finally:
                    _STAGE.set(outer)


def note(text: str) -> None:
    """Show ``text`` beside the running stage bar (nothing when there is none)."""
    stage = _STAGE.get()
    if stage is not None and not stage.disable:
        stage.set_postfix_str(text)
