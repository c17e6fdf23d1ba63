"""tribev2: run the TRIBE v2 multimodal brain-encoding model and get predicted cortical activity as xarray."""

from ._version import __version__
from .analysis import contributions, evaluate  # registers the ds.tribe accessor
from .atlas import Atlas, load_atlas
from .dataset import events_table
from .events import events_from
from .features import extract_features
from .io import open_dataset, save_dataset
from .model import TribeModel, load_model
from .predict import predict, predict_features  # tribev2.predict is then the function
from .many import open_many, predict_many
from . import viz  # noqa: E402,I001  (last: viz sits on top; PyVista and matplotlib load on first use)

__all__ = ["__version__", "Atlas", "TribeModel", "contributions", "evaluate", "events_from", "events_table",
           "extract_features", "load_atlas", "load_model", "open_dataset", "open_many", "predict", "predict_features",
           "predict_many", "save_dataset", "viz"]
