"""Teacher adapter for mmpretrain Swin Transformer classifiers (ScaleKD's Swin-S/B/L).

Paper: *ScaleKD: Strong Vision Transformers Could Be Excellent Teachers*, NeurIPS 2024
(https://arxiv.org/abs/2411.06786).
"""
from __future__ import annotations

from typing import Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
from mmpretrain.models.backbones import SwinTransformer
from mmpretrain.models.utils import resize_pos_embed
from torch import Tensor

from mmscalekd.registry import MODELS

from .base_teacher import (
    build_teacher_model,
    classifier_parts,
    head_logits,
    head_num_classes,
    to_hw,
    tokens_to_map,
)
from .tpp_teacher import TPPTeacher


@MODELS.register_module()
class MMPretrainSwinTeacher(TPPTeacher):
    """Frozen mmpretrain ``ImageClassifier`` with a ``SwinTransformer`` backbone.

    * **Target**: the last stage's output after its final norm (``norm3`` for a
      4-stage Swin), as a map ``(B, C4, H4, W4)`` (Swin-L at 224: 1536 x 7 x 7).
    * **Logits**: ``head(neck(target))`` -- the classifier's own GAP + FC.
    * **TPP last stage** (:meth:`forward_last_stage`): mmpretrain keeps the patch
      merging that ends stage 3 in ``stages[2].downsample``; the last stage is that
      merging, then ``stages[3]``'s blocks, then the final norm. Its input is the
      stage-3 output *before* merging, tokens ``(B, H3*W3, C3)`` (Swin-L: 196 x 768).

    The backbone's ``out_indices`` must contain the last stage (mmpretrain's
    default ``(3,)``), because that creates the final norm.

    Args:
        model (dict | nn.Module): mmpretrain ``ImageClassifier`` config (or module)
            whose backbone is a ``SwinTransformer``.
        input_size (int | Sequence[int], optional): Resolution the teacher runs at.
            Defaults to the backbone's ``img_size``.
        **kwargs: See :class:`BaseTeacher` (``checkpoint``, ``mean``, ``std``,
            ``channel_order``, ``student_*``, ``train_mode``, ``allow_random_teacher``,
            ``init_cfg``).

    Examples:
        >>> import mmscalekd, torch
        >>> from mmscalekd.utils import register_all_modules
        >>> register_all_modules()
        >>> from mmscalekd.registry import MODELS
        >>> t = MODELS.build(dict(type='MMPretrainSwinTeacher', model=dict(
        ...     type='ImageClassifier',
        ...     backbone=dict(type='SwinTransformer', img_size=64, window_size=2,
        ...                   arch=dict(embed_dims=16, depths=[1, 1, 1, 1],
        ...                             num_heads=[1, 1, 1, 1])),
        ...     neck=dict(type='GlobalAveragePooling'),
        ...     head=dict(type='LinearClsHead', num_classes=10, in_channels=128)),
        ...     allow_random_teacher=True))
        >>> t.tpp_dims, t.tpp_hw, t.final_dims, t.final_hw
        (64, (4, 4), 128, (2, 2))
        >>> tuple(t.forward_targets(torch.rand(2, 3, 64, 64)).feature.shape)
        (2, 128, 2, 2)
    """

    def __init__(self, model: Union[dict, nn.Module],
                 input_size: Optional[Union[int, Sequence[int]]] = None, **kwargs) -> None:
        model = build_teacher_model(model, 'MMPretrainSwinTeacher.model')
        backbone, _, head = classifier_parts(model)
        if not isinstance(backbone, SwinTransformer):
            raise TypeError(f'MMPretrainSwinTeacher needs a SwinTransformer backbone, got '
                            f'{type(backbone).__name__}')
        last = len(backbone.stages) - 1
        if last < 1:
            raise ValueError('MMPretrainSwinTeacher needs a Swin with at least 2 stages')
        if last not in [i % len(backbone.stages) for i in backbone.out_indices]:
            raise ValueError(f'the Swin backbone out_indices {backbone.out_indices} must '
                             f'contain the last stage ({last}): that creates its final norm')
        if input_size is None:
            input_size = tuple(int(s) for s in backbone.patch_embed.init_input_size)
        input_size = to_hw(input_size, 'input_size')
        (tpp_dims, tpp_hw), (final_dims, final_hw) = _swin_geometry(backbone, input_size)
        super().__init__(model, input_size=input_size, final_dims=final_dims,
                         final_hw=final_hw, tpp_dims=tpp_dims, tpp_hw=tpp_hw,
                         num_classes=head_num_classes(head, 'MMPretrainSwinTeacher'), **kwargs)

    def _final_norm(self, x: Tensor) -> Tensor:
        bb = self.model.backbone
        return getattr(bb, f'norm{len(bb.stages) - 1}')(x)

    def _forward_targets(self, x: Tensor,
                         with_logits: bool = True) -> Tuple[Tensor, Optional[Tensor]]:
        backbone, neck, head = classifier_parts(self.model)
        bb = backbone
        x, hw = bb.patch_embed(x)
        if bb.use_abs_pos_embed:
            x = x + resize_pos_embed(bb.absolute_pos_embed, bb.patch_resolution, hw,
                                     bb.interpolate_mode, bb.num_extra_tokens)
        x = bb.drop_after_pos(x)
        for stage in bb.stages:
            x, hw = stage(x, hw, do_downsample=True)
        feature = tokens_to_map(self._final_norm(x), tuple(hw))
        if not with_logits:
            return feature, None
        return feature, head_logits(neck, head, (feature, ))

    def _last_stage(self, tokens: Tensor, prefix: Optional[Tensor]) -> Tensor:
        """Patch merging of stage 3, stage-4 blocks, final norm.

        Args:
            tokens (Tensor): ``(B, H3*W3, C3)`` in raster order.
            prefix (None): Swin has no prefix tokens.

        Returns:
            Tensor: ``(B, C4, H4, W4)``.
        """
        bb = self.model.backbone
        x, hw = bb.stages[-2].downsample(tokens, self.tpp_hw)
        x, hw = bb.stages[-1](x, hw, do_downsample=False)
        return tokens_to_map(self._final_norm(x), tuple(hw))


@torch.no_grad()
def _swin_geometry(bb: SwinTransformer, input_size: Tuple[int, int]
                   ) -> Tuple[Tuple[int, Tuple[int, int]], Tuple[int, Tuple[int, int]]]:
    """``((tpp_dims, tpp_hw), (final_dims, final_hw))`` of a Swin at ``input_size``.

    A dry run of the patch embedding and the merging layers only (no attention blocks).
    """
    x, hw = bb.patch_embed(torch.zeros(1, bb.patch_embed.projection.in_channels, *input_size))
    for stage in bb.stages[:-2]:
        x = torch.zeros(1, hw[0] * hw[1], stage.embed_dims)
        x, hw = stage.downsample(x, hw)
    tpp_hw = (int(hw[0]), int(hw[1]))
    tpp_dims = int(bb.stages[-2].embed_dims)
    x = torch.zeros(1, hw[0] * hw[1], tpp_dims)
    x, hw = bb.stages[-2].downsample(x, hw)
    return (tpp_dims, tpp_hw), (int(bb.stages[-1].embed_dims), (int(hw[0]), int(hw[1])))
