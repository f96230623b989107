"""Teacher adapter for timm ViT, Swin, ConvNeXt and (logits-only) CNN models, built by name.

Paper: *ScaleKD: Strong Vision Transformers Could Be Excellent Teachers*, NeurIPS 2024
(https://arxiv.org/abs/2411.06786).
"""
from __future__ import annotations

from typing import Optional, Sequence, Tuple

import torch
import torch.nn as nn
from torch import Tensor

from mmscalekd.registry import MODELS

from .base_teacher import BaseTeacher, tokens_to_map

SUPPORTED_FAMILIES = ('VisionTransformer (vit_*, deit_*)', 'SwinTransformer (swin_*)',
                      'ConvNeXt (convnext_*)',
                      'CNNs whose forward_features gives a (B, C, H, W) map, e.g. ResNet / '
                      'ResNeXt / ResNet-D (resnet*, resnext*; logits-only: no TPP)')


def _families() -> dict:
    from timm.models.convnext import ConvNeXt
    from timm.models.swin_transformer import SwinTransformer
    from timm.models.vision_transformer import VisionTransformer
    return dict(vit=VisionTransformer, swin=SwinTransformer, convnext=ConvNeXt)


def _conv_out(size: int, conv: nn.Conv2d, dim: int) -> int:
    k, s, p, d = conv.kernel_size[dim], conv.stride[dim], conv.padding[dim], conv.dilation[dim]
    return (size + 2 * p - d * (k - 1) - 1) // s + 1


