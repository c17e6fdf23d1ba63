"""The transformer encoder of TRIBE v2: pre-norm attention / feed-forward layers with ScaleNorm,
partial rotary position embeddings and a learned per-dimension scale on the residual (skip) path.

Parameter names follow the released checkpoint (``layers.{i}.0.0.g``, ``layers.{i}.1.to_q.weight``,
``layers.{i}.2.residual_scale``, ``rotary_pos_emb.inv_freq``, ``final_norm.g``), so a state dict loads
strictly. The numerics are those of the library the weights were trained with (x-transformers 1.27):
rotary on the first ``max(dim_head // 2, 32)`` dimensions with *half-split* pairs (i, i + r/2), and a
ScaleNorm gain used as is (later versions changed both without changing the keys).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .config import BrainConfig


class ScaleNorm(nn.Module):
    """``x / ‖x‖ · sqrt(dim) · g`` with one learned scalar gain ``g``."""

    def __init__(self, dim: int):
        super().__init__()
        self.scale = math.sqrt(dim)
        self.g = nn.Parameter(torch.ones(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(x, dim=-1) * (self.scale * self.g)


class RotaryEmbedding(nn.Module):
    """Rotary angles for the first ``rotary_dim`` dimensions of each head (base 10000)."""

    def __init__(self, rotary_dim: int, base: float = 10000.0):
        super().__init__()
        inv_freq = 1.0 / (base ** (torch.arange(0, rotary_dim, 2).float() / rotary_dim))
        self.register_buffer("inv_freq", inv_freq)  # persistent: the checkpoint carries it

    def forward(self, seq_len: int, device: torch.device) -> torch.Tensor:
        # Angles in float32 whatever the model's dtype: in bfloat16, position x frequency loses up to a radian.
        positions = torch.arange(seq_len, device=device, dtype=torch.float32)
        freqs = torch.outer(positions, self.inv_freq.float())  # (T, r/2)
        return torch.cat((freqs, freqs), dim=-1)  # (T, r)


def rotate_half(x: torch.Tensor) -> torch.Tensor:
    """Half-split rotation: (x1, x2) -> (-x2, x1) over the two halves of the last dimension."""
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat((-x2, x1), dim=-1)


def apply_rotary(t: torch.Tensor, freqs: torch.Tensor) -> torch.Tensor:
    """Rotate the first ``freqs.shape[-1]`` dims of ``t`` (B, h, T, d); the rest pass through."""
    rot_dim = freqs.shape[-1]
    t_rot, t_pass = t[..., :rot_dim], t[..., rot_dim:]
    cos, sin = freqs.cos().to(t.dtype), freqs.sin().to(t.dtype)
    return torch.cat((t_rot * cos + rotate_half(t_rot) * sin, t_pass), dim=-1)


class Attention(nn.Module):
    """Multi-head self-attention without biases, rotary on queries and keys, no mask."""

    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads = heads
        self.to_q = nn.Linear(dim, dim, bias=False)
        self.to_k = nn.Linear(dim, dim, bias=False)
        self.to_v = nn.Linear(dim, dim, bias=False)
        self.to_out = nn.Linear(dim, dim, bias=False)

    def forward(self, x: torch.Tensor, freqs: torch.Tensor | None) -> torch.Tensor:
        B, T, D = x.shape

        def split_heads(t: torch.Tensor) -> torch.Tensor:  # (B, T, D) -> (B, h, T, d)
            return t.view(B, T, self.heads, D // self.heads).transpose(1, 2)

        q, k, v = split_heads(self.to_q(x)), split_heads(self.to_k(x)), split_heads(self.to_v(x))
        if freqs is not None:
            q, k = apply_rotary(q, freqs), apply_rotary(k, freqs)
        out = F.scaled_dot_product_attention(q, k, v)  # (B, h, T, d), scale d ** -0.5
        return self.to_out(out.transpose(1, 2).reshape(B, T, D))


class FeedForward(nn.Module):
    """Linear -> GELU (exact) -> Linear, inner width ``ff_mult · dim``."""

    def __init__(self, dim: int, mult: int):
        super().__init__()
        inner = dim * mult
        self.ff = nn.Sequential(
            nn.Sequential(nn.Linear(dim, inner), nn.GELU()),
            nn.Identity(),  # the reference's dropout slot (inactive at inference)
            nn.Linear(inner, dim),
        )

    def forward(self, x: torch.Tensor, freqs: torch.Tensor | None = None) -> torch.Tensor:
        return self.ff(x)


class ScaledResidual(nn.Module):
    """``block_output + skip · residual_scale``: the learned scale multiplies the skip path."""

    def __init__(self, dim: int, learned: bool):
        super().__init__()
        self.residual_scale = nn.Parameter(torch.ones(dim)) if learned else None

    def forward(self, out: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        if self.residual_scale is not None:
            skip = skip * self.residual_scale
        return out + skip


class EncoderLayer(nn.ModuleList):
    """One pre-norm residual layer laid out as the checkpoint expects: ``[[norm], block, residual]``."""

    def __init__(self, norm: nn.Module, block: nn.Module, residual: ScaledResidual):
        super().__init__([nn.ModuleList([norm]), block, residual])

    def forward(self, x: torch.Tensor, freqs: torch.Tensor | None) -> torch.Tensor:
        (norm,), block, residual = self
        return residual(block(norm(x), freqs), x)


class Encoder(nn.Module):
    """``depth`` pairs of (attention, feed-forward) layers followed by a final norm."""

    def __init__(self, config: BrainConfig):
        super().__init__()
        dim = config.hidden
        self.rotary_pos_emb = RotaryEmbedding(config.rotary_dim) if config.rotary_pos_emb else None
        layers = []
        for _ in range(config.depth):
            layers.append(
                EncoderLayer(ScaleNorm(dim), Attention(dim, config.heads), ScaledResidual(dim, config.scale_residual))
            )
            layers.append(
                EncoderLayer(
                    ScaleNorm(dim), FeedForward(dim, config.ff_mult), ScaledResidual(dim, config.scale_residual)
                )
            )
        self.layers = nn.ModuleList(layers)
        self.final_norm = ScaleNorm(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, T, D) -> (B, T, D)
        freqs = self.rotary_pos_emb(x.shape[1], x.device) if self.rotary_pos_emb is not None else None
        for layer in self.layers:
            x = layer(x, freqs)
        return self.final_norm(x)
