"""ConvNeXt student with ScaleKD's stage taps (maps; norm only on the last output).

Paper: *ScaleKD: Strong Vision Transformers Could Be Excellent Teachers*, NeurIPS 2024
(https://arxiv.org/abs/2411.06786).
"""
from __future__ import annotations

import torch.nn as nn
from mmpretrain.models.backbones import ConvNeXt

from mmscalekd.registry import MODELS


@MODELS.register_module()
class ConvNeXtTaps(ConvNeXt):
    """mmpretrain ``ConvNeXt`` returning maps, with the output norm only at the last tap.

    The official ScaleKD ConvNeXt-T student applies the norm only to stage 4
    (``docs/recipe_audit.md``, ConvNeXt-T student.taps): with ``out_indices=(2, 3)`` the
    taps are stage 3 ``384 x 14 x 14`` (raw) and stage 4 ``768 x 7 x 7`` (normed) at 224.
    Maps are needed for the taps, so ``gap_before_final_norm`` defaults to False here and
    the classifier needs a ``GlobalAveragePooling`` neck (the head then sees ``GAP(LN(x))``
    instead of upstream's ``LN(GAP(x))``).

    Args:
        norm_last_only (bool): Replace the norms of all but the last out index by
            ``nn.Identity``. Defaults to True.
        gap_before_final_norm (bool): As upstream. Defaults to False.
        **kwargs: Arguments of mmpretrain's ``ConvNeXt``.

    Shapes:
        - output: one ``(B, C_i, H_i, W_i)`` map per out index (stage order).
    """

    def __init__(self, *args, norm_last_only: bool = True, gap_before_final_norm: bool = False,
                 **kwargs) -> None:
        super().__init__(*args, gap_before_final_norm=gap_before_final_norm, **kwargs)
        if not isinstance(norm_last_only, bool):
            raise TypeError(f'norm_last_only must be a bool, got {norm_last_only!r}')
        self.norm_last_only = norm_last_only
        if norm_last_only:
            last = max(self.out_indices)
            for i in self.out_indices:
                if i != last:
                    self.add_module(f'norm{i}', nn.Identity())
