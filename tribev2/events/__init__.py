"""Events: what happens when in a stimulus (media chunks, words, sentences, the text), as a pandas table.

``events_from(path)`` builds it from a video, audio, text or transcript file; the sub-modules hold each step:
``table`` (columns, ordering), ``media`` (stimulus kinds, soundtrack extraction), ``chunks`` (60-s chunks),
``transcripts`` (readers), ``asr`` (faster-whisper), ``tts`` (espeak-ng), ``language`` (Text, Sentence,
context), ``pipeline`` (``events_from``).
"""

from .asr import ModelUnavailableError, packaged_tiny_whisper, transcribe
from .language import add_text_events, sentence_splitter
from .pipeline import check_recognition, events_from
from .table import EVENT_COLUMNS, check_events, standardize_events
from .transcripts import read_transcript, words_from_segments, words_from_whisperx
from .tts import TTS_ENGINES, synthesize

__all__ = [
    "EVENT_COLUMNS",
    "ModelUnavailableError",
    "TTS_ENGINES",
    "add_text_events",
    "check_events",
    "check_recognition",
    "events_from",
    "packaged_tiny_whisper",
    "read_transcript",
    "sentence_splitter",
    "standardize_events",
    "synthesize",
    "transcribe",
    "words_from_segments",
    "words_from_whisperx",
]
