"""timm ``ConvNeXt`` teachers.

Paper: *ScaleKD: Strong Vision Transformers Could Be Excellent Teachers*, NeurIPS 2024
(https://arxiv.org/abs/2411.06786).
"""
from __future__ import annotations

from typing import Any, Optional, Tuple

import torch.nn as nn
from torch import Tensor

from .timm_teacher import TimmBuild, TimmTeacher, refuse_tpp_blocks, register_timm_family
from .tpp_teacher import TPPTeacher


def _conv_out(size: int, conv: nn.Conv2d, dim: int) -> int:
    k, s, p, d = conv.kernel_size[dim], conv.stride[dim], conv.padding[dim], conv.dilation[dim]
    return (size + 2 * p - d * (k - 1) - 1) // s + 1


@register_timm_family
class TimmConvNeXtTeacher(TimmTeacher, TPPTeacher):
    """timm ``ConvNeXt`` (``timm/models/convnext.py``): ``convnext_*``.

    * **Target**: the stage-4 map (``forward_intermediates(x, indices=1)``) after the
      head's LayerNorm applied per location (``norm_pre`` instead for ``head_norm_first``
      models), ``(B, C4, H4, W4)``.
    * **Logits**: ``forward_head`` of the stage-4 map (after ``norm_pre``).
    * **TPP last stage**: ``stages[-1]`` (downsample + blocks) and that norm on stage-3
      tokens ``(B, H3*W3, C3)``.

    Args:
        model_name (str): See :class:`TimmTeacher`.
        **kwargs: See :class:`TimmTeacher` (no ``tpp_blocks``); ``input_size`` is free and
            defaults to the ``pretrained_cfg``'s.
    """

    family = 'convnext'
    description = 'timm ConvNeXt (convnext_*)'
    timm_modules = ('convnext', )
    timm_class = 'timm.models.convnext.ConvNeXt'

    def __init__(self, model_name: str, tpp_blocks: Optional[int] = None,
                 **kwargs: Any) -> None:
        build = TimmBuild(type(self), model_name, **kwargs)
        refuse_tpp_blocks(tpp_blocks, build.label, self.family)
        m = build.model
        size = build.input_size or build.own_input_size()
        hw = list(size)
        tpp_hw = None
        for conv in [c for c in m.stem.modules() if isinstance(c, nn.Conv2d)]:
            hw = [_conv_out(hw[d], conv, d) for d in range(2)]
        for i, stage in enumerate(m.stages):
            for conv in [c for c in stage.downsample.modules() if isinstance(c, nn.Conv2d)]:
                hw = [_conv_out(hw[d], conv, d) for d in range(2)]
            if i == len(m.stages) - 2:
                tpp_hw = (hw[0], hw[1])
        super().__init__(m, **build.options(
            size, final_dims=int(m.num_features), final_hw=(hw[0], hw[1]),
            tpp_dims=int(m.stages[-2].blocks[-1].conv_dw.out_channels), tpp_hw=tpp_hw))
        self.model_name = model_name

    def _target_norm(self, x: Tensor) -> Tensor:
        m = self.model
        if isinstance(m.norm_pre, nn.Identity):
            return m.head.norm(x)
        return m.norm_pre(x)

    def _forward_targets(self, x: Tensor,
                         with_logits: bool) -> Tuple[Tensor, Optional[Tensor]]:
        m = self.model
        x = m.forward_intermediates(x, indices=1, intermediates_only=True)[-1]
        logits = m.forward_head(m.norm_pre(x)) if with_logits else None
        return self._target_norm(x), logits

    def _last_stage(self, tokens: Tensor, prefix: Optional[Tensor]) -> Tensor:
        x = tokens.transpose(1, 2).reshape(tokens.shape[0], self.tpp_dims, *self.tpp_hw)
        return self._target_norm(self.model.stages[-1](x))
