"""timm ``Eva`` teachers: EVA and EVA-02 (rotary position embedding).

Paper: *ScaleKD: Strong Vision Transformers Could Be Excellent Teachers*, NeurIPS 2024
(https://arxiv.org/abs/2411.06786).
"""
from __future__ import annotations

from typing import Optional

from torch import Tensor

from .timm_plain_vit import TimmPlainViTTeacher
from .timm_teacher import register_timm_family


@register_timm_family
class TimmEvaTeacher(TimmPlainViTTeacher):
    """timm ``Eva`` (``timm/models/eva.py``): ``eva02_*`` and the other EVA variants.

    EVA-02 adds a rotary position embedding (RoPE) to the queries and keys of every block,
    on the patch tokens only (the block skips the prefix tokens). The re-run blocks of TPP
    receive the same rotary embedding as in the model's own forward (:meth:`rotary_embed`),
    per block for the "mixed" RoPE variant. See :class:`TimmPlainViTTeacher`.
    """

    family = 'eva'
    description = 'timm Eva (eva02_*, eva_*)'
    timm_modules = ('eva', )
    timm_class = 'timm.models.eva.Eva'

    def rotary_embed(self) -> Optional[Tensor]:
        """The rotary embedding of the teacher's grid, as ``Eva._pos_embed`` makes it
        (``timm/models/eva.py``), or None without RoPE."""
        m = self.model
        rope = getattr(m, 'rope', None)
        if rope is None:
            return None
        if getattr(m, 'dynamic_img_size', False) or not hasattr(rope, 'feat_shape'):
            return rope.get_embed(shape=tuple(self.final_hw))
        return rope.get_embed()

    def _run_blocks(self, x: Tensor, start: int) -> Tensor:
        m = self.model
        rope = self.rotary_embed()
        mixed = getattr(m, 'rope_mixed', False) and rope is not None
        for i in range(start, len(m.blocks)):
            x = m.blocks[i](x, rope=rope[i] if mixed else rope)
        return x
