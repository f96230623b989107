"""What the timm plain-ViT families share: embed -> blocks -> final norm, prefix tokens.

Paper: *ScaleKD: Strong Vision Transformers Could Be Excellent Teachers*, NeurIPS 2024
(https://arxiv.org/abs/2411.06786).

timm's ``VisionTransformer`` (``timm/models/vision_transformer.py``), ``Beit``
(``timm/models/beit.py``) and ``Eva`` (``timm/models/eva.py``) share the attribute names
used here (``patch_embed``, ``cls_token``, ``pos_embed``, ``blocks``, ``norm``,
``num_prefix_tokens``, ``forward_intermediates``, ``forward_head``); they differ in what a
block receives, which each family's :meth:`_run_blocks` supplies.
"""
from __future__ import annotations

from abc import abstractmethod
from typing import Any, Optional, Tuple

import torch
import torch.nn as nn
from torch import Tensor

from .base_teacher import tokens_to_map
from .timm_teacher import TimmBuild, TimmTeacher, check_tpp_blocks
from .tpp_teacher import TPPTeacher


def _grid(model: nn.Module, input_size: Tuple[int, int]) -> Tuple[int, int]:
    pe = model.patch_embed
    if hasattr(pe, 'dynamic_feat_size'):
        h, w = pe.dynamic_feat_size(input_size)
    else:
        h, w = (input_size[0] // pe.patch_size[0], input_size[1] // pe.patch_size[1])
    return int(h), int(w)


class TimmPlainViTTeacher(TimmTeacher, TPPTeacher):
    """A timm plain ViT: targets through ``forward_intermediates``, TPP on its last blocks.

    * **Target**: the last block's patch tokens after the model's final ``norm`` (an
      ``Identity`` in models that pool first and normalise after, ``fc_norm``), prefix
      tokens dropped, as ``(B, embed_dim, Hp, Wp)``:
      ``forward_intermediates(x, indices=[depth - 1], norm=True, output_fmt='NCHW')``.
    * **Logits**: ``forward_head`` of the final tokens (the model's own pooling: class
      token, mean, or SigLIP's attention pool); none when ``num_classes=0``.
    * **TPP last stage**: the last ``tpp_blocks`` blocks and ``norm`` on patch tokens
      ``(B, Hp*Wp, embed_dim)`` (the input of block ``depth - tpp_blocks``), with the
      layer-0 prefix state prepended and dropped again (:meth:`prefix_state`).

    Args:
        model_name (str): See :class:`TimmTeacher`.
        tpp_blocks (int, optional): Final blocks that form the last stage. Defaults to 2.
        **kwargs: See :class:`TimmTeacher`.
    """

    def __init__(self, model_name: str, tpp_blocks: Optional[int] = None,
                 **kwargs: Any) -> None:
        build = TimmBuild(type(self), model_name, **kwargs)
        m = build.model
        tpp_blocks = check_tpp_blocks(tpp_blocks, m.blocks, build.label)
        parts = [t for t in (getattr(m, 'cls_token', None), getattr(m, 'reg_token', None))
                 if t is not None]
        n_prefix = sum(int(t.shape[1]) for t in parts)
        if n_prefix != int(m.num_prefix_tokens):
            raise ValueError(
                f'{build.label} has {m.num_prefix_tokens} prefix tokens, {n_prefix} of them '
                'class/register tokens; other prefix tokens (e.g. a distillation token) are '
                'not supported.')
        size = build.fixed_input_size()
        hw = _grid(m, size)
        dims = int(m.embed_dim)
        super().__init__(m, **build.options(size, final_dims=dims, final_hw=hw, tpp_dims=dims,
                                            tpp_hw=hw, num_prefix_tokens=n_prefix))
        self.model_name = model_name
        self.tpp_blocks = tpp_blocks

    # ------------------------------------------------------------------ targets
    def _forward_targets(self, x: Tensor,
                         with_logits: bool) -> Tuple[Tensor, Optional[Tensor]]:
        m = self.model
        last = [len(m.blocks) - 1]
        if not with_logits:
            feats = m.forward_intermediates(x, indices=last, norm=True, output_fmt='NCHW',
                                            intermediates_only=True)
            return feats[0], None
        final, feats = m.forward_intermediates(x, indices=last, norm=True, output_fmt='NCHW')
        return feats[0], m.forward_head(final)

    # ------------------------------------------------------------------ TPP
    def prefix_state(self, batch: int) -> Optional[Tensor]:
        """The layer-0 prefix state ``(batch, num_prefix_tokens, embed_dim)``, or None.

        What the first block receives in the prefix slots: the class and register tokens
        plus their positional embedding (when the model embeds them, i.e. not
        ``no_embed_class``), after ``norm_pre`` (CLIP's pre-norm). A constant.
        """
        m = self.model
        parts = [t for t in (getattr(m, 'cls_token', None), getattr(m, 'reg_token', None))
                 if t is not None]
        if not parts:
            return None
        prefix = torch.cat(parts, dim=1)
        pos = getattr(m, 'pos_embed', None)
        if pos is not None and not getattr(m, 'no_embed_class', False):
            prefix = prefix + pos[:, :prefix.shape[1]]
        norm_pre = getattr(m, 'norm_pre', None)
        if norm_pre is not None:
            prefix = norm_pre(prefix)
        return prefix.expand(batch, -1, -1)

    @abstractmethod
    def _run_blocks(self, x: Tensor, start: int) -> Tensor:
        """Blocks ``start..depth-1`` on the full sequence ``(B, prefix + Hp*Wp, C)``."""

    def _last_stage(self, tokens: Tensor, prefix: Optional[Tensor]) -> Tensor:
        if prefix is None:
            prefix = self.prefix_state(tokens.shape[0])
        x = tokens if prefix is None else torch.cat((prefix.to(tokens), tokens), dim=1)
        x = self.model.norm(self._run_blocks(x, len(self.model.blocks) - self.tpp_blocks))
        return tokens_to_map(x[:, self.num_prefix_tokens:], self.final_hw)
