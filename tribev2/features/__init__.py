"""Feature extraction: text, audio and video models turned into 2 Hz layer-group features per window.

``extract_features(events, extractors=..., start=..., duration=...)`` returns ``{modality: (L, D, T)}`` for one
window; :func:`extractors_from_config` builds the extractors a brain model's checkpoint was trained with
(``extractors_from_config(model.experiment_config)``).
"""

from .audio import AudioExtractor
from .base import (
    EventExtractor,
    Extractor,
    IncompatibleExtractorError,
    check_compatible,
    extract_features,
    feature_dims,
)
from .sources import RELEASE_SOURCES, ExtractorLoadError, extractors_from_config
from .text import TextExtractor
from .video import VideoExtractor

__all__ = [
    "RELEASE_SOURCES",
    "AudioExtractor",
    "EventExtractor",
    "Extractor",
    "ExtractorLoadError",
    "IncompatibleExtractorError",
    "TextExtractor",
    "VideoExtractor",
    "check_compatible",
    "extract_features",
    "extractors_from_config",
    "feature_dims",
]
