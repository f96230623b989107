"""timm ``SwinTransformer`` teachers.

Paper: *ScaleKD: Strong Vision Transformers Could Be Excellent Teachers*, NeurIPS 2024
(https://arxiv.org/abs/2411.06786).
"""
from __future__ import annotations

from typing import Any, Optional, Tuple

from torch import Tensor

from .timm_teacher import TimmBuild, TimmTeacher, refuse_tpp_blocks, register_timm_family
from .tpp_teacher import TPPTeacher


@register_timm_family
class TimmSwinTeacher(TimmTeacher, TPPTeacher):
    """timm ``SwinTransformer`` (``timm/models/swin_transformer.py``): ``swin_*``.

    * **Target**: ``norm`` of the last stage, ``forward_intermediates(x, indices=1,
      norm=True)``, ``(B, C4, H4, W4)``.
    * **Logits**: ``forward_head`` of the normalised last stage.
    * **TPP last stage**: timm puts the patch merging at the *start* of a stage, so the
      last stage ``layers[-1]`` begins with the merging of the stage-3 output; TPP runs
      ``layers[-1]`` and ``norm`` on stage-3 tokens ``(B, H3*W3, C3)``.

    Args:
        model_name (str): See :class:`TimmTeacher`.
        **kwargs: See :class:`TimmTeacher` (no ``tpp_blocks``).
    """

    family = 'swin'
    description = 'timm SwinTransformer (swin_*)'
    timm_modules = ('swin_transformer', )
    timm_class = 'timm.models.swin_transformer.SwinTransformer'

    def __init__(self, model_name: str, tpp_blocks: Optional[int] = None,
                 **kwargs: Any) -> None:
        build = TimmBuild(type(self), model_name, **kwargs)
        refuse_tpp_blocks(tpp_blocks, build.label, self.family)
        m = build.model
        size = build.fixed_input_size()
        p = m.patch_embed.patch_size
        hw = (size[0] // p[0], size[1] // p[1])
        for _ in range(len(m.layers) - 2):  # every stage after the first halves the grid
            hw = ((hw[0] + 1) // 2, (hw[1] + 1) // 2)
        final_hw = ((hw[0] + 1) // 2, (hw[1] + 1) // 2)
        super().__init__(m, **build.options(
            size, final_dims=int(m.num_features), final_hw=final_hw,
            tpp_dims=int(m.layers[-2].blocks[0].norm1.normalized_shape[0]), tpp_hw=hw))
        self.model_name = model_name

    def _forward_targets(self, x: Tensor,
                         with_logits: bool) -> Tuple[Tensor, Optional[Tensor]]:
        m = self.model
        if not with_logits:
            return m.forward_intermediates(x, indices=1, norm=True,
                                           intermediates_only=True)[-1], None
        final, feats = m.forward_intermediates(x, indices=1, norm=True)
        return feats[-1], m.forward_head(final)

    def _last_stage(self, tokens: Tensor, prefix: Optional[Tensor]) -> Tensor:
        m = self.model
        x = tokens.reshape(tokens.shape[0], *self.tpp_hw, self.tpp_dims)
        return m.norm(m.layers[-1](x)).permute(0, 3, 1, 2).contiguous()
