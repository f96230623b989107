"""Teacher adapter for mmpretrain Swin Transformer classifiers (ScaleKD's Swin-S/B/L).

Paper: *ScaleKD: Strong Vision Transformers Could Be Excellent Teachers*, NeurIPS 2024
(https://arxiv.org/abs/2411.06786).
"""
from __future__ import annotations

from typing import Optional, Tuple

import torch
from mmpretrain.models.backbones import SwinTransformer
from mmpretrain.models.utils import resize_pos_embed
from torch import Tensor

from mmscalekd.registry import MODELS

from .base_teacher import BaseTeacher, classifier_parts, head_logits, tokens_to_map


@MODELS.register_module()
class MMPretrainSwinTeacher(BaseTeacher):
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
        **kwargs: See :class:`BaseTeacher` (``checkpoint``, ``mean``, ``std``,
            ``input_size``, ``train_mode``, ``init_cfg``). ``input_size`` defaults
            to the backbone's ``img_size``.

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
        ...     head=dict(type='LinearClsHead', num_classes=10, in_channels=128))))
        >>> t.tpp_dims, t.tpp_hw, t.final_dims, t.final_hw
        (64, (4, 4), 128, (2, 2))
        >>> tuple(t.forward_targets(torch.rand(2, 3, 64, 64)).feature.shape)
        (2, 128, 2, 2)
    """

    def _check_model(self) -> None:
        backbone, _, _ = classifier_parts(self.model)
        if not isinstance(backbone, SwinTransformer):
            raise TypeError(f'MMPretrainSwinTeacher needs a SwinTransformer backbone, got '
                            f'{type(backbone).__name__}')
        last = len(backbone.stages) - 1
        if last < 1:
            raise ValueError('MMPretrainSwinTeacher needs a Swin with at least 2 stages')
        if last not in [i % len(backbone.stages) for i in backbone.out_indices]:
            raise ValueError(f'the Swin backbone out_indices {backbone.out_indices} must '
                             f'contain the last stage ({last}): that creates its final norm')

    def _default_input_size(self) -> Tuple[int, int]:
        size = tuple(self.model.backbone.patch_embed.init_input_size)
        return int(size[0]), int(size[1])

    @torch.no_grad()
    def _resolve_shapes(self) -> None:
        bb = self.model.backbone
        # Cheap dry run of the patch embedding and the merging layers only (no
        # attention blocks): gives the grids at the configured input size.
        x, hw = bb.patch_embed(torch.zeros(1, bb.patch_embed.projection.in_channels,
                                           *self.input_size))
        for stage in bb.stages[:-2]:
            x = torch.zeros(1, hw[0] * hw[1], stage.embed_dims)
            x, hw = stage.downsample(x, hw)
        self.tpp_hw = (int(hw[0]), int(hw[1]))
        self.tpp_dims = int(bb.stages[-2].embed_dims)
        x = torch.zeros(1, hw[0] * hw[1], self.tpp_dims)
        x, hw = bb.stages[-2].downsample(x, hw)
        self.final_hw = (int(hw[0]), int(hw[1]))
        self.final_dims = int(bb.stages[-1].embed_dims)

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

    def forward_last_stage(self, tokens: Tensor) -> Tensor:
        """Patch merging of stage 3, stage-4 blocks, final norm.

        Args:
            tokens (Tensor): ``(B, H3*W3, C3)`` in raster order.

        Returns:
            Tensor: ``(B, C4, H4, W4)``.
        """
        self._check_tokens(tokens)
        bb = self.model.backbone
        x, hw = bb.stages[-2].downsample(tokens, self.tpp_hw)
        x, hw = bb.stages[-1](x, hw, do_downsample=False)
        return tokens_to_map(self._final_norm(x), tuple(hw))
