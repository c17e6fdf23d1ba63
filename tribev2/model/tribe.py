"""TRIBE v2: per-modality projectors -> time embedding -> transformer encoder -> low-rank head ->
subject layer -> pooling from the feature rate to one value per TR.

Shapes: B batch, L layer groups, D feature width, T feature samples (2 Hz), H hidden, R low-rank width,
V vertices, T_out output TRs.
"""

from __future__ import annotations

from typing import Mapping

import torch
import torch.nn.functional as F
from torch import nn

from .config import BrainConfig
from .encoder import Encoder


class SubjectLayers(nn.Module):
    """Per-subject linear read-out; ``weights`` is (rows, in, out) and is applied as ``x @ W``.

    The last row is the shared "average subject" used for unseen people.
    """

    def __init__(self, in_dim: int, out_dim: int, n_rows: int):
        super().__init__()
        self.weights = nn.Parameter(torch.zeros(n_rows, in_dim, out_dim))
        self.bias = nn.Parameter(torch.zeros(n_rows, out_dim))

    def forward(self, x: torch.Tensor, row: int) -> torch.Tensor:  # (B, T, in) -> (B, T, out)
        return x @ self.weights[row] + self.bias[row]


class TribeModel(nn.Module):
    """The TRIBE v2 brain model, built from a :class:`BrainConfig`; keys match the released checkpoint."""

    def __init__(self, config: BrainConfig):
        super().__init__()
        self.config = config
        width = config.projector_width
        self.projectors = nn.ModuleDict(
            {name: nn.Linear(groups * dim, width) for name, (groups, dim) in config.feature_dims.items()})
        if config.time_pos_embedding:
            self.time_pos_embed = nn.Parameter(torch.zeros(1, config.max_seq_len, config.hidden))
        else:
            self.time_pos_embed = None
        self.encoder = Encoder(config)
        head_in = config.hidden
        if config.low_rank_head:
            self.low_rank_head = nn.Linear(config.hidden, config.low_rank_head, bias=False)
            head_in = config.low_rank_head
        else:
            self.low_rank_head = None
        self.predictor = SubjectLayers(head_in, config.n_outputs, config.n_subject_rows)

    # -- stages -------------------------------------------------------------------------------------------
    def aggregate(self, features: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """Project each modality and concatenate, in checkpoint order -> (B, T, H).

        A modality missing from ``features`` contributes zeros *after* projection; a present modality
        of zeros contributes the projector bias.
        """
        B, T = self._batch_and_length(features)
        param = next(self.parameters())
        parts = []
        for name, projector in self.projectors.items():
            if name in features:
                x = features[name].to(device=param.device, dtype=param.dtype)
                if x.dim() == 4:  # (B, L, D, T) -> (B, L·D, T), layer-major
                    x = x.flatten(1, 2)
                parts.append(projector(x.transpose(1, 2)))  # (B, T, width)
            else:
                parts.append(param.new_zeros(B, T, projector.out_features))
        if self.config.extractor_aggregation == "sum":
            return torch.stack(parts).sum(0)
        return torch.cat(parts, dim=-1)

    def encode(self, aggregated: torch.Tensor) -> torch.Tensor:  # (B, T, H) -> (B, T, H)
        T = aggregated.shape[1]
        x = aggregated
        if self.time_pos_embed is not None:
            x = x + self.time_pos_embed[:, :T]
        return self.encoder(x)

    def head(self, encoded: torch.Tensor, subject: int) -> torch.Tensor:  # (B, T, H) -> (B, V, T)
        x = self.low_rank_head(encoded) if self.low_rank_head is not None else encoded
        return self.predictor(x, subject).transpose(1, 2)

    def pool(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, T) -> (B, C, T_out)
        return F.adaptive_avg_pool1d(x, self.config.n_output_timesteps)

    # -- forward ------------------------------------------------------------------------------------------
    def forward(self, features: Mapping[str, torch.Tensor], *, subject: int | None = None, pool: bool = True,
                return_stages: bool = False):
        """``features``: modality -> (B, L, D, T) or (B, L·D, T). Returns (B, V, T_out), or (B, V, T) with
        ``pool=False``, or with ``return_stages`` a dict of ``aggregated``, ``encoded``, ``unpooled``, ``output``.
        """
        row = self._subject_row(subject)
        aggregated = self.aggregate(features)  # (B, T, H)
        encoded = self.encode(aggregated)  # (B, T, H)
        if return_stages:
            unpooled = self.head(encoded, row)  # (B, V, T)
            return {"aggregated": aggregated, "encoded": encoded, "unpooled": unpooled,
                    "output": self.pool(unpooled)}
        if not pool:
            return self.head(encoded, row)
        # The head is affine and pooling averages over time, so pooling first is exact and cheaper.
        pooled = self.pool(encoded.transpose(1, 2)).transpose(1, 2)  # (B, T_out, H)
        return self.head(pooled, row)  # (B, V, T_out)

    # -- checks -------------------------------------------------------------------------------------------
    def _subject_row(self, subject: int | None) -> int:
        n_rows = self.config.n_subject_rows
        if subject is None:
            return n_rows - 1
        if not -n_rows <= subject < n_rows:
            raise ValueError(f"subject={subject} is out of range: this checkpoint has {n_rows} subject row(s)")
        return subject % n_rows

    def _batch_and_length(self, features: Mapping[str, torch.Tensor]) -> tuple[int, int]:
        known = [name for name in features if name in self.config.feature_dims]
        unknown = [name for name in features if name not in self.config.feature_dims]
        if unknown:
            raise ValueError(f"unknown modality {unknown[0]!r}: this model takes {list(self.config.modalities)}")
        if not known:
            raise ValueError(f"no features given: this model takes {list(self.config.modalities)}")
        shapes = {}
        for name in known:
            groups, dim = self.config.feature_dims[name]
            x = features[name]
            if x.dim() == 4 and tuple(x.shape[1:3]) == (groups, dim):
                shapes[name] = (x.shape[0], x.shape[-1])
            elif x.dim() == 3 and x.shape[1] == groups * dim:
                shapes[name] = (x.shape[0], x.shape[-1])
            else:
                raise ValueError(f"features[{name!r}] has shape {tuple(x.shape)}; expected (B, {groups}, {dim}, T) "
                                 f"or (B, {groups * dim}, T)")
        first = known[0]
        for name, shape in shapes.items():
            if shape != shapes[first]:
                raise ValueError(f"features[{name!r}] has (batch, time) {shape} but features[{first!r}] has "
                                 f"{shapes[first]}: every modality must share batch size and length")
        B, T = shapes[first]
        if self.time_pos_embed is not None and T > self.config.max_seq_len:
            raise ValueError(f"features have {T} time samples; this model's time embedding holds at most "
                             f"{self.config.max_seq_len}")
        return B, T
