"""Wav2Vec-BERT's relative-position attention without the ``(T, T, head_size)`` distance-embedding tensor.

Wav2Vec-BERT 2.0 (``position_embeddings_type == "relative_key"``) adds to every attention score a bias read
from a table of ``left + right + 1`` learned vectors, one per clamped distance between key and query::

    bias[b, h, l, r] = scaling * q[b, h, l] . E[clamp(r - l, -left, right) + left]

``transformers`` computes it by looking up ``E`` for every ``(l, r)`` pair, a ``(T, T, head_size)`` tensor
(2.3 GB per layer for 60 s of audio), and multiplying the queries against it. The same numbers come from
projecting the queries onto the table first, ``(B, H, T, left + right + 1)``, and copying each value to the
pairs at its distance: outside the band ``-left <= r - l <= right`` a row holds one value (its first or last
projection), inside it the projections in order. Each bias element is then the very dot product transformers
computes (same operands, same length-``head_size`` reduction), so the output matches it to the bit where the
matmul kernels agree, and to float rounding otherwise.

:func:`use_banded_relative_key_attention` swaps :class:`RelativeKeySelfAttention` into a loaded model in place of
every ``relative_key`` self-attention; parameters are shared, so the state dict and ``save_pretrained`` are
unchanged. The attention after the bias follows the model's ``config._attn_implementation``: ``"eager"`` as
transformers' eager path (scores, bias, mask, softmax, weights returned), anything else through
``torch.nn.functional.scaled_dot_product_attention`` with the bias as its additive mask, as transformers' sdpa
path (no attention weights). The layers of a model share one bias buffer per thread while a forward pass
runs (:class:`BiasWorkspace`; emptied when the pass ends).
"""

from __future__ import annotations

import math
import threading

import torch
from torch import nn


def relative_key_bias(
    query: torch.Tensor, table: torch.Tensor, left: int, right: int, scaling: float, out: torch.Tensor | None = None
) -> torch.Tensor:
    """``(B, H, T, T)``: ``scaling * query[..., l, :] . table[clamp(r - l, -left, right) + left]``.

    ``query`` is ``(B, H, T, D)``, ``table`` ``(left + right + 1, D)``; ``out``, if given, a contiguous
    ``(B, H, T, T)`` tensor to write into.
    """
    batch, heads, length, _ = query.shape
    n_distances = left + right + 1
    projected = torch.matmul(query, table.to(query.dtype).T) * scaling  # (B, H, T, left + right + 1)
    position = torch.arange(length, device=query.device)
    at_or_left = position[None, :] <= position[:, None]  # (T, T): r <= l
    # outside the band a row holds its first projection (r - l < -left) or its last (r - l > right)
    if out is None:  # (B, H, T, T), contiguous for the strided band view below
        bias = torch.where(at_or_left, projected[..., :1], projected[..., -1:]).contiguous()
    else:
        bias = torch.where(at_or_left, projected[..., :1], projected[..., -1:], out=out)
    # rows l in [left, T - right): the band r = l - left .. l + right lies inside the row; in memory the band
    # of row l starts (T + 1) elements after row l - 1's, so one strided view writes all of them at once
    first, stop = left, length - right
    if stop > first:
        band = bias.as_strided(
            (batch, heads, stop - first, n_distances),
            (heads * length * length, length * length, length + 1, 1),
            bias.storage_offset() + first * length,
        )
        band.copy_(projected[:, :, first:stop])
    # the rows whose band is cut by the sequence's edges: look each element up
    edge = torch.cat([position[: min(first, length)], position[max(stop, first) :]])
    if len(edge):
        index = (position[None, :] - edge[:, None]).clamp(-left, right) + left  # (E, T)
        bias[:, :, edge] = torch.gather(projected[:, :, edge], -1, index.expand(batch, heads, -1, -1))
    return bias


class BiasWorkspace:
    """One ``(B, H, T, T)`` bias buffer per thread, reused by every layer of a forward pass and emptied after
    it: a fresh allocation of that size per layer costs its page faults each time (0.15 s per layer for 60 s
    of audio on a CPU). Never used where autograd would keep the bias (it is overwritten by the next layer)."""

    def __init__(self):
        self._local = threading.local()

    def __reduce__(self):  # copies and pickles start empty
        return type(self), ()

    def take(self, shape: tuple[int, ...], like: torch.Tensor) -> torch.Tensor | None:
        """A contiguous tensor of ``shape``, dtype and device of ``like`` (contents undefined), or None when
        autograd records ``like``."""
        if torch.is_grad_enabled() and like.requires_grad:
            return None
        numel = math.prod(shape)
        buffer = getattr(self._local, "buffer", None)
        if (
            buffer is None
            or buffer.numel() < numel
            or buffer.dtype != like.dtype
            or buffer.device != like.device
            or buffer.is_inference() != torch.is_inference_mode_enabled()
        ):
            buffer = self._local.buffer = like.new_empty(numel)
        return buffer[:numel].view(shape)

    def release(self, *_) -> None:
        self._local.buffer = None


