"""Text features: a causal language model's hidden states for each word in its context (release: Llama-3.2-3B).

What the reference does (``upstream.md`` §4.2-4.3, ``../shared/features/README.md`` items 1-3), per Word row:

* the input is the word's ``context`` (the running text ending with the word), tokenized without BOS;
* the word's tokens are the last ``max(1, n_context - n_prefix)`` tokens, where ``n_prefix`` counts the tokens
  of ``context[:-len(text)].rstrip()``; every hidden state (embedding output first) is averaged over them;
* 20 of the hidden states are kept, then averaged into layer groups (:mod:`tribev2.features.base`);
* each word is placed on the window's 2 Hz grid relative to the window start; words sharing a sample add up.

Speed-up with identical numbers: successive contexts usually extend each other (the context grows by one word
until it reaches the pipeline's 1,024-word cap), so in a causal model the states of a shorter context are the
first positions of the longer one. Words whose token ids are prefixes of one sequence share one forward pass
of that sequence; a word per forward is only needed once the context slides. The shortcut is checked to hold
for the loaded model (causal attention) before it is used. Past the cap every context slides by one word and
each word needs a pass of its own (``mode="exact"``, the default); sequences of similar lengths are batched and
the word means are taken on the device, with one copy back per batch.

**Windowed mode** (``mode="windowed"``, opt-in): each run of ``stride`` consecutive words of a window reads the
context of the run's last word, every word at its own position in it (its context then starts where the last
word's does: ``cap - stride + 1`` to ``cap`` words instead of exactly ``cap``). A run is one causal pass: about
``stride`` times fewer passes past the cap. Before the cap nothing changes. The deviation from exact is
measured in ``benchmarks/bench_end_to_end.py`` and stated in ``benchmarks/README.md``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from ..checks import is_whole_number
from .base import Extractor
from .cache import cached_array
from .grid import check_window, event_rows, n_samples, overlapping, place_words
from .sources import load_pretrained

TEXT_MODES = ("exact", "windowed")


class TextExtractor(Extractor):
    """Word features from a causal language model (``meta-llama/Llama-3.2-3B`` in the release).

    ``batch_size`` is the number of token sequences per forward pass (right-padded).
    """

    modality = "text"
    event_type = "Word"

    def __init__(self, source="meta-llama/Llama-3.2-3B", *, mode: str = "exact", stride: int = 128, **options):
        """``mode``: ``"exact"`` (each word in its own context, as the reference) or ``"windowed"`` (runs of
        ``stride`` words share the pass of the run's last word; see the module doc)."""
        options.setdefault("batch_size", 8)
        super().__init__(source, **options)
        if mode not in TEXT_MODES:
            raise ValueError(f"mode must be one of {TEXT_MODES}, got {mode!r}")
        if not is_whole_number(stride):
            raise ValueError(f"stride must be a whole number of words, at least 1, got {stride!r}")
        self.mode = mode
        self.stride = stride
        self._tokenizer = None
        self._causal = None

    @property
    def tokenizer(self):
        if self._tokenizer is None:
            from transformers import AutoTokenizer

            self._tokenizer = load_pretrained(
                AutoTokenizer, self.source, self.revision, "text tokenizer", truncation_side="left"
            )
        return self._tokenizer

    # -- per word ----------------------------------------------------------------------------------------------
    def token_ids(self, contexts: list[str], texts: list[str]) -> tuple[list[np.ndarray], np.ndarray]:
        """Token ids of each context (no BOS, left-truncated to the tokenizer's maximum length) and the number
        of trailing tokens that belong to the word."""
        tokenizer = self.tokenizer
        prefixes = [context[: -len(text)].rstrip() for context, text in zip(contexts, texts)]
        ids = tokenizer(contexts, add_special_tokens=False)["input_ids"]
        prefix_ids = tokenizer(prefixes, add_special_tokens=False)["input_ids"]
        limit = tokenizer.model_max_length
        ids = [np.asarray(x[-limit:], dtype=np.int64) for x in ids]
        n_word = np.array([max(1, len(x) - len(p)) for x, p in zip(ids, prefix_ids)])
        return ids, n_word

    def windowed_token_ids(self, contexts: list[str], texts: list[str]) -> tuple[list[np.ndarray], np.ndarray]:
        """:meth:`token_ids` of the windowed contexts (:func:`windowed_contexts`), with one tokenization per run:
        a word whose context begins the run's last context takes that context's tokens up to its own end, and
        its word tokens are those after its prefix's end (the token offsets say where). Where the run's text has
        no token boundary at those ends, or the context is not a beginning of it, the word is tokenized alone,
        as :meth:`token_ids` does. Identical ids wherever words end at token boundaries (a space or punctuation
        follows them), at a 128th of the tokenizing."""
        contexts = windowed_contexts(contexts, self.stride)
        ids: list[np.ndarray | None] = [None] * len(contexts)
        n_word = np.zeros(len(contexts), dtype=np.int64)
        for first in range(0, len(contexts), self.stride):
            last = min(first + self.stride, len(contexts)) - 1
            run = self.tokenizer(contexts[last], add_special_tokens=False, return_offsets_mapping=True)
            run_ids = np.asarray(run["input_ids"], dtype=np.int64)
            ends = np.array([end for _, end in run["offset_mapping"]], dtype=np.int64)
            for w in range(first, last + 1):
                context = contexts[w]
                stop = int(np.searchsorted(ends, len(context), side="right"))  # tokens ending by the context's end
                if not contexts[last].startswith(context) or stop == 0 or ends[stop - 1] != len(context):
                    continue
                before = int(np.searchsorted(ends, len(context[: -len(texts[w])].rstrip()), side="right"))
                ids[w], n_word[w] = run_ids[:stop][-self.tokenizer.model_max_length :], max(1, stop - before)
        alone = [w for w, x in enumerate(ids) if x is None]
        if alone:
            alone_ids, alone_n = self.token_ids([contexts[w] for w in alone], [texts[w] for w in alone])
            for w, x, n in zip(alone, alone_ids, alone_n):
                ids[w], n_word[w] = x, n
        return ids, n_word

    def hidden_state_means(self, contexts: list[str], texts: list[str]) -> np.ndarray:
        """``(W, n_states, width)``: every hidden state, averaged over each word's own tokens."""
        return self.state_means(*self.token_ids(contexts, texts))

    def state_means(self, ids: list[np.ndarray], n_word: np.ndarray) -> np.ndarray:
        """:meth:`hidden_state_means` of words given as their contexts' token ids and their own token counts."""
        chains = self._chains(ids) if self.causal else [[w] for w in range(len(ids))]
        out = np.zeros((len(ids), self.config.num_hidden_layers + 1, self.width), dtype=np.float32)
        chains.sort(key=lambda chain: len(ids[chain[-1]]))  # similar lengths share a batch: little padding
        batches = [chains[i : i + self.batch_size] for i in range(0, len(chains), self.batch_size)]
        for batch in self._bar(batches, desc="text", unit="batch"):
            states = self._forward([ids[chain[-1]] for chain in batch])  # n_states x (B, T, D)
            means = []
            for b, chain in enumerate(batch):
                # one averaging matrix per sequence: row i holds 1/n on the n tokens of the chain's i-th word
                weights = torch.zeros(len(chain), states[0].shape[1])
                for i, w in enumerate(chain):
                    end = len(ids[w])
                    weights[i, end - n_word[w] : end] = 1.0 / n_word[w]
                weights = weights.to(self.device, non_blocking=True)
                means.append(torch.stack([weights @ state[b].float() for state in states], dim=1))  # (W, S, D)
            out[[w for chain in batch for w in chain]] = torch.cat(means).cpu().numpy()  # one copy per batch
        return out

    def word_features(self, contexts: list[str], texts: list[str]) -> np.ndarray:
        """``(W, n_groups, width)``: the kept hidden states of each word, averaged into layer groups."""
        tokens = self.windowed_token_ids if self.mode == "windowed" else self.token_ids
        means = self.state_means(*tokens(contexts, texts))[:, self.layer_indices]  # (W, n_kept, D)
        return self.group_mean(means.transpose(1, 0, 2)).transpose(1, 0, 2)

    @staticmethod
    def _chains(ids: list[np.ndarray]) -> list[list[int]]:
        """Group consecutive words whose token ids are prefixes of the chain's longest sequence (kept last)."""
        chains: list[list[int]] = []
        for w, seq in enumerate(ids):
            if chains:
                chain = chains[-1]
                longest = ids[chain[-1]]
                if len(seq) >= len(longest) and np.array_equal(seq[: len(longest)], longest):
                    chain.append(w)
                    continue
                if len(seq) < len(longest) and np.array_equal(longest[: len(seq)], seq):
                    chain.insert(-1, w)
                    continue
            chains.append([w])
        return chains

    def _forward(self, sequences: list[np.ndarray]) -> tuple[torch.Tensor, ...]:
        """Right-padded batch -> every hidden state, each ``(B, T, D)``; pads never reach real tokens."""
        length = max(len(s) for s in sequences)
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else self.tokenizer.eos_token_id
        input_ids = torch.full((len(sequences), length), pad or 0, dtype=torch.long)
        mask = torch.zeros((len(sequences), length), dtype=torch.long)
        for b, seq in enumerate(sequences):
            input_ids[b, : len(seq)] = torch.from_numpy(seq)
            mask[b, : len(seq)] = 1
        with torch.inference_mode(), self.arithmetic():
            output = self.model(
                input_ids=input_ids.to(self.device),
                attention_mask=mask.to(self.device),
                output_hidden_states=True,
                use_cache=False,
            )
        return output.hidden_states

    @property
    def causal(self) -> bool:
        """Whether a position's states ignore later tokens (checked once on the loaded model)."""
        if self._causal is None:
            probe = np.arange(1, 5, dtype=np.int64) % self.config.vocab_size
            short = torch.stack(self._forward([probe[:2]]))[:, 0].float()
            prefix = torch.stack(self._forward([probe]))[:, 0, :2].float()
            # rounding differs between the two lengths: allow it (half precision keeps ~3 digits); attention
            # to later tokens changes the states by far more
            tolerance = 1e-4 if self.dtype == torch.float32 else 2e-2
            self._causal = bool((short - prefix).norm() <= tolerance * short.norm())
        return self._causal

    # -- per window ---------------------------------------------------------------------------------------------
    def extract(self, events: pd.DataFrame, start: float, duration: float) -> np.ndarray:
        """Features of the words overlapping ``[start, start + duration)``, placed on the window's 2 Hz grid;
        zeros where no word falls (also when the window has no word at all, as in the reference)."""
        check_window(start, duration)
        words = overlapping(event_rows(events, self.event_type, ("text", "context")), start, duration)
        if words.empty:
            return np.zeros((self.n_groups, self.width, n_samples(duration, self.frequency)), dtype=np.float32)
        texts, contexts = _strings(words, "text"), _strings(words, "context")
        starts, durations = words["start"].to_numpy(float), words["duration"].to_numpy(float)
        mode = {} if self.mode == "exact" else {"mode": self.mode, "stride": self.stride}  # exact entries stay valid
        key = {
            **self.fingerprint(),
            **mode,
            "window": [float(start), float(duration)],
            "words": [list(w) for w in zip(starts.tolist(), durations.tolist(), texts, contexts)],
        }
        return cached_array(
            self.modality,
            key,
            lambda: place_words(
                self.word_features(contexts, texts),
                starts,
                durations,
                start=start,
                duration=duration,
                frequency=self.frequency,
            ),
            enabled=self.cache,
            root=self.cache_dir,
        )


def _strings(words: pd.DataFrame, column: str) -> list[str]:
    values = words[column]
    bad = values.isna() | (values.astype(str).str.len() == 0)
    if bad.any():
        raise ValueError(
            f"events table: Word rows need a non-empty '{column}'; missing at row(s) {list(words.index[bad][:5])}"
        )
    return values.astype(str).tolist()


def windowed_contexts(contexts: list[str], stride: int) -> list[str]:
    """Each run of ``stride`` consecutive words reads the context of the run's last word: a word's new context
    is the part of its own that the run's last context also holds (they are cut from one running text, the
    last one starting at or after this one). A context that the last one does not continue is kept."""
    out = list(contexts)
    for first in range(0, len(contexts), stride):
        chunk = contexts[min(first + stride, len(contexts)) - 1]
        probe = chunk[:64]
        for j in range(first, min(first + stride, len(contexts)) - 1):
            own = contexts[j]
            if chunk.startswith(own):
                continue  # already a prefix of the chunk (before the cap)
            at = own.find(probe)
            while at != -1 and not chunk.startswith(own[at:]):
                at = own.find(probe, at + 1)
            if at > 0:
                out[j] = own[at:]
    return out
