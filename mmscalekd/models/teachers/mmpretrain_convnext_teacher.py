"""Teacher adapter for mmpretrain ConvNeXt classifiers.

Paper: *ScaleKD: Strong Vision Transformers Could Be Excellent Teachers*, NeurIPS 2024
(https://arxiv.org/abs/2411.06786).
"""
from __future__ import annotations

from typing import Optional, Tuple

import torch.nn as nn
from mmpretrain.models.backbones import ConvNeXt
from torch import Tensor

from mmscalekd.registry import MODELS

from .base_teacher import BaseTeacher, classifier_parts, head_logits


def _conv_out(size: int, conv: nn.Conv2d, dim: int) -> int:
    k, s, p, d = conv.kernel_size[dim], conv.stride[dim], conv.padding[dim], conv.dilation[dim]
    return (size + 2 * p - d * (k - 1) - 1) // s + 1


@MODELS.register_module()
class MMPretrainConvNeXtTeacher(BaseTeacher):
    """Frozen mmpretrain ``ImageClassifier`` with a ``ConvNeXt`` backbone.

    * **Target**: the last stage's map after the backbone's final norm
      (``norm3`` applied per location), ``(B, C4, H4, W4)``.
    * **Logits**: the classifier's own path: with ``gap_before_final_norm=True``
      (mmpretrain's default) ``head(norm3(GAP(x)))``, else ``head(neck(norm3(x)))``.
    * **TPP last stage**: stage-4 downsample (LN + 2x2 conv) + stage-4 blocks +
      final norm, on the stage-3 output as tokens ``(B, H3*W3, C3)``.

    Args:
        model (dict | nn.Module): mmpretrain ``ImageClassifier`` config or module.
        **kwargs: See :class:`BaseTeacher`. ConvNeXt has no configured image size,
            so ``input_size`` is required.
    """

    def _check_model(self) -> None:
        backbone, _, _ = classifier_parts(self.model)
        if not isinstance(backbone, ConvNeXt):
            raise TypeError(f'MMPretrainConvNeXtTeacher needs a ConvNeXt backbone, got '
                            f'{type(backbone).__name__}')
        last = len(backbone.stages) - 1
        if last not in backbone.out_indices:
            raise ValueError(f'the ConvNeXt backbone out_indices {backbone.out_indices} must '
                             f'contain the last stage ({last}): that creates its final norm')

    def _default_input_size(self) -> Tuple[int, int]:
        raise ValueError('MMPretrainConvNeXtTeacher: ConvNeXt has no configured image size; '
                         'pass input_size (e.g. 224).')

    def _resolve_shapes(self) -> None:
        bb = self.model.backbone
        hw = list(self.input_size)
        for i, down in enumerate(bb.downsample_layers):
            conv = [m for m in down.modules() if isinstance(m, nn.Conv2d)][-1]
            hw = [_conv_out(hw[d], conv, d) for d in range(2)]
            if i == len(bb.downsample_layers) - 2:
                self.tpp_hw = (hw[0], hw[1])
        self.final_hw = (hw[0], hw[1])
        self.tpp_dims = int(bb.channels[-2])
        self.final_dims = int(bb.channels[-1])

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

    def forward_last_stage(self, tokens: Tensor) -> Tensor:
        """Stage-4 downsample, stage-4 blocks, final norm.

        Args:
            tokens (Tensor): ``(B, H3*W3, C3)`` in raster order.

        Returns:
            Tensor: ``(B, C4, H4, W4)``.
        """
        self._check_tokens(tokens)
        bb = self.model.backbone
        B = tokens.shape[0]
        x = tokens.transpose(1, 2).reshape(B, self.tpp_dims, *self.tpp_hw)
        x = bb.stages[-1](bb.downsample_layers[-1](x))
        return self._final_norm()(x)
