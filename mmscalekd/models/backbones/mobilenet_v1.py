"""MobileNet-V1 backbone with ScaleKD's four-stage split.

Paper: *MobileNets: Efficient Convolutional Neural Networks for Mobile Vision Applications*
(https://arxiv.org/abs/1704.04861); stage split from ScaleKD (https://arxiv.org/abs/2411.06786).
"""
from __future__ import annotations

from typing import List, Optional, Sequence, Tuple

import torch.nn as nn
from mmcv.cnn import ConvModule
from mmengine.model import Sequential
from mmpretrain.models.backbones.base_backbone import BaseBackbone
from mmpretrain.models.utils import make_divisible
from torch import Tensor
from torch.nn.modules.batchnorm import _BatchNorm

from mmscalekd.registry import MODELS

# (out_channels, stride) of the 13 depthwise-separable blocks, split into ScaleKD's
# four stages that the official loss configs expect (docs/recipe_audit.md, MobileNet-V1
# student.taps). Output strides at 224: 4 (56^2), 16 (14^2), 16 (14^2), 32 (7^2).
_STAGES: Tuple[Tuple[Tuple[int, int], ...], ...] = (
    ((64, 1), (128, 2), (128, 1)),                 # after the stride-2 stem: 128 @ 56^2
    ((256, 2), (256, 1), (512, 2), (512, 1)),      # 512 @ 14^2
    ((512, 1), (512, 1), (512, 1), (512, 1)),      # 512 @ 14^2
    ((1024, 2), (1024, 1)),                        # 1024 @ 7^2
)
_STEM_CHANNELS = 32


