"""TRIBE v2: per-modality projectors -> time embedding -> transformer encoder -> low-rank head ->
subject layer -> pooling from the feature rate to one value per TR.

Shapes: B batch, L layer groups, D feature width, T feature samples (2 Hz), H hidden, R low-rank width,
S subject rows asked for, V vertices, T_out output TRs.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .config import BrainConfig
from .encoder import Encoder
from .inputs import check_features, check_length
from .pretrained import Pretrained


class SubjectLayers(nn.Module):
    """Per-subject linear read-out; ``weights`` is (rows, in, out) and is applied as ``x @ W``."""

    def __init__(self, in_dim: int, out_dim: int, n_rows: int):
        super().__init__()
        self.weights = nn.Parameter(torch.zeros(n_rows, in_dim, out_dim))
        self.bias = nn.Parameter(torch.zeros(n_rows, out_dim))

    def forward(self, x: torch.Tensor, rows: Sequence[int]) -> torch.Tensor:  # (B, T, in) -> (B, S, T, out)
        return torch.stack([x @ self.weights[row] + self.bias[row] for row in rows], dim=1)


@dataclasses.dataclass(frozen=True)
class ForwardStages:
    """Every stage of one forward pass (``return_stages=True``)."""

    aggregated: torch.Tensor  # (B, T, H) projected and concatenated features
    encoded: torch.Tensor  # (B, T, H) transformer output
    unpooled: torch.Tensor  # (B, S, V, T) head output at the feature rate
    output: torch.Tensor  # (B, S, V, T_out) one value per TR


class TribeModel(Pretrained, nn.Module):
    """The TRIBE v2 brain model, built from a :class:`BrainConfig`; keys match the released checkpoint.

    Load one with :meth:`from_pretrained` (a hub id or a folder), write one with :meth:`save_pretrained`.
    """

    def __init__(self, config: BrainConfig):
        super().__init__()
        self.config = config
        width = config.projector_width
        self.projectors = nn.ModuleDict(
            {name: nn.Linear(groups * dim, width) for name, (groups, dim) in config.feature_dims.items()}
        )
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

    # -- forward ------------------------------------------------------------------------------------------
    def forward(
        self,
        features: Mapping[str, torch.Tensor],
        *,
        subjects: str | int | Sequence[str | int] | None = None,
        pool: bool = True,
        return_stages: bool = False,
        n_samples: int | None = None,
    ):
        """``features``: modality -> (B, L, D, T) or (B, L·D, T); a missing modality counts as absent.

        ``subjects``: subject rows by name or index (default: the model's default subject, stored with the
        weights; the shared ``"average"`` row for the release). Returns (B, S, V, T_out), or (B, S, V, T) with
        ``pool=False``, or every stage as :class:`ForwardStages`. An empty ``features`` with ``n_samples``
        gives the model's response to nothing (every modality absent) for one window of that length.
        """
        rows = self.subject_rows(subjects)
        aggregated = self.aggregate(features, n_samples)  # (B, T, H)
        encoded = self.encode(aggregated)  # (B, T, H)
        if return_stages:
            unpooled = self.head(encoded, rows)  # (B, S, V, T)
            return ForwardStages(aggregated, encoded, unpooled, self.pool(unpooled))
        if not pool:
            return self.head(encoded, rows)
        # The head is affine and pooling averages over time, so pooling first is exact and cheaper.
        pooled = self.pool(encoded.transpose(1, 2)).transpose(1, 2)  # (B, T_out, H)
        return self.head(pooled, rows)  # (B, S, V, T_out)

    # -- stages -------------------------------------------------------------------------------------------
    def aggregate(self, features: Mapping[str, torch.Tensor], n_samples: int | None = None) -> torch.Tensor:
        """Project each modality and concatenate, in checkpoint order -> (B, T, H).

        A modality missing from ``features`` contributes zeros *after* projection; a present modality
        of zeros contributes the projector bias.
        """
        param = next(self.parameters())
        if not features:
            if n_samples is None:
                raise ValueError(
                    f"no features given: this model takes {list(self.config.modalities)} (pass "
                    f"n_samples= for its response to no input)"
                )
            check_length(n_samples, self.config)
            return param.new_zeros(1, n_samples, self.config.hidden)
        B, T = check_features(features, self.config, batched=True)
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

    def head(self, encoded: torch.Tensor, rows: Sequence[int]) -> torch.Tensor:  # (B, T, H) -> (B, S, V, T)
        x = self.low_rank_head(encoded) if self.low_rank_head is not None else encoded  # (B, T, R)
        return self.predictor(x, rows).transpose(-1, -2)

    def pool(self, x: torch.Tensor) -> torch.Tensor:  # (..., C, T) -> (..., C, T_out)
        lead = x.shape[:-2]
        pooled = F.adaptive_avg_pool1d(x.reshape(-1, *x.shape[-2:]), self.config.n_output_timesteps)
        return pooled.reshape(*lead, *pooled.shape[-2:])

    # -- subjects -----------------------------------------------------------------------------------------
    def subject_rows(self, subjects: str | int | Sequence[str | int] | None = None) -> list[int]:
        """Row indices of ``subjects``: names stored with the weights (``"average"``, ``"0"``, ...) or indices;
        None: the default subject; ``"all"``: the default subject first, then every other row in order."""
        names = list(self.config.subject_names)
        default = names.index(self.config.default_subject)
        if subjects is None:
            return [default]
        if isinstance(subjects, str) and subjects == "all" and "all" not in names:
            return [default] + [i for i in range(len(names)) if i != default]
        if isinstance(subjects, (str, int, np.integer)):
            subjects = [subjects]
        rows = [self._subject_row(s, names) for s in subjects]
        if not rows:
            raise ValueError("subjects is empty: name at least one subject row (or None for the default)")
        return rows

    def subject_names(self, rows: Sequence[int]) -> list[str]:
        return [self.config.subject_names[row] for row in rows]

    @staticmethod
    def _subject_row(subject, names: list[str]) -> int:
        if isinstance(subject, str) and subject in names:
            return names.index(subject)
        if isinstance(subject, (int, np.integer)) and not isinstance(subject, bool) and 0 <= subject < len(names):
            return int(subject)
        message = f"subject {subject!r} is not available: this checkpoint has {_describe_rows(names)}"
        if isinstance(subject, (int, np.integer)):
            message += (
                f" (subject={subject} is out of range: this checkpoint has {len(names)} subject "
                f"row{'' if len(names) == 1 else 's'}, numbered from 0)"
            )
        raise ValueError(message)


def _describe_rows(names: Sequence[str]) -> str:
    """``rows 0..1 and 'average'``, ``only the 'average' row``: the names a user may pass."""
    if len(names) == 1:
        return f"only the {names[0]!r} row"
    numbered = [n for n in names if n.isdigit()]
    shown = (
        [f"0..{len(numbered) - 1}"]
        if numbered == [str(i) for i in range(len(numbered))] and numbered
        else [repr(n) for n in numbered]
    )
    shown += [repr(n) for n in names if n not in numbered]
    return "rows " + (", ".join(shown[:-1]) + " and " + shown[-1] if len(shown) > 1 else shown[0])
