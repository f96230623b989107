"""Teacher adapter for mmpretrain plain ViTs: VisionTransformer, BEiTViT (EVA), ViTEVA02.

Paper: *ScaleKD: Strong Vision Transformers Could Be Excellent Teachers*, NeurIPS 2024
(https://arxiv.org/abs/2411.06786).
"""
from __future__ import annotations

from typing import Optional, Tuple

import torch
import torch.nn as nn
from mmpretrain.models.backbones import BEiTViT, VisionTransformer, ViTEVA02
from mmpretrain.models.utils import resize_pos_embed
from torch import Tensor

from mmscalekd.registry import MODELS

from .base_teacher import BaseTeacher, classifier_parts, head_logits, tokens_to_map


@MODELS.register_module()
class MMPretrainViTTeacher(BaseTeacher):
    """Frozen mmpretrain ``ImageClassifier`` with a plain ViT backbone.

    Covers ``VisionTransformer`` (ViT/DeiT), ``BEiTViT`` (BEiT and the EVA
    checkpoints mmpretrain loads into it, ScaleKD's "BEiT-L/14") and
    ``ViTEVA02``: they share the embed -> blocks -> final norm pattern and differ
    only in what a block receives (nothing / the shared relative position bias /
    the patch grid for RoPE).

    * **Target**: the last block's patch tokens after the final norm (when the
      backbone has one; BEiT/EVA with mean pooling have none), cls token dropped,
      as a map ``(B, C, Hp, Wp)`` (EVA-L/14 at 224: 1024 x 16 x 16). The official
      ViT-teacher path took the pooled vector and cannot run (spec §5); the
      patch-token map is the target it needed.
    * **Logits**: ``head(neck(backbone._format_output(tokens)))``, i.e. the
      classifier's own ``out_type`` (cls token or mean pooling).
    * **TPP last stage**: the last ``tpp_blocks`` blocks + the final norm, on
      patch tokens ``(B, Hp*Wp, C)``. **Prefix tokens**: when the backbone has a
      cls token, the TPP path prepends the layer-0 cls embedding
      (``cls_token`` + its positional embedding, a constant) and drops it after the
      blocks. The input-dependent cls state at that depth cannot be derived from
      the student's tokens, and BEiT's relative position bias and EVA-02's RoPE
      assume the cls slot is present; without a cls token only patch tokens run.

    Args:
        model (dict | nn.Module): mmpretrain ``ImageClassifier`` config or module.
        tpp_blocks (int): Number of final blocks that form the teacher's "last
            stage" for TPP (the official BEiT path used 2). Defaults to 2.
        **kwargs: See :class:`BaseTeacher`. ``input_size`` defaults to the
            backbone's ``img_size``.
    """

    def __init__(self, model: dict | nn.Module, tpp_blocks: int = 2, **kwargs) -> None:
        if not isinstance(tpp_blocks, int) or isinstance(tpp_blocks, bool) or tpp_blocks < 1:
            raise ValueError(f'tpp_blocks must be a positive int, got {tpp_blocks!r}')
        self.tpp_blocks = tpp_blocks
        super().__init__(model, **kwargs)

    def _check_model(self) -> None:
        backbone, _, _ = classifier_parts(self.model)
        accepted = (VisionTransformer, BEiTViT)
        if not isinstance(backbone, accepted):
            raise TypeError('MMPretrainViTTeacher needs a VisionTransformer, BEiTViT or '
                            f'ViTEVA02 backbone, got {type(backbone).__name__}')
        if backbone.num_extra_tokens > 1:
            raise ValueError(f'{type(backbone).__name__} has {backbone.num_extra_tokens} extra '
                             'tokens (e.g. a distillation token); only a cls token is supported')
        if self.tpp_blocks > len(backbone.layers):
            raise ValueError(f'tpp_blocks={self.tpp_blocks} exceeds the number of blocks '
                             f'({len(backbone.layers)})')

    def _default_input_size(self) -> Tuple[int, int]:
        size = tuple(self.model.backbone.img_size)
        return int(size[0]), int(size[1])

    @torch.no_grad()
    def _resolve_shapes(self) -> None:
        bb = self.model.backbone
        # Dry run of the patch embedding only.
        _, hw = bb.patch_embed(torch.zeros(1, bb.patch_embed.projection.in_channels,
                                           *self.input_size))
        self.final_hw = self.tpp_hw = (int(hw[0]), int(hw[1]))
        self.final_dims = self.tpp_dims = int(bb.embed_dims)

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

    def _prefix_tokens(self, batch: int) -> Optional[Tensor]:
        bb = self.model.backbone
        if bb.cls_token is None:
            return None
        prefix = bb.cls_token
        if bb.pos_embed is not None:
            prefix = prefix + bb.pos_embed[:, :bb.num_extra_tokens]
        return prefix.expand(batch, -1, -1)

    def forward_last_stage(self, tokens: Tensor) -> Tensor:
        """Last ``tpp_blocks`` blocks + final norm on patch tokens.

        Args:
            tokens (Tensor): ``(B, Hp*Wp, C)`` in raster order.

        Returns:
            Tensor: ``(B, C, Hp, Wp)``.
        """
        self._check_tokens(tokens)
        bb = self.model.backbone
        prefix = self._prefix_tokens(tokens.shape[0])
        x = tokens if prefix is None else torch.cat((prefix.to(tokens), tokens), dim=1)
        x = self._run_blocks(x, len(bb.layers) - self.tpp_blocks, self.tpp_hw)
        if prefix is not None:
            x = x[:, prefix.shape[1]:]
        return tokens_to_map(x, self.tpp_hw)
