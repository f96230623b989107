"""Teacher adapter for mmpretrain ConvNeXt classifiers.

Paper: *ScaleKD: Strong Vision Transformers Could Be Excellent Teachers*, NeurIPS 2024
(https://arxiv.org/abs/2411.06786).
"""
from __future__ import annotations

from typing import Optional, Sequence, Tuple, Union

import torch.nn as nn
from mmpretrain.models.backbones import ConvNeXt
from torch import Tensor

from mmscalekd.registry import MODELS

from .base_teacher import (
    build_teacher_model,
    classifier_parts,
    head_logits,
    head_num_classes,
    to_hw,
)
from .tpp_teacher import TPPTeacher


def _conv_out(size: int, conv: nn.Conv2d, dim: int) -> int:
    k, s, p, d = conv.kernel_size[dim], conv.stride[dim], conv.padding[dim], conv.dilation[dim]
    return (size + 2 * p - d * (k - 1) - 1) // s + 1


@MODELS.register_module()
class MMPretrainConvNeXtTeacher(TPPTeacher):
    """Frozen mmpretrain ``ImageClassifier`` with a ``ConvNeXt`` backbone.

    * **Target**: the last stage's map after the backbone's final norm
      (``norm3`` applied per location), ``(B, C4, H4, W4)``.
    * **Logits**: the classifier's own path: with ``gap_before_final_norm=True``
      (mmpretrain's default) ``head(norm3(GAP(x)))``, else ``head(neck(norm3(x)))``.
    * **TPP last stage**: stage-4 downsample (LN + 2x2 conv) + stage-4 blocks +
      final norm, on the stage-3 output as tokens ``(B, H3*W3, C3)``.

    Args:
        model (dict | nn.Module): mmpretrain ``ImageClassifier`` config or module.
        input_size (int | Sequence[int]): Resolution the teacher runs at (required:
            ConvNeXt has no configured image size).
        **kwargs: See :class:`BaseTeacher`.
    """

    def __init__(self, model: Union[dict, nn.Module],
                 input_size: Optional[Union[int, Sequence[int]]] = None, **kwargs) -> None:
        model = build_teacher_model(model, 'MMPretrainConvNeXtTeacher.model')
        backbone, _, head = classifier_parts(model)
        if not isinstance(backbone, ConvNeXt):
            raise TypeError(f'MMPretrainConvNeXtTeacher needs a ConvNeXt backbone, got '
                            f'{type(backbone).__name__}')
        last = len(backbone.stages) - 1
        if last not in backbone.out_indices:
            raise ValueError(f'the ConvNeXt backbone out_indices {backbone.out_indices} must '
                             f'contain the last stage ({last}): that creates its final norm')
        if input_size is None:
            raise ValueError('MMPretrainConvNeXtTeacher: ConvNeXt has no configured image '
                             'size; pass input_size (e.g. 224).')
        input_size = to_hw(input_size, 'input_size')
        hw = list(input_size)
        tpp_hw = None
        for i, down in enumerate(backbone.downsample_layers):
            conv = [m for m in down.modules() if isinstance(m, nn.Conv2d)][-1]
            hw = [_conv_out(hw[d], conv, d) for d in range(2)]
            if i == len(backbone.downsample_layers) - 2:
                tpp_hw = (hw[0], hw[1])
        super().__init__(model, input_size=input_size, final_dims=int(backbone.channels[-1]),
                         final_hw=(hw[0], hw[1]), tpp_dims=int(backbone.channels[-2]),
                         tpp_hw=tpp_hw,
                         num_classes=head_num_classes(head, 'MMPretrainConvNeXtTeacher'),
                         **kwargs)

    def _final_norm(self) -> nn.Module:
        bb = self.model.backbone
        return getattr(bb, f'norm{len(bb.stages) - 1}')

    def _forward_targets(self, x: Tensor,
                         with_logits: bool = True) -> Tuple[Tensor, Optional[Tensor]]:
        backbone, neck, head = classifier_parts(self.model)
        for down, stage in zip(backbone.downsample_layers, backbone.stages):
            x = stage(down(x))
        norm = self._final_norm()
        feature = norm(x)
        if not with_logits:
            return feature, None
        if backbone.gap_before_final_norm:
            pooled = norm(x.mean((-2, -1), keepdim=True)).flatten(1)
            logits = head_logits(neck, head, (pooled, ))
        else:
            logits = head_logits(neck, head, (feature, ))
        return feature, logits

    def _last_stage(self, tokens: Tensor, prefix: Optional[Tensor]) -> Tensor:
        """Stage-4 downsample, stage-4 blocks, final norm.

        Args:
            tokens (Tensor): ``(B, H3*W3, C3)`` in raster order.
            prefix (None): ConvNeXt has no prefix tokens.

        Returns:
            Tensor: ``(B, C4, H4, W4)``.
        """
        bb = self.model.backbone
        B = tokens.shape[0]
        x = tokens.transpose(1, 2).reshape(B, self.tpp_dims, *self.tpp_hw)
        x = bb.stages[-1](bb.downsample_layers[-1](x))
        return self._final_norm()(x)
