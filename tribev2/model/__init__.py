"""The TRIBE v2 brain model: configuration, modules, loading and conversion."""

from .config import BrainConfig, ConfigError, read_yaml
from .loading import CheckpointError, convert, load_model, resolve_device
from .tribe import TribeModel

__all__ = ["BrainConfig", "CheckpointError", "ConfigError", "TribeModel", "convert", "load_model", "read_yaml",
           "resolve_device"]
