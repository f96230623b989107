"""timm ``VisionTransformer`` teachers: ViT, DeiT, DINOv2 (with registers), CLIP, SigLIP.

Paper: *ScaleKD: Strong Vision Transformers Could Be Excellent Teachers*, NeurIPS 2024
(https://arxiv.org/abs/2411.06786).
"""
from __future__ import annotations

from torch import Tensor

from .timm_plain_vit import TimmPlainViTTeacher
from .timm_teacher import register_timm_family


@register_timm_family
class TimmViTTeacher(TimmPlainViTTeacher):
    """timm ``VisionTransformer`` (``timm/models/vision_transformer.py``).

    One class covers the variants that differ in their prefix tokens and head:

    * ViT / DeiT (``vit_*``, ``deit_*``): a class token;
    * DINOv2 with registers (``vit_*_reg4_dinov2``): a class token and 4 register tokens,
      ``num_classes=0`` (feature distillation only);
    * CLIP (``vit_*_clip_*``): a class token and a pre-norm (``norm_pre``), which the
      layer-0 prefix state includes;
    * SigLIP (``vit_*_siglip_*``): no class token (no prefix at all) and an attention-pool
      head (``global_pool='map'``), used by ``forward_head`` for the logits.

    Blocks take the token sequence alone. See :class:`TimmPlainViTTeacher` for the
    targets and the last stage.
    """

    family = 'vit'
    description = ('timm VisionTransformer (vit_*, deit_*, DINOv2 *_dinov2, CLIP *_clip_*, '
                   'SigLIP *_siglip_*)')
    timm_modules = ('vision_transformer', 'deit')
    timm_class = 'timm.models.vision_transformer.VisionTransformer'

    def _run_blocks(self, x: Tensor, start: int) -> Tensor:
        for blk in self.model.blocks[start:]:
            x = blk(x)
        return x
