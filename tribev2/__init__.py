"""tribev2: run the TRIBE v2 multimodal brain-encoding model and get predicted cortical activity as xarray."""

__version__ = "0.1.0"

from .analysis import contributions, evaluate  # noqa: E402  (registers the ds.tribe accessor)
from .atlas import Atlas, load_atlas  # noqa: E402
from .events import events_from  # noqa: E402
from .features import extract_features  # noqa: E402
from .io import open_dataset, save_dataset  # noqa: E402
from .model import load_model  # noqa: E402
from .predict import events_table, predict, predict_features  # noqa: E402  (tribev2.predict is then the function)
from . import viz  # noqa: E402  (cheap: PyVista and matplotlib load on first use)

__all__ = ["__version__", "Atlas", "contributions", "evaluate", "events_from", "events_table", "extract_features",
           "load_atlas", "load_model", "open_dataset", "predict", "predict_features", "save_dataset"]