class RelativeKeySelfAttention(nn.Module):
    """Wav2Vec-BERT self-attention with ``relative_key`` positions, the bias built by :func:`relative_key_bias`.

    Takes the parameters of a ``transformers`` ``Wav2Vec2BertSelfAttention`` (shared, not copied), the model's
    config (read at each call for ``_attn_implementation``) and optionally a :class:`BiasWorkspace` shared
    with the model's other layers; called as that module is.
    """

    def __init__(self, attention: nn.Module, config, workspace: BiasWorkspace | None = None):
        super().__init__()
        self.config = config
        self.workspace = workspace
        self.num_heads = attention.num_heads
        self.head_size = attention.head_size
        self.scaling = self.head_size**-0.5
        self.left_max_position_embeddings = attention.left_max_position_embeddings
        self.right_max_position_embeddings = attention.right_max_position_embeddings
        self.linear_q, self.linear_k = attention.linear_q, attention.linear_k
        self.linear_v, self.linear_out = attention.linear_v, attention.linear_out
        self.distance_embedding = attention.distance_embedding
        self.dropout = attention.dropout

    def forward(
        self,
        hidden_states: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        relative_position_embeddings: torch.Tensor | None = None,
        **kwargs,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        batch, length, _ = hidden_states.shape
        split = (batch, length, self.num_heads, self.head_size)
        query = self.linear_q(hidden_states).view(split).transpose(1, 2)  # (B, H, T, D)
        key = self.linear_k(hidden_states).view(split).transpose(1, 2)
        value = self.linear_v(hidden_states).view(split).transpose(1, 2)
        buffer = None if self.workspace is None else self.workspace.take((batch, self.num_heads, length, length), query)
        bias = relative_key_bias(
            query,
            self.distance_embedding.weight,
            self.left_max_position_embeddings,
            self.right_max_position_embeddings,
            self.scaling,
            out=buffer,
        )  # (B, H, T, T)
        dropout = self.dropout.p if self.training else 0.0
        if getattr(self.config, "_attn_implementation", "eager") == "eager":
            scores = torch.matmul(query, key.transpose(2, 3)) * self.scaling + bias
            if attention_mask is not None:
                scores = _masked(scores, attention_mask)
            weights = nn.functional.dropout(scores.softmax(dim=-1), p=dropout, training=self.training)
            output = torch.matmul(weights, value)  # (B, H, T, D)
        else:
            mask = bias if attention_mask is None else _masked(bias, attention_mask)
            output = nn.functional.scaled_dot_product_attention(
                query, key, value, attn_mask=mask.contiguous(), dropout_p=dropout, scale=self.scaling
            )
            weights = None
        output = output.transpose(1, 2).reshape(batch, length, -1)  # (B, T, H * D)
        return self.linear_out(output), weights


def _masked(scores: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """A boolean mask (True: attend) or an additive float mask applied to ``(B, H, T, T)`` scores."""
    if attention_mask.dtype == torch.bool:
        return torch.where(attention_mask, scores, torch.finfo(scores.dtype).min)
    return scores + attention_mask


def use_banded_relative_key_attention(model: nn.Module) -> int:
    """Replace every ``relative_key`` Wav2Vec-BERT self-attention of ``model`` by
    :class:`RelativeKeySelfAttention` (parameters shared, one :class:`BiasWorkspace` emptied after each forward
    pass of ``model``); return how many were replaced."""
    from transformers.models.wav2vec2_bert.modeling_wav2vec2_bert import Wav2Vec2BertSelfAttention

    targets = [
        (parent, name, child)
        for parent in model.modules()
        for name, child in parent.named_children()
        if isinstance(child, Wav2Vec2BertSelfAttention)
        and getattr(child, "position_embeddings_type", None) == "relative_key"
    ]
    workspace = BiasWorkspace()
    for parent, name, child in targets:
        setattr(parent, name, RelativeKeySelfAttention(child, model.config, workspace))
    if targets:
        model.register_forward_hook(workspace.release, always_call=True)
    return len(targets)
