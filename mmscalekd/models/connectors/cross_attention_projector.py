"""Cross Attention Projector (CAP): maps student features into a teacher's token space.

ScaleKD: Strong Vision Transformers Could Be Excellent Teachers
(https://arxiv.org/abs/2411.06786).
"""
import numbers
from collections import OrderedDict
from typing import Literal, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from mmengine.model import BaseModule
from mmpretrain.models.utils import LayerNorm2d
from torch import Tensor, nn

from mmscalekd.registry import MODELS

_STEM_NORMS = ('BN', 'LN')


def _positive_int(value: object, name: str) -> int:
    if not isinstance(value, numbers.Integral) or isinstance(value, bool):
        raise TypeError(f'{name} must be a positive int, got {value!r}')
    if value <= 0:
        raise ValueError(f'{name} must be a positive int, got {value!r}')
    return int(value)


def _grid(value: Union[int, Sequence[int]], name: str) -> Tuple[int, int]:
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        value = (value, value)
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence) or len(value) != 2:
        raise TypeError(f'{name} must be an int or a sequence (H, W) of two positive ints, '
                        f'got {value!r}')
    return (_positive_int(value[0], f'{name}[0]'), _positive_int(value[1], f'{name}[1]'))


@MODELS.register_module()
class CrossAttentionProjector(BaseModule):
    """Cross Attention Projector (CAP) of ScaleKD.

    A patchify stem with a learnable positional embedding turns the student map into tokens,
    and one multi-head cross-attention layer, whose queries live on the teacher's grid, resamples
    them into the teacher's width and grid; a LayerNorm and a residual MLP follow::

        tokens = flatten(ReLU(Norm(Conv3x3(x))) + pos_embed)        # (B, H_s*W_s, C_s)
        q_in   = flatten(ReLU(Conv1x1(grid(query))))                # (B, H_q*W_q, C_t)
        a      = proj(MHA(q(q_in), k(tokens), v(tokens)))           # logits * d_h^-0.5 * s
        y      = LayerNorm(a);  out = y + fc2(ReLU(fc1(y)))          # (B, H_q*W_q, C_t)

    There is no residual around the attention and no norm before it (official ``fmd.py``).
    Initialisation: ``query`` N(0, 1) (the official ``nn.Embedding`` default), ``pos_embed``
    truncated normal with std 0.02, PyTorch defaults elsewhere.

    Args:
        in_channels (int): Student channels ``C_s``.
        embed_dims (int): Teacher token width ``C_t`` (output width).
        student_hw (Sequence[int]): Student grid ``(H_s, W_s)``; sizes ``pos_embed``.
        query_hw (Sequence[int]): Query (output) grid ``(H_q, W_q)``, the teacher's token grid.
        num_heads (int): Attention heads; must divide ``embed_dims``. Defaults to 8.
        softmax_scale (float): Extra factor ``s`` > 0 on the attention logits, on top of
            ``d_h ** -0.5`` with ``d_h = embed_dims // num_heads``. Defaults to 1.0.
        learnable_query (bool): True: a learnable ``(H_q*W_q, C_t)`` query table and no query
            argument. False: queries must be passed to :meth:`forward` (ScaleKD's TPP
            "input-dependent queries"). Defaults to True.
        stem_norm (str): Stem norm, ``'BN'`` (BatchNorm2d) or ``'LN'`` (LayerNorm over channels,
            the official Swin-T student variant). Defaults to ``'BN'``.
        mlp_ratio (float): MLP hidden width as a multiple of ``embed_dims``. Defaults to 4.0.
        fused_attention (bool): Use ``F.scaled_dot_product_attention``; False uses an explicit
            matmul/softmax reference path with the same result. Defaults to True.
        init_cfg (dict | list[dict], optional): MMEngine initialisation config. Defaults to None.

    Shapes:
        - x: ``(B, C_s, H_s, W_s)`` or tokens ``(B, H_s*W_s, C_s)`` in raster order.
        - query: ``(B, H_q*W_q, C_t)`` or a map ``(B, C_t, H_q, W_q)``; only when
          ``learnable_query=False``.
        - output: ``(B, H_q*W_q, C_t)``.

    Examples:
        >>> import torch
        >>> cap = CrossAttentionProjector(16, 32, student_hw=(6, 4), query_hw=(3, 2),
        ...                               num_heads=4)
        >>> cap(torch.randn(2, 16, 6, 4)).shape
        torch.Size([2, 6, 32])
    """

    def __init__(self,
                 in_channels: int,
                 embed_dims: int,
                 student_hw: Sequence[int],
                 query_hw: Sequence[int],
                 num_heads: int = 8,
                 softmax_scale: float = 1.0,
                 learnable_query: bool = True,
                 stem_norm: Literal['BN', 'LN'] = 'BN',
                 mlp_ratio: float = 4.0,
                 fused_attention: bool = True,
                 init_cfg: Optional[Union[dict, list]] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.in_channels = _positive_int(in_channels, 'in_channels')
        self.embed_dims = _positive_int(embed_dims, 'embed_dims')
        self.num_heads = _positive_int(num_heads, 'num_heads')
        if self.embed_dims % self.num_heads != 0:
            raise ValueError(f'embed_dims ({embed_dims}) must be divisible by num_heads '
                             f'({num_heads})')
        self.student_hw = _grid(student_hw, 'student_hw')
        self.query_hw = _grid(query_hw, 'query_hw')
        if (not isinstance(softmax_scale, numbers.Real) or isinstance(softmax_scale, bool)
                or softmax_scale <= 0):
            raise ValueError(f'softmax_scale must be a float > 0, got {softmax_scale!r}')
        if (not isinstance(mlp_ratio, numbers.Real) or isinstance(mlp_ratio, bool)
                or mlp_ratio <= 0 or int(embed_dims * mlp_ratio) < 1):
            raise ValueError(f'mlp_ratio must be a float > 0 giving a hidden width >= 1, '
                             f'got {mlp_ratio!r}')
        if stem_norm not in _STEM_NORMS:
            raise ValueError(f'stem_norm must be one of {_STEM_NORMS}, got {stem_norm!r}')
        for name, flag in (('learnable_query', learnable_query),
                           ('fused_attention', fused_attention)):
            if not isinstance(flag, bool):
                raise TypeError(f'{name} must be a bool, got {flag!r}')

        c_s, c_t = self.in_channels, self.embed_dims
        self.head_dims = c_t // self.num_heads
        self.softmax_scale = float(softmax_scale)
        # Official scaling: the usual d_h^-0.5 times an extra temperature-like factor.
        self.scale = self.head_dims**-0.5 * self.softmax_scale
        self.learnable_query = learnable_query
        self.fused_attention = fused_attention
        self.stem_norm = stem_norm

        norm = nn.BatchNorm2d(c_s) if stem_norm == 'BN' else LayerNorm2d(c_s, eps=1e-5)
        self.stem = nn.Sequential(
            nn.Conv2d(c_s, c_s, kernel_size=3, stride=1, padding=1, bias=True), norm,
            nn.ReLU(inplace=True))
        self.pos_embed = nn.Parameter(torch.zeros(1, c_s, *self.student_hw))
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        num_queries = self.query_hw[0] * self.query_hw[1]
        if learnable_query:
            self.query = nn.Parameter(torch.randn(num_queries, c_t))
        else:
            self.register_parameter('query', None)
        self.query_proj = nn.Sequential(nn.Conv2d(c_t, c_t, kernel_size=1), nn.ReLU(inplace=True))

        self.q = nn.Linear(c_t, c_t)
        self.k = nn.Linear(c_s, c_t)
        self.v = nn.Linear(c_s, c_t)
        self.proj = nn.Linear(c_t, c_t)
        self.norm = nn.LayerNorm(c_t, eps=1e-5)
        hidden = int(c_t * mlp_ratio)
        self.mlp = nn.Sequential(
            OrderedDict(fc1=nn.Linear(c_t, hidden), act=nn.ReLU(inplace=True),
                        fc2=nn.Linear(hidden, c_t)))

    def _student_map(self, x: Tensor) -> Tensor:
        """Return ``x`` as ``(B, C_s, H_s, W_s)``, raising on a wrong shape."""
        c, (h, w) = self.in_channels, self.student_hw
        if isinstance(x, Tensor) and x.dim() == 4 and tuple(x.shape[1:]) == (c, h, w):
            return x
        if isinstance(x, Tensor) and x.dim() == 3 and tuple(x.shape[1:]) == (h * w, c):
            return x.transpose(1, 2).reshape(x.shape[0], c, h, w)
        got = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
        raise ValueError(f'CrossAttentionProjector expected student input (B, {c}, {h}, {w}) '
                         f'or tokens (B, {h * w}, {c}), got {got}')

    def _query_map(self, query: Optional[Tensor], batch: int) -> Tensor:
        """Return the raw queries as a ``(B, C_t, H_q, W_q)`` grid."""
        c, (h, w) = self.embed_dims, self.query_hw
        if self.learnable_query:
            if query is not None:
                raise ValueError('this CrossAttentionProjector has learnable_query=True and '
                                 'does not take a query argument; build it with '
                                 'learnable_query=False to supply queries')
            return self.query.t().reshape(1, c, h, w).expand(batch, -1, -1, -1)
        if query is None:
            raise ValueError('this CrossAttentionProjector has learnable_query=False, so a '
                             f'query of shape ({batch}, {h * w}, {c}) must be passed')
        got = tuple(query.shape) if isinstance(query, Tensor) else type(query).__name__
        if got == (batch, h * w, c):
            return query.transpose(1, 2).reshape(batch, c, h, w)
        if got == (batch, c, h, w):
            return query
        raise ValueError(f'CrossAttentionProjector expected query ({batch}, {h * w}, {c}) or '
                         f'map ({batch}, {c}, {h}, {w}), got {got}')

    def _attention(self, q: Tensor, k: Tensor, v: Tensor) -> Tensor:
        """Multi-head attention on ``(B, heads, N, d_h)`` tensors."""
        if self.fused_attention:
            return F.scaled_dot_product_attention(q, k, v, scale=self.scale)
        attn = torch.matmul(q, k.transpose(-2, -1)) * self.scale
        return torch.matmul(attn.softmax(dim=-1), v)

    def forward(self, x: Tensor, query: Optional[Tensor] = None) -> Tensor:
        """Project student features onto the query grid in the teacher's width.

        Args:
            x (Tensor): Student features ``(B, C_s, H_s, W_s)`` or tokens
                ``(B, H_s*W_s, C_s)``.
            query (Tensor, optional): Queries ``(B, H_q*W_q, C_t)`` or ``(B, C_t, H_q, W_q)``;
                required iff ``learnable_query=False``. Defaults to None.

        Returns:
            Tensor: Tokens ``(B, H_q*W_q, C_t)`` in raster order of the query grid.
        """
        x = self._student_map(x)
        b = x.shape[0]
        query_map = self._query_map(query, b)
        if not torch.is_autocast_enabled(x.device.type):
            # Outside autocast every input must match the weights' dtype: the student map and
            # the (TPP) queries may come from an fp16/bf16 region while the connector runs in
            # fp32, or the other way round (the fp16 "query vs student tokens" mismatch).
            # Under autocast the ops cast for themselves.
            dtype = self.stem[0].weight.dtype
            x, query_map = x.to(dtype), query_map.to(dtype)
        stem = self.stem(x)
        # pos_embed follows the stem's dtype (a no-op in fp32) so that the tokens stay in the
        # autocast dtype instead of being promoted to fp32 by the addition.
        tokens = (stem + self.pos_embed.to(stem.dtype)).flatten(2).transpose(1, 2)  # (B,N_s,C_s)
        q_in = self.query_proj(query_map).flatten(2).transpose(1, 2)

        heads, d_h = self.num_heads, self.head_dims
        q = self.q(q_in).reshape(b, -1, heads, d_h).transpose(1, 2)  # (B, h, N_q, d_h)
        k = self.k(tokens).reshape(b, -1, heads, d_h).transpose(1, 2)  # (B, h, N_s, d_h)
        v = self.v(tokens).reshape(b, -1, heads, d_h).transpose(1, 2)
        out = self._attention(q, k, v).transpose(1, 2).reshape(b, -1, self.embed_dims)
        out = self.norm(self.proj(out))
        return out + self.mlp(out)
