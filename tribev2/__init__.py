"""tribev2: run the TRIBE v2 multimodal brain-encoding model and get predicted cortical activity as xarray."""

from . import viz  # noqa: E402,I001  (last: viz sits on top; PyVista and matplotlib load on first use)
from ._version import __version__
from .analysis import contributions, evaluate  # registers the ds.tribe accessor
from .atlas import Atlas, load_atlas
from .attribution import attribute, top_words
from .dataset import events_table
from .events import events_from
from .features import extract_features
from .fitting import FitReport, fit_subject
from .io import open_dataset, save_dataset
from .model import TribeModel, load_model
from .predict import predict, predict_features  # tribev2.predict is then the function
from .many import open_many, predict_many

__all__ = [
    "__version__",
    "Atlas",
    "FitReport",
    "TribeModel",
    "attribute",
    "contributions",
    "evaluate",
    "events_from",
    "events_table",
    "extract_features",
    "fit_subject",
    "load_atlas",
    "load_model",
    "open_dataset",
    "open_many",
    "predict",
    "predict_features",
    "predict_many",
    "save_dataset",
    "top_words",
    "viz",
]
