"""Teacher adapter for mmpretrain plain ViTs: VisionTransformer, BEiTViT (EVA), ViTEVA02.

Paper: *ScaleKD: Strong Vision Transformers Could Be Excellent Teachers*, NeurIPS 2024
(https://arxiv.org/abs/2411.06786).
"""
from __future__ import annotations

from typing import Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
from mmpretrain.models.backbones import BEiTViT, VisionTransformer, ViTEVA02
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
class MMPretrainViTTeacher(TPPTeacher):
    """Frozen mmpretrain ``ImageClassifier`` with a plain ViT backbone.

    Covers ``VisionTransformer`` (ViT/DeiT), ``BEiTViT`` (BEiT and the EVA
    checkpoints mmpretrain loads into it, ScaleKD's "BEiT-L/14") and
    ``ViTEVA02``: they share the embed -> blocks -> final norm pattern and differ
    only in what a block receives (nothing / the shared relative position bias /
    the patch grid for RoPE).

    * **Target**: the last block's patch tokens after the final norm (when the
      backbone has one; BEiT/EVA with mean pooling have none), cls token dropped,
      as a map ``(B, C, Hp, Wp)`` (EVA-L/14 at 224: 1024 x 16 x 16). The official
      ViT-teacher path took the backbone's last output, the pooled vector, as both
      the logit input and the feature target
      (``deep-optimization/ScaleKD@ee56c7e mmcls/models/classifiers/distiller.py:148``
      and ``:160``), which the (B, C, H, W) feature losses cannot take; the
      patch-token map is the target it needed (``docs/teachers.md``).
    * **Logits**: ``head(neck(backbone._format_output(tokens)))``, i.e. the
      classifier's own ``out_type`` (cls token or mean pooling).
    * **TPP last stage**: the last ``tpp_blocks`` blocks + the final norm, on
      patch tokens ``(B, Hp*Wp, C)``. **Prefix tokens**: when the backbone has a
      cls token, the TPP path prepends the layer-0 cls embedding
      (``cls_token`` + its positional embedding, after ``pre_norm`` when the
      backbone has one; a constant) and drops it after the blocks. The
      input-dependent cls state at that depth cannot be derived from the
      student's tokens, and BEiT's relative position bias and EVA-02's RoPE assume
      the cls slot is present; without a cls token only patch tokens run.

    Args:
        model (dict | nn.Module): mmpretrain ``ImageClassifier`` config or module.
        tpp_blocks (int): Number of final blocks that form the teacher's "last
            stage" for TPP (the official BEiT path used 2). Defaults to 2.
        input_size (int | Sequence[int], optional): Resolution the teacher runs at.
            Defaults to the backbone's ``img_size``.
        **kwargs: See :class:`BaseTeacher`.
    """

    def __init__(self, model: Union[dict, nn.Module], tpp_blocks: int = 2,
                 input_size: Optional[Union[int, Sequence[int]]] = None, **kwargs) -> None:
        if not isinstance(tpp_blocks, int) or isinstance(tpp_blocks, bool) or tpp_blocks < 1:
            raise ValueError(f'tpp_blocks must be a positive int, got {tpp_blocks!r}')
        model = build_teacher_model(model, 'MMPretrainViTTeacher.model')
        backbone, _, head = classifier_parts(model)
        if not isinstance(backbone, (VisionTransformer, BEiTViT)):
            raise TypeError('MMPretrainViTTeacher needs a VisionTransformer, BEiTViT or '
                            f'ViTEVA02 backbone, got {type(backbone).__name__}')
        if backbone.num_extra_tokens > 1:
            raise ValueError(f'{type(backbone).__name__} has {backbone.num_extra_tokens} extra '
                             'tokens (e.g. a distillation token); only a cls token is supported')
        if tpp_blocks > len(backbone.layers):
            raise ValueError(f'tpp_blocks={tpp_blocks} exceeds the number of blocks '
                             f'({len(backbone.layers)})')
        if input_size is None:
            input_size = tuple(int(s) for s in backbone.img_size)
        input_size = to_hw(input_size, 'input_size')
        with torch.no_grad():  # dry run of the patch embedding only
            _, hw = backbone.patch_embed(
                torch.zeros(1, backbone.patch_embed.projection.in_channels, *input_size))
        hw = (int(hw[0]), int(hw[1]))
        dims = int(backbone.embed_dims)
        super().__init__(model, input_size=input_size, final_dims=dims, final_hw=hw,
                         tpp_dims=dims, tpp_hw=hw,
                         num_prefix_tokens=int(backbone.num_extra_tokens),
                         num_classes=head_num_classes(head, 'MMPretrainViTTeacher'), **kwargs)
        self.tpp_blocks = tpp_blocks

    # ------------------------------------------------------------------ blocks
    def _run_blocks(self, x: Tensor, start: int, hw: Tuple[int, int]) -> Tensor:
        bb = self.model.backbone
        rel_pos_bias: Optional[Tensor] = None
        if isinstance(bb, BEiTViT) and bb.rel_pos_bias is not None:
            rel_pos_bias = bb.rel_pos_bias()
        for layer in bb.layers[start:]:
            if isinstance(bb, ViTEVA02):
                x = layer(x, hw)
            elif isinstance(bb, BEiTViT):
                x = layer(x, rel_pos_bias)
            else:
                x = layer(x)
        if bb.final_norm:
            x = bb.ln1(x)
        return x

    def _embed(self, x: Tensor) -> Tuple[Tensor, Tuple[int, int]]:
        bb = self.model.backbone
        B = x.shape[0]
        x, hw = bb.patch_embed(x)
        if bb.cls_token is not None:
            x = torch.cat((bb.cls_token.expand(B, -1, -1), x), dim=1)
        if bb.pos_embed is not None:
            x = x + resize_pos_embed(bb.pos_embed, bb.patch_resolution, hw,
                                     mode=bb.interpolate_mode,
                                     num_extra_tokens=bb.num_extra_tokens)
        x = bb.drop_after_pos(x)
        pre_norm = getattr(bb, 'pre_norm', None)
        if pre_norm is not None:
            x = pre_norm(x)
        return x, (int(hw[0]), int(hw[1]))

    def _forward_targets(self, x: Tensor,
                         with_logits: bool = True) -> Tuple[Tensor, Optional[Tensor]]:
        backbone, neck, head = classifier_parts(self.model)
        x, hw = self._embed(x)
        x = self._run_blocks(x, 0, hw)
        n_extra = backbone.num_extra_tokens
        feature = tokens_to_map(x[:, n_extra:], hw)
        if not with_logits:
            return feature, None
        return feature, head_logits(neck, head, (backbone._format_output(x, hw), ))

    def prefix_state(self, batch: int) -> Optional[Tensor]:
        """Layer-0 prefix state ``(batch, 1, C)``: what the first block receives in the cls
        slot (None without a cls token)."""
        bb = self.model.backbone
        if bb.cls_token is None:
            return None
        prefix = bb.cls_token
        if bb.pos_embed is not None:
            prefix = prefix + bb.pos_embed[:, :bb.num_extra_tokens]
        pre_norm = getattr(bb, 'pre_norm', None)
        if pre_norm is not None:
            prefix = pre_norm(prefix)
        return prefix.expand(batch, -1, -1)

    def _last_stage(self, tokens: Tensor, prefix: Optional[Tensor]) -> Tensor:
        """Last ``tpp_blocks`` blocks + final norm on patch tokens.

        Args:
            tokens (Tensor): ``(B, Hp*Wp, C)`` in raster order.
            prefix (Tensor, optional): ``(B, 1, C)`` cls state; None: the layer-0 one.

        Returns:
            Tensor: ``(B, C, Hp, Wp)``.
        """
        bb = self.model.backbone
        if prefix is None:
            prefix = self.prefix_state(tokens.shape[0])
        x = tokens if prefix is None else torch.cat((prefix.to(tokens), tokens), dim=1)
        x = self._run_blocks(x, len(bb.layers) - self.tpp_blocks, self.tpp_hw)
        if prefix is not None:
            x = x[:, prefix.shape[1]:]
        return tokens_to_map(x, self.tpp_hw)
