"""Audio features: a speech encoder's hidden states at 2 Hz (release: ``facebook/w2v-bert-2.0``).

What the reference does per Audio event (``upstream.md`` §4.5, ``../shared/features/README.md`` items 1, 4, 5):

1. read the event's span of the file (soundfile; ``offset`` .. ``offset + duration``);
2. resample each channel to the feature extractor's rate (16 kHz) with ``julius.ResampleFrac``, average the
   channels, and z-score over the event: ``(x - mean) / (1e-8 + std)`` with the *unbiased* std (silence stays 0);
3. log-mel filterbank features (``SeamlessM4TFeatureExtractor``, per-bin normalisation), no attention mask;
4. all hidden states of the model (embedding projection first, ~50 frames per second), averaged into layer
   groups over all states (no 20-layer subselection for audio), then sampled at ``round(2 * duration)``
   points by nearest neighbour (frame ``floor(i * T / n)``).

Silence is not an error: it yields the model's response to an all-zero input, as in the reference.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch

from ..media import read_audio
from .base import EventExtractor
from .sources import load_pretrained
from .w2vbert import use_banded_relative_key_attention


class AudioExtractor(EventExtractor):
    """Audio features from a Wav2Vec2-BERT model and its feature extractor (``facebook/w2v-bert-2.0``).

    ``batch_size`` events of identical length share a forward pass (the model takes no padding mask).
    Wav2Vec-BERT's relative-position attention runs as :mod:`tribev2.features.w2vbert` computes it (the same
    numbers as ``transformers``, without its ``(T, T, head_size)`` tensor per layer).
    """

    modality = "audio"
    event_type = "Audio"
    subselects_layers = False  # the reference's audio path keeps all hidden states

    def __init__(self, source="facebook/w2v-bert-2.0", **options):
        options.setdefault("batch_size", 4)
        super().__init__(source, **options)
        self._feature_extractor = None

    @property
    def feature_extractor(self):
        if self._feature_extractor is None:
            from transformers import AutoFeatureExtractor

            self._feature_extractor = load_pretrained(
                AutoFeatureExtractor, self.source, self.revision, "audio feature extractor"
            )
        return self._feature_extractor

    def adapt(self, model: torch.nn.Module) -> torch.nn.Module:
        use_banded_relative_key_attention(model)
        return model

    def waveform(self, filepath: str, offset: float, duration: float) -> np.ndarray:
        """The event's samples resampled to the model's rate, mono, z-scored: ``(samples,)`` float32."""
        import julius

        self.event_samples(filepath, duration)
        wav, rate = read_audio(filepath, offset=offset, duration=duration)  # (N, C)
        target = self.feature_extractor.sampling_rate
        channels = torch.from_numpy(np.ascontiguousarray(wav.T, dtype=np.float32))  # (C, N)
        mono = julius.ResampleFrac(rate, target)(channels).mean(0)
        mono = (mono - mono.mean()) / (1e-8 + mono.std())  # torch's std is the unbiased one, as the reference's
        if len(mono) < target // 40:  # the filterbank needs one 25-ms frame
            raise ValueError(
                f"{filepath}: the audio event holds {len(wav)} samples at {rate} Hz, too short for one filterbank frame"
            )
        return mono.numpy()

    def input_features(self, waveform: np.ndarray) -> torch.Tensor:
        """Filterbank features ``(1, frames, 160)`` of a 16 kHz waveform."""
        fe = self.feature_extractor
        return fe(waveform, sampling_rate=fe.sampling_rate, return_tensors="pt")["input_features"]

    def hidden_states(self, input_features: torch.Tensor) -> torch.Tensor:
        """``(B, n_states, width, frames)`` float32: every hidden state of the model."""
        with torch.inference_mode(), self.arithmetic():
            output = self.model(
                input_features=input_features.to(self.device, self.weights_dtype), output_hidden_states=True
            )
        return torch.stack(output.hidden_states, dim=1).transpose(2, 3).float()

    def to_rate(self, states: torch.Tensor, n: int) -> torch.Tensor:
        """Nearest-neighbour resampling of the last axis to ``n`` points (``torch.nn.functional.interpolate``)."""
        return torch.nn.functional.interpolate(states, size=n)  # default mode: nearest

    def compute_events(self, todo: list[tuple[str, float, float]]) -> Iterator[np.ndarray]:
        for first in self._bar(range(0, len(todo), self.batch_size), desc="audio", unit="batch"):
            events = todo[first : first + self.batch_size]
            features = [self.input_features(self.waveform(*event)) for event in events]
            results: dict[int, np.ndarray] = {}
            for length in dict.fromkeys(f.shape[1] for f in features):  # identical lengths share a forward
                same = [i for i, f in enumerate(features) if f.shape[1] == length]
                states = self.hidden_states(torch.cat([features[i] for i in same]))  # (B, S, D, T)
                for b, i in enumerate(same):
                    path, _, duration = events[i]
                    grouped = self.group_mean(states[b])  # (G, D, T)
                    results[i] = self.to_rate(grouped, self.event_samples(path, duration)).cpu().numpy()
            yield from (results[i] for i in range(len(events)))

    def event_features(self, filepath: str, offset: float, duration: float) -> np.ndarray:
        return next(self.compute_events([(filepath, offset, duration)]))
