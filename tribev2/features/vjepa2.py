"""V-JEPA2's encoder attention with its rotary embedding computed once per clip shape.

transformers' ``VJEPA2RopeAttention`` rebuilds the rotary angles in every layer for queries and keys alike, in
the activations' dtype, from some forty small element-wise kernels over slices of every head. In bfloat16 the
angles themselves are rounded (position x frequency up to 31 radians, off by up to 0.06 radian).
:func:`precompute_rotary` swaps each encoder attention's ``forward`` for one that reads two ``(tokens, head_dim)``
tables, computed once per token count and device in float32, held in a chosen dtype and shared by every layer,
and rotates with three element-wise operations. With float32 tables it computes the same products and sums as
transformers' code, so the states are the same to the last bit; held in bfloat16 (the fast path: the rotation
then moves half the bytes and no float32 intermediate) the states stay as close to float32 as transformers'
code keeps them (``tests/test_features_video.py``).

The rotation it reproduces (the released V-JEPA2's, quirks included): a head of ``D`` channels is cut into
three slices of ``2 * (D // 3 // 2)`` channels rotated by the token's frame, row and column index (the last
``D - 3 * slice`` channels are left as they are); within a slice of ``s`` channels, channel ``j`` uses the
frequency ``1 / 10000 ** ((j mod s/2) / (s/2))`` and is paired with its neighbour ``j ^ 1``.
"""

from __future__ import annotations

import types

import torch