@MODELS.register_module()
class TimmTeacher(BaseTeacher):
    """Frozen timm classifier (ViT, Swin, ConvNeXt or a CNN) created by name.

    * **ViT** (``timm.models.vision_transformer.VisionTransformer``): target = the
      patch tokens of ``forward_features`` (after the final norm) as
      ``(B, C, Hp, Wp)``; logits = ``forward_head``; TPP = the last ``tpp_blocks``
      blocks + final norm, with the layer-0 prefix tokens (cls/register tokens plus
      their positional embedding when the model embeds them) prepended and dropped
      again, as in :class:`MMPretrainViTTeacher`.
    * **Swin**: target = ``norm(layers(...))`` as a map; TPP input = the stage-3
      output (timm puts the patch merging at the *start* of the next stage, so the
      last stage ``layers[-1]`` already begins with it) -> ``layers[-1]`` -> norm.
    * **ConvNeXt**: target = the stage-4 map after the head's LayerNorm (applied
      per location; or ``norm_pre`` for ``head_norm_first`` models); TPP =
      ``stages[-1]`` (downsample + blocks) -> that norm.
    * **CNN** (any other timm model with ``forward_features``/``forward_head``
      whose ``forward_features`` returns a ``(B, num_features, H, W)`` map, e.g.
      ``resnext101_32x16d.fb_wsl_ig1b_ft_in1k`` or ``resnet50d.*``, the SSLD
      teachers): target = that map; logits = ``forward_head``. Logits-only
      family: it has no TPP (``supports_tpp`` is False, ``tpp_dims``/``tpp_hw``
      are None and :meth:`forward_last_stage` raises ``NotImplementedError``), so
      it serves logit distillation (``distill_stages=[]``) and feature stages on
      the final map without ``tpp``/``query_from``. The layout is checked at build
      time by one forward of a ``(1, 3, *input_size)`` zero batch in eval mode;
      that forward also gives ``final_dims``/``final_hw``.

    ``mean``/``std`` default to the model's ``pretrained_cfg`` scaled to 0-255,
    the units of mmpretrain's data preprocessor.

    Args:
        model_name (str): timm model name, e.g. ``'vit_large_patch14_clip_224'``.
        pretrained (bool): Let timm download its pretrained weights (network
            needed; never used in tests). Defaults to False.
        checkpoint (str, optional): Local path or URL of a timm state dict.
            Defaults to None.
        model_kwargs (dict, optional): Extra ``timm.create_model`` kwargs (e.g.
            ``img_size``, ``depth``, ``num_classes``). Defaults to None.
        tpp_blocks (int): ViT only: final blocks that form the last stage.
            Defaults to 2.
        mean (Sequence[float], optional): See :class:`BaseTeacher`.
        std (Sequence[float], optional): See :class:`BaseTeacher`.
        input_size (int | Sequence[int], optional): Must equal the model's
            ``img_size`` for ViT/Swin (set it through ``model_kwargs``); free for
            ConvNeXt and CNNs. Defaults to the model's size.
        **kwargs: ``train_mode``, ``init_cfg`` (see :class:`BaseTeacher`).
    """

    def __init__(self,
                 model_name: str,
                 pretrained: bool = False,
                 checkpoint: Optional[str] = None,
                 model_kwargs: Optional[dict] = None,
                 tpp_blocks: int = 2,
                 mean: Optional[Sequence[float]] = None,
                 std: Optional[Sequence[float]] = None,
                 input_size: Optional[int | Sequence[int]] = None,
                 **kwargs) -> None:
        import timm
        if not isinstance(model_name, str):
            raise TypeError(f'model_name must be a str, got {model_name!r}')
        if not isinstance(tpp_blocks, int) or isinstance(tpp_blocks, bool) or tpp_blocks < 1:
            raise ValueError(f'tpp_blocks must be a positive int, got {tpp_blocks!r}')
        if not timm.is_model(model_name):
            raise ValueError(f'TimmTeacher: unknown timm model {model_name!r}. Supported '
                             f'families: {", ".join(SUPPORTED_FAMILIES)}.')
        model = timm.create_model(model_name, pretrained=pretrained, **(model_kwargs or {}))
        family = next((name for name, cls in _families().items() if isinstance(model, cls)), None)
        if family is None and all(callable(getattr(model, f, None))
                                  for f in ('forward_features', 'forward_head')):
            family = 'cnn'  # its (B, C, H, W) layout is verified in _resolve_shapes
        if family is None:
            raise ValueError(f'TimmTeacher: {model_name!r} is a {type(model).__name__}; '
                             f'supported families: {", ".join(SUPPORTED_FAMILIES)}.')
        self.family = family
        self.model_name = model_name
        self.supports_tpp = family != 'cnn'
        self.tpp_blocks = tpp_blocks
        if mean is None and std is None:
            cfg = getattr(model, 'pretrained_cfg', None) or {}
            if 'mean' in cfg and 'std' in cfg:
                mean = [255.0 * m for m in cfg['mean']]
                std = [255.0 * s for s in cfg['std']]
        super().__init__(model, checkpoint=checkpoint, mean=mean, std=std,
                         input_size=input_size, **kwargs)

    def _default_input_size(self) -> Tuple[int, int]:
        pe = getattr(self.model, 'patch_embed', None)
        if pe is not None and getattr(pe, 'img_size', None) is not None:
            return int(pe.img_size[0]), int(pe.img_size[1])
        size = (getattr(self.model, 'pretrained_cfg', None) or {}).get('input_size')
        if size is None:
            raise ValueError(f'TimmTeacher: cannot tell the input size of {self.model_name!r}; '
                             'pass input_size.')
        return int(size[-2]), int(size[-1])

    def _check_model(self) -> None:
        m = self.model
        if self.family == 'vit' and self.tpp_blocks > len(m.blocks):
            raise ValueError(f'tpp_blocks={self.tpp_blocks} exceeds the number of blocks '
                             f'({len(m.blocks)})')

    def _resolve_shapes(self) -> None:
        m = self.model
        if self.family in ('vit', 'swin'):
            own = tuple(int(s) for s in m.patch_embed.img_size)
            if own != self.input_size and not getattr(m, 'dynamic_img_size', False):
                raise ValueError(
                    f'TimmTeacher: input_size {self.input_size} differs from the size '
                    f'{own} that {self.model_name!r} was built for; pass '
                    "model_kwargs=dict(img_size=...) instead.")
        if self.family == 'cnn':
            self._resolve_cnn_shapes()
        elif self.family == 'vit':
            p = m.patch_embed.patch_size
            hw = (self.input_size[0] // p[0], self.input_size[1] // p[1])
            self.tpp_hw = self.final_hw = hw
            self.tpp_dims = self.final_dims = int(m.embed_dim)
        elif self.family == 'swin':
            p = m.patch_embed.patch_size
            hw = (self.input_size[0] // p[0], self.input_size[1] // p[1])
            n = len(m.layers)
            for _ in range(n - 2):  # every stage after the first halves the grid (ceil)
                hw = ((hw[0] + 1) // 2, (hw[1] + 1) // 2)
            self.tpp_hw = hw
            self.final_hw = ((hw[0] + 1) // 2, (hw[1] + 1) // 2)
            self.tpp_dims = int(m.layers[-2].blocks[0].norm1.normalized_shape[0])
            self.final_dims = int(m.num_features)
        else:
            hw = list(self.input_size)
            for conv in [c for c in m.stem.modules() if isinstance(c, nn.Conv2d)]:
                hw = [_conv_out(hw[d], conv, d) for d in range(2)]
            for i, stage in enumerate(m.stages):
                for conv in [c for c in stage.downsample.modules() if isinstance(c, nn.Conv2d)]:
                    hw = [_conv_out(hw[d], conv, d) for d in range(2)]
                if i == len(m.stages) - 2:
                    self.tpp_hw = (hw[0], hw[1])
            self.final_hw = (hw[0], hw[1])
            self.tpp_dims = int(m.stages[-2].blocks[-1].conv_dw.out_channels)
            self.final_dims = int(m.num_features)

    @torch.no_grad()
    def _resolve_cnn_shapes(self) -> None:
        """Dry-run the CNN once to check its layout and read the target map's shape."""
        m = self.model
        was_training = m.training
        m.eval()
        try:
            param = next(m.parameters(), None)
            x = torch.zeros(1, 3, *self.input_size,
                            device=param.device if param is not None else None,
                            dtype=param.dtype if param is not None else None)
            feats = m.forward_features(x)
            logits = m.forward_head(feats) if isinstance(feats, Tensor) else None
        finally:
            m.train(was_training)
        num_features = getattr(m, 'num_features', None)
        if (not isinstance(feats, Tensor) or feats.dim() != 4
                or (num_features is not None and feats.shape[1] != num_features)):
            shape = tuple(feats.shape) if isinstance(feats, Tensor) else type(feats).__name__
            raise ValueError(
                f'TimmTeacher: {self.model_name!r} is a {type(m).__name__} whose '
                f'forward_features gives {shape} at input size {self.input_size}, not a '
                f'(B, num_features={num_features}, H, W) map; supported families: '
                f'{", ".join(SUPPORTED_FAMILIES)}.')
        if not isinstance(logits, Tensor) or logits.dim() != 2:
            shape = tuple(logits.shape) if isinstance(logits, Tensor) else None
            raise ValueError(f'TimmTeacher: forward_head of {self.model_name!r} gives {shape}, '
                             'not (B, num_classes) logits; was the classifier removed '
                             '(num_classes=0)?')
        self.final_dims = int(feats.shape[1])
        self.final_hw = (int(feats.shape[2]), int(feats.shape[3]))
        # Logits-only family: no token space enters a "last stage" (no TPP).
        self.tpp_dims = None
        self.tpp_hw = None

    # ------------------------------------------------------------------ forward
    def _convnext_norm(self, x: Tensor) -> Tensor:
        m = self.model
        if isinstance(m.norm_pre, nn.Identity):
            return m.head.norm(x)
        return m.norm_pre(x)

    def _forward_targets(self, x: Tensor,
                         with_logits: bool = True) -> Tuple[Tensor, Optional[Tensor]]:
        m = self.model
        if self.family == 'cnn':
            feature = m.forward_features(x)  # (B, C, H, W)
            return feature, (m.forward_head(feature) if with_logits else None)
        if self.family == 'vit':
            feats = m.forward_features(x)
            feature = tokens_to_map(feats[:, m.num_prefix_tokens:], self.final_hw)
            return feature, (m.forward_head(feats) if with_logits else None)
        if self.family == 'swin':
            feats = m.forward_features(x)  # (B, H, W, C)
            return (feats.permute(0, 3, 1, 2).contiguous(),
                    m.forward_head(feats) if with_logits else None)
        x = m.stages(m.stem(x))
        feats = m.norm_pre(x)
        return self._convnext_norm(x), (m.forward_head(feats) if with_logits else None)

    def _prefix_tokens(self, batch: int) -> Optional[Tensor]:
        m = self.model
        parts = [t for t in (m.cls_token, m.reg_token) if t is not None]
        if not parts:
            return None
        prefix = torch.cat(parts, dim=1)
        if m.pos_embed is not None and not m.no_embed_class:
            prefix = prefix + m.pos_embed[:, :prefix.shape[1]]
        return prefix.expand(batch, -1, -1)

    def forward_last_stage(self, tokens: Tensor) -> Tensor:
        """The teacher's last stage on stage-(n-1) tokens.

        Args:
            tokens (Tensor): ``(B, prod(tpp_hw), tpp_dims)`` in raster order.

        Returns:
            Tensor: ``(B, final_dims, *final_hw)``.

        Raises:
            NotImplementedError: For a logits-only CNN teacher (``supports_tpp`` False).
        """
        if self.family == 'cnn':
            raise NotImplementedError(
                f'TimmTeacher({self.model_name!r}) is a logits-only CNN teacher '
                f'({type(self.model).__name__}): it has no last stage on tokens, so Teacher '
                'Parameter Perception (a distill stage with tpp=True or query_from) is '
                'unsupported. Use distill_stages=[] (logit distillation) or stages on the '
                'final map with learnable queries.')
        self._check_tokens(tokens)
        m = self.model
        B = tokens.shape[0]
        if self.family == 'vit':
            prefix = self._prefix_tokens(B)
            x = tokens if prefix is None else torch.cat((prefix.to(tokens), tokens), dim=1)
            for blk in m.blocks[len(m.blocks) - self.tpp_blocks:]:
                x = blk(x)
            x = m.norm(x)
            if prefix is not None:
                x = x[:, prefix.shape[1]:]
            return tokens_to_map(x, self.final_hw)
        if self.family == 'swin':
            x = tokens.reshape(B, *self.tpp_hw, self.tpp_dims)
            x = m.norm(m.layers[-1](x))
            return x.permute(0, 3, 1, 2).contiguous()
        x = tokens.transpose(1, 2).reshape(B, self.tpp_dims, *self.tpp_hw)
        return self._convnext_norm(m.stages[-1](x))
