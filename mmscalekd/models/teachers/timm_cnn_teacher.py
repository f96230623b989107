"""timm CNN teachers without TPP (ResNet, ResNeXt, ResNet-D, ...): targets and logits.

Paper: *ScaleKD: Strong Vision Transformers Could Be Excellent Teachers*, NeurIPS 2024
(https://arxiv.org/abs/2411.06786).
"""
from __future__ import annotations

from typing import Any, Optional, Tuple

import torch
from torch import Tensor

from .timm_teacher import TimmBuild, TimmTeacher, refuse_tpp_blocks, register_timm_family


@register_timm_family
class TimmCNNTeacher(TimmTeacher):
    """Any other timm model whose ``forward_features`` gives a ``(B, C, H, W)`` map.

    E.g. ``resnext101_32x16d.fb_wsl_ig1b_ft_in1k`` or ``resnet50d.*`` (the SSLD teachers):
    target = ``forward_features``; logits = ``forward_head``. It has no last stage on tokens
    (it is not a :class:`TPPTeacher`), so it serves logit distillation
    (``distill_stages=[]``) and feature stages on the final map without ``tpp`` or
    ``query_from``. The layout is checked at build by one forward of a
    ``(1, 3, *input_size)`` zero batch in eval mode, which also gives the map's shape.

    Args:
        model_name (str): See :class:`TimmTeacher`.
        **kwargs: See :class:`TimmTeacher` (no ``tpp_blocks``); ``input_size`` is free and
            defaults to the ``pretrained_cfg``'s.
    """

    family = 'cnn'
    description = ('any other timm model whose forward_features gives a (B, C, H, W) map, '
                   'e.g. ResNet / ResNeXt / ResNet-D (targets and logits, no TPP)')
    fallback = True

    def __init__(self, model_name: str, tpp_blocks: Optional[int] = None,
                 **kwargs: Any) -> None:
        build = TimmBuild(type(self), model_name, **kwargs)
        refuse_tpp_blocks(tpp_blocks, build.label, self.family)
        m = build.model
        if not all(callable(getattr(m, f, None)) for f in ('forward_features', 'forward_head')):
            raise ValueError(f'{build.label} is a {type(m).__name__} without forward_features / '
                             'forward_head; it cannot be a teacher.')
        size = build.input_size or build.own_input_size()
        feats = _dry_run(m, size)
        num_features = getattr(m, 'num_features', None)
        if (not isinstance(feats, Tensor) or feats.dim() != 4
                or (num_features is not None and feats.shape[1] != num_features)):
            shape = tuple(feats.shape) if isinstance(feats, Tensor) else type(feats).__name__
            raise ValueError(
                f'{build.label} is a {type(m).__name__} whose forward_features gives {shape} '
                f'at input size {size}, not a (B, num_features={num_features}, H, W) map; '
                f'no teacher family takes it.')
        super().__init__(m, **build.options(size, final_dims=int(feats.shape[1]),
                                            final_hw=(int(feats.shape[2]), int(feats.shape[3]))))
        self.model_name = model_name

    def _forward_targets(self, x: Tensor,
                         with_logits: bool) -> Tuple[Tensor, Optional[Tensor]]:
        m = self.model
        feature = m.forward_features(x)
        return feature, (m.forward_head(feature) if with_logits else None)


@torch.no_grad()
def _dry_run(model: torch.nn.Module, size: Tuple[int, int]) -> Any:
    was_training = model.training
    model.eval()
    try:
        param = next(model.parameters(), None)
        x = torch.zeros(1, 3, *size, device=param.device if param is not None else None,
                        dtype=param.dtype if param is not None else None)
        return model.forward_features(x)
    finally:
        model.train(was_training)
