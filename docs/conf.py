"""Sphinx configuration of the documentation site: ``make docs`` (``sphinx -b html -c docs . docs/_build/html``).

Why Sphinx + MyST-NB: both are maintained, pure-Python packages that build with no network; MyST-NB renders the
committed notebooks as they are (``nb_execution_mode = "off"``: outputs as committed, nothing re-executed) and the
Markdown README and tutorials; autodoc turns the docstrings into the API reference; the Furo theme ships its CSS
and JavaScript inside its wheel (nothing fetched at build or view time). mkdocs-jupyter would do the notebooks as
well, but its API reference (mkdocstrings) is a further plugin stack, while autodoc is part of Sphinx.

The source folder is the repository itself, limited by ``include_patterns`` to README, tutorials, notebooks and
the pages of ``docs/``; links between them stay the ones that work on GitHub.
"""

import os
import sys

sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..")))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

project = "tribev2"
author = "the tribev2 developers"
root_doc = "docs/index"
extensions = ["myst_nb", "sphinx.ext.autodoc", "sphinx.ext.viewcode"]
include_patterns = ["docs/*.md", "tutorials/*.md", "notebooks/*.ipynb"]
exclude_patterns = ["docs/_build", "**/.ipynb_checkpoints"]
suppress_warnings = ["myst.header", "myst.xref_missing", "misc.highlighting_failure"]

html_theme = "furo"
html_title = "tribev2"
html_static_path = []
html_extra_path = ["_extra"]  # index.html at the top of the site, pointing at docs/index.html

# notebooks: outputs as committed; a widget's view needs its JavaScript from a CDN, so the image beside it is shown
nb_execution_mode = "off"
nb_ipywidgets_js = {}
nb_mime_priority_overrides = [("html", "application/vnd.jupyter.widget-view+json", None),
                              ("html", "application/vnd.jupyter.widget-state+json", None)]
myst_enable_extensions = ["colon_fence", "dollarmath"]
myst_heading_anchors = 3

autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_default_options = {"members": True, "undoc-members": False, "show-inheritance": False}
