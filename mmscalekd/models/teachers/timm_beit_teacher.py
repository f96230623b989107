"""timm ``Beit`` teachers: BEiT and BEiTv2.

Paper: *ScaleKD: Strong Vision Transformers Could Be Excellent Teachers*, NeurIPS 2024
(https://arxiv.org/abs/2411.06786).
"""
from __future__ import annotations

from torch import Tensor

from .timm_plain_vit import TimmPlainViTTeacher
from .timm_teacher import register_timm_family


@register_timm_family
class TimmBeitTeacher(TimmPlainViTTeacher):
    """timm ``Beit`` (``timm/models/beit.py``): ``beit_*``, ``beitv2_*``.

    A class token; each block takes the relative position bias, shared by all blocks
    (``rel_pos_bias``, computed once per call) or its own (inside the block). The
    fine-tuned models pool the patch tokens and normalise after (``fc_norm``), so their
    ``norm`` is an ``Identity`` and the target is the last block's raw patch tokens. The
    position bias tables are sized for the built grid: change the resolution through
    ``model_kwargs=dict(img_size=...)``. See :class:`TimmPlainViTTeacher`.
    """

    family = 'beit'
    description = 'timm Beit (beit_*, beitv2_*)'
    timm_modules = ('beit', )
    timm_class = 'timm.models.beit.Beit'

    def _run_blocks(self, x: Tensor, start: int) -> Tensor:
        m = self.model
        rel_pos_bias = m.rel_pos_bias() if m.rel_pos_bias is not None else None
        for blk in m.blocks[start:]:
            x = blk(x, shared_rel_pos_bias=rel_pos_bias)
        return x