def rotary_tables(n_tokens: int, head_dim: int, grid: int, device) -> tuple[torch.Tensor, torch.Tensor]:
    """``(cos, signed_sin)``, each ``(n_tokens, head_dim)`` float32: the rotation of token ``t`` at channel ``j``
    is ``x[j] * cos[t, j] + x[j ^ 1] * signed_sin[t, j]`` (the sign of the pair's partner folded into the sine)."""
    ids = torch.arange(n_tokens, device=device)
    per_frame = grid * grid
    frame = ids // per_frame
    row = (ids - per_frame * frame) // grid
    column = ids - per_frame * frame - grid * row
    width = 2 * ((head_dim // 3) // 2)
    cos, sin = [], []
    for position in (frame, row, column):
        omega = torch.arange(width // 2, dtype=torch.float32, device=device)
        omega /= width / 2.0
        omega = 1.0 / 10000**omega  # (width/2,), as transformers computes it
        angle = position.unsqueeze(-1) * omega  # (tokens, width/2)
        cos.append(angle.cos().repeat(1, 2))  # channel j uses frequency j mod width/2
        sin.append(angle.sin().repeat(1, 2))
    rest = head_dim - 3 * width  # channels left unrotated: cos 1, sin 0
    cos.append(torch.ones(n_tokens, rest, device=device))
    sin.append(torch.zeros(n_tokens, rest, device=device))
    cos, sin = torch.cat(cos, dim=1), torch.cat(sin, dim=1)
    sign = torch.tensor([-1.0, 1.0], device=device).repeat(head_dim // 2)  # even channels take -x[j + 1]
    return cos, sin * sign


def rotate(x: torch.Tensor, cos: torch.Tensor, signed_sin: torch.Tensor) -> torch.Tensor:
    """``x`` ``(B, heads, tokens, head_dim)`` rotated by the tables, returned in ``x``'s dtype."""
    partner = x.unflatten(-1, (-1, 2)).flip(-1).flatten(-2)  # channel j holds x[j ^ 1]
    return (x * cos + partner * signed_sin).to(x.dtype)


class _Tables:
    """The rotary tables of one model, by token count and device (every layer shares them), built in float32
    and held in ``dtype``."""

    def __init__(self, head_dim: int, grid: int, dtype: torch.dtype):
        self.head_dim, self.grid, self.dtype = head_dim, grid, dtype
        self.built: dict = {}

    def __call__(self, n_tokens: int, device) -> tuple[torch.Tensor, torch.Tensor]:
        key = (n_tokens, str(device))
        if key not in self.built:
            cos, sin = rotary_tables(n_tokens, self.head_dim, self.grid, device)
            self.built[key] = cos.to(self.dtype), sin.to(self.dtype)
        return self.built[key]


def _attention_forward(self, hidden_states: torch.Tensor, position_mask: torch.Tensor | None = None):
    """``VJEPA2RopeAttention.forward`` over precomputed tables (masked tokens, used by the predictor only, go
    through transformers' own code)."""
    if position_mask is not None:
        return type(self).forward(self, hidden_states, position_mask)
    batch, n_tokens, _ = hidden_states.shape  # (B, N, width)
    shape = (batch, n_tokens, self.num_attention_heads, self.attention_head_size)
    query = self.query(hidden_states).view(shape).transpose(1, 2)  # (B, heads, N, head_dim)
    key = self.key(hidden_states).view(shape).transpose(1, 2)
    value = self.value(hidden_states).view(shape).transpose(1, 2)
    cos, sin = self.rotary_tables(n_tokens, hidden_states.device)
    key, query = rotate(key, cos, sin), rotate(query, cos, sin)
    context = torch.nn.functional.scaled_dot_product_attention(query, key, value, scale=self.scaling)
    context = context.transpose(1, 2).reshape(batch, n_tokens, self.all_head_size)  # (B, N, width)
    return self.proj(context), None


def precompute_rotary(model: torch.nn.Module, dtype: torch.dtype = torch.float32) -> torch.nn.Module:
    """``model`` (a ``VJEPA2Model``) with every encoder attention rotating from shared tables, computed in
    float32 and held in ``dtype`` (in bfloat16 the rotation's element-wise work moves half the bytes and stays
    in the activations' dtype)."""
    config = model.config
    first = model.encoder.layer[0].attention
    tables = _Tables(first.attention_head_size, config.crop_size // config.patch_size, dtype)
    for layer in model.encoder.layer:
        attention = layer.attention
        attention.rotary_tables = tables
        attention.forward = types.MethodType(_attention_forward, attention)
    return model


def _patch_embedding_forward(self, pixels: torch.Tensor) -> torch.Tensor:
    """``VJEPA2PatchEmbeddings3D.forward`` as one matrix product: the convolution's kernel equals its stride, so
    each tubelet of ``C x t x p x p`` values, gathered into a row, meets the kernel flattened the same way.
    Shapes that the kernel does not tile, and a convolution that is not one (kernel and stride apart, padding,
    dilation, groups), go through the convolution itself."""
    batch, channels, frames, height, width = pixels.shape  # (B, C, T, H, W)
    conv = self.proj
    t, p, q = conv.kernel_size
    tiles = conv.stride == conv.kernel_size and conv.padding == (0, 0, 0) and conv.dilation == (1, 1, 1)
    if not tiles or conv.groups != 1 or frames % t or height % p or width % q:
        return type(self).forward(self, pixels)
    tubelets = pixels.reshape(batch, channels, frames // t, t, height // p, p, width // q, q)
    rows = tubelets.permute(0, 2, 4, 6, 1, 3, 5, 7).reshape(batch, -1, channels * t * p * q)  # (B, N, C*t*p*q)
    kernel = conv.weight.reshape(conv.out_channels, -1)  # (width, C*t*p*q)
    return torch.nn.functional.linear(rows, kernel, conv.bias)  # (B, N, width), tokens frame-major


def patch_embedding_as_matmul(model: torch.nn.Module) -> torch.nn.Module:
    """``model`` (a ``VJEPA2Model``) embedding its tubelets with one matrix product instead of a 3-D convolution
    whose kernel equals its stride: the same sums in another order. On an H100 in bfloat16 the convolution's
    kernel (cuDNN's implicit GEMM) took 10.7 ms for 8 clips of 64 frames, the whole forward 554 ms."""
    embeddings = model.encoder.embeddings.patch_embeddings
    embeddings.forward = types.MethodType(_patch_embedding_forward, embeddings)
    return model
