"""ViT student with ScaleKD's stage taps as maps plus the mean-token head input of ViT-B/14.

Paper: *ScaleKD: Strong Vision Transformers Could Be Excellent Teachers*, NeurIPS 2024
(https://arxiv.org/abs/2411.06786).
"""
from __future__ import annotations

from typing import Optional, Tuple

from mmpretrain.models.backbones import VisionTransformer
from mmpretrain.models.utils import build_norm_layer
from torch import Tensor

from mmscalekd.registry import MODELS


@MODELS.register_module()
class VisionTransformerTaps(VisionTransformer):
    """mmpretrain ``VisionTransformer`` with map taps and a separately pooled head input.

    The official ViT-B/14 student (deep-optimization/ScaleKD@5ba1f04
    ``configs/deit/deit-base_pt-4xb256_p14_in1k.py:18``) sets mmcls' ``avg_token=True`` and
    no neck: its head sees ``LayerNorm(mean of the final-normed patch tokens)``, the same as
    mmpretrain's ``out_type='avg_featmap'`` (``ln2`` after the mean), while the distiller taps
    patch-token *maps*. Stock mmpretrain gives one ``out_type`` for all outputs, so this class
    returns the ``'featmap'`` outputs of every out index and, with ``head_pool='avg_ln'``,
    appends ``ln2(mean)`` for the head (use ``neck=None``). Parameter names equal those of
    ``VisionTransformer(out_type='avg_featmap')``, so an extracted student loads into the
    stock class.

    Args:
        head_pool (str): ``'avg_ln'`` appends the normed mean token; ``'none'`` returns the
            maps only (then use a ``GlobalAveragePooling`` neck). Defaults to 'avg_ln'.
        out_type (str): Must be ``'featmap'`` (the taps are maps). Defaults to 'featmap'.
        norm_cfg (dict): Norm of ``ln2`` (and of the stock layers). Defaults to
            ``dict(type='LN', eps=1e-6)``, mmpretrain's default.
        **kwargs: Other arguments of mmpretrain's ``VisionTransformer``.

    Shapes:
        - input: ``(B, 3, H, W)``
        - output: one ``(B, C, H / p, W / p)`` map per out index (layer order), then, with
          ``head_pool='avg_ln'``, a ``(B, C)`` vector.
    """

    HEAD_POOLS = ('avg_ln', 'none')

    def __init__(self, *args, head_pool: str = 'avg_ln', out_type: str = 'featmap',
                 norm_cfg: Optional[dict] = None, **kwargs) -> None:
        if head_pool not in self.HEAD_POOLS:
            raise ValueError(f'head_pool must be one of {self.HEAD_POOLS}, got {head_pool!r}')
        if out_type != 'featmap':
            raise ValueError(f"VisionTransformerTaps returns maps for the taps: out_type must be "
                             f"'featmap', got {out_type!r}; use head_pool='avg_ln' for a pooled "
                             'head input')
        norm_cfg = dict(type='LN', eps=1e-6) if norm_cfg is None else norm_cfg
        super().__init__(*args, out_type=out_type, norm_cfg=norm_cfg, **kwargs)
        self.head_pool = head_pool
        if head_pool == 'avg_ln':
            last = self.num_layers - 1
            if last not in self.out_indices or not self.final_norm:
                raise ValueError(f"head_pool='avg_ln' pools the final-normed output of the last "
                                 f'block: out_indices must include {last} (or -1) and '
                                 f'final_norm must be True, got out_indices={self.out_indices}, '
                                 f'final_norm={self.final_norm}')
            self.ln2 = build_norm_layer(norm_cfg, self.embed_dims)

    def forward(self, x: Tensor) -> Tuple[Tensor, ...]:
        """Args:
            x (Tensor): ``(B, 3, H, W)``.

        Returns:
            Tuple[Tensor, ...]: the maps of the out indices, then the ``(B, C)`` head vector
            when ``head_pool='avg_ln'``.
        """
        outs = super().forward(x)
        if self.head_pool == 'none':
            return outs
        return outs + (self.ln2(outs[-1].flatten(2).mean(dim=2)), )