@MODELS.register_module()
class MobileNetV1(BaseBackbone):
    """MobileNet-V1 (the standard 1.0 widths) split into ScaleKD's four stages.

    A stride-2 3x3 stem conv (32 channels) and 13 depthwise-separable blocks
    (3x3 depthwise conv + BN + ReLU, 1x1 pointwise conv + BN + ReLU), grouped as in
    the official ScaleKD MobileNet-V1 (its s3/s4 taps are read as ``fea_s[2]``, ``fea_s[3]`` at
    ``deep-optimization/ScaleKD@ee56c7e mmcls/models/classifiers/distiller.py:161``; the
    official backbone file was not available to our audit, so the widths and grids follow
    the official loss configs, see ``docs/recipe_audit.md``):

    ====== ============================== =================== ==========
    stage  blocks                         output (224 input)  stride
    ====== ============================== =================== ==========
    0      stem + dw64 + dw128/2 + dw128  128 x 56 x 56       4
    1      dw256/2 + dw256 + dw512/2 + dw512  512 x 14 x 14   16
    2      4 x dw512                      512 x 14 x 14       16
    3      dw1024/2 + dw1024              1024 x 7 x 7        32
    ====== ============================== =================== ==========

    With a GAP neck and a 1024->1000 linear head the classifier has 4.23 M params.

    Args:
        widen_factor (float): Width multiplier; channels are rounded to
            multiples of 8. Defaults to 1.0.
        out_indices (Sequence[int]): Stages to output (0-3, negatives allowed).
            Defaults to (3, ).
        frozen_stages (int): Stages to freeze (-1: none). Defaults to -1.
        in_channels (int): Input channels. Defaults to 3.
        norm_cfg (dict): Norm config. Defaults to ``dict(type='BN')``.
        act_cfg (dict): Activation config. Defaults to ``dict(type='ReLU')``.
        norm_eval (bool): Keep BN in eval mode during training. Defaults to False.
        init_cfg (dict | list, optional): Initialisation config. Defaults to
            Kaiming for convs and constant 1 for norms.

    Shapes:
        - input: ``(B, in_channels, H, W)``
        - output: a tuple with one ``(B, C_i, H / s_i, W / s_i)`` map per out index.

    Examples:
        >>> import torch, mmscalekd
        >>> from mmscalekd.models.backbones import MobileNetV1
        >>> m = MobileNetV1(out_indices=(2, 3)).eval()
        >>> [tuple(o.shape) for o in m(torch.rand(1, 3, 224, 224))]
        [(1, 512, 14, 14), (1, 1024, 7, 7)]
    """

    def __init__(self,
                 widen_factor: float = 1.0,
                 out_indices: Sequence[int] = (3, ),
                 frozen_stages: int = -1,
                 in_channels: int = 3,
                 norm_cfg: dict = dict(type='BN'),
                 act_cfg: dict = dict(type='ReLU'),
                 norm_eval: bool = False,
                 init_cfg: Optional[dict | list] = [
                     dict(type='Kaiming', layer=['Conv2d']),
                     dict(type='Constant', val=1, layer=['_BatchNorm', 'GroupNorm'])
                 ]) -> None:
        super().__init__(init_cfg)
        if isinstance(widen_factor, bool) or not isinstance(widen_factor, (int, float)) \
                or widen_factor <= 0:
            raise ValueError(f'widen_factor must be a positive number, got {widen_factor!r}')
        if isinstance(out_indices, int):
            out_indices = (out_indices, )
        if not isinstance(out_indices, Sequence) or not out_indices:
            raise TypeError(f'out_indices must be a non-empty sequence of ints, '
                            f'got {out_indices!r}')
        num_stages = len(_STAGES)
        resolved: List[int] = []
        for index in out_indices:
            if not isinstance(index, int) or not -num_stages <= index < num_stages:
                raise ValueError(f'out_indices entries must be ints in [-{num_stages}, '
                                 f'{num_stages - 1}], got {index!r}')
            resolved.append(index % num_stages)
        if not isinstance(frozen_stages, int) or not -1 <= frozen_stages < num_stages:
            raise ValueError(f'frozen_stages must be an int in [-1, {num_stages - 1}], '
                             f'got {frozen_stages!r}')
        self.widen_factor = widen_factor
        self.out_indices = tuple(resolved)
        self.frozen_stages = frozen_stages
        self.norm_eval = norm_eval

        def width(c: int) -> int:
            return make_divisible(c * widen_factor, 8)

        channels = width(_STEM_CHANNELS)
        self.stem = ConvModule(in_channels, channels, 3, stride=2, padding=1, bias=False,
                               norm_cfg=norm_cfg, act_cfg=act_cfg)
        self.stages = nn.ModuleList()
        self.num_features: List[int] = []
        for stage_spec in _STAGES:
            blocks = []
            for out, stride in stage_spec:
                out = width(out)
                blocks.append(Sequential(
                    ConvModule(channels, channels, 3, stride=stride, padding=1,
                               groups=channels, bias=False, norm_cfg=norm_cfg, act_cfg=act_cfg),
                    ConvModule(channels, out, 1, bias=False, norm_cfg=norm_cfg,
                               act_cfg=act_cfg)))
                channels = out
            self.stages.append(Sequential(*blocks))
            self.num_features.append(channels)
        self._freeze_stages()

    def forward(self, x: Tensor) -> Tuple[Tensor, ...]:
        """Args:
            x (Tensor): ``(B, in_channels, H, W)``.

        Returns:
            Tuple[Tensor, ...]: the maps of the stages in ``out_indices``, in stage order.
        """
        x = self.stem(x)
        outs = []
        for i, stage in enumerate(self.stages):
            x = stage(x)
            if i in self.out_indices:
                outs.append(x)
        return tuple(outs)

    def _freeze_stages(self) -> None:
        if self.frozen_stages >= 0:
            self.stem.eval()
            for p in self.stem.parameters():
                p.requires_grad = False
        for i in range(self.frozen_stages + 1):
            self.stages[i].eval()
            for p in self.stages[i].parameters():
                p.requires_grad = False

    def train(self, mode: bool = True) -> 'MobileNetV1':
        """Set train mode, keeping frozen stages (and BN with ``norm_eval``) in eval."""
        super().train(mode)
        self._freeze_stages()
        if mode and self.norm_eval:
            for m in self.modules():
                if isinstance(m, _BatchNorm):
                    m.eval()
        return self
