"""One tiny random teacher per family (mmpretrain and timm), with hand-worked geometry.

Each :class:`Case` knows how to capture, with a hook on the teacher network itself (not
through the adapter), the teacher's own input of its last stage: the stage-(n-1) patch
tokens ``(B, N, C)`` and, for ViTs, the prefix-token state ``(B, P, C)`` beside them.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional, Tuple

import torch
from torch import Tensor

from tests import _builders as B

Geometry = Tuple[int, Tuple[int, int]]


@dataclass(frozen=True)
class Case:
    """A tiny teacher config and what its geometry must be.

    Attributes:
        cfg: Teacher config (random weights allowed).
        size: Square input size the teacher runs at.
        tpp: ``(tpp_dims, tpp_hw)`` worked out by hand from the arch.
        final: ``(final_dims, final_hw)``, likewise.
        prefix: Prefix tokens (class/register) in the last stage's input.
        num_classes: Classes of the classifier (0: none).
        stage_input: ``teacher.model -> module`` whose forward input is the last stage's
            input; ``split`` turns that input into ``(tokens, prefix or None)``.
    """

    cfg: dict
    size: int
    tpp: Geometry
    final: Geometry
    prefix: int
    num_classes: int
    stage_input: Callable[[torch.nn.Module], torch.nn.Module]
    split: Callable[[Tensor, int], Tuple[Tensor, Optional[Tensor]]]


def _nchw(x: Tensor, _: int) -> Tuple[Tensor, None]:
    return x.flatten(2).transpose(1, 2), None


def _nhwc(x: Tensor, _: int) -> Tuple[Tensor, None]:
    return x.flatten(1, 2), None


def _nlc(x: Tensor, _: int) -> Tuple[Tensor, None]:
    return x, None


def _seq(x: Tensor, prefix: int) -> Tuple[Tensor, Optional[Tensor]]:
    return x[:, prefix:], (x[:, :prefix] if prefix else None)


def _mm_vit(backbone: dict, head: dict, neck: Optional[dict] = None, **kwargs) -> dict:
    return dict(type='MMPretrainViTTeacher', allow_random_teacher=True, model=dict(
        type='ImageClassifier', backbone=backbone, neck=neck, head=head), **kwargs)


_VIT_ARCH = dict(embed_dims=16, num_layers=3, num_heads=2, feedforward_channels=32)
_VIT_HEAD = dict(type='VisionTransformerClsHead', num_classes=10, in_channels=16)
_TIMM_SMALL = dict(depth=3, embed_dim=32, num_heads=2, num_classes=10)


def _timm(name: str, **model_kwargs) -> dict:
    return dict(type='TimmTeacher', model_name=name, model_kwargs=model_kwargs,
                allow_random_teacher=True)


def _mm_layers(m):
    return m.backbone.layers


def _timm_blocks(m):
    return m.blocks


CASES = {
    # ---------------------------------------------------------------- mmpretrain
    # Swin 64/4 = 16 -> merges to 8, 4 (TPP input), 2 (final); widths 16 * 2^k.
    'mm_swin': Case(B.swin_teacher(), 64, (64, (4, 4)), (128, (2, 2)), 0, 10,
                    lambda m: m.backbone.stages[-2].downsample, _nlc),
    'mm_vit': Case(_mm_vit(dict(type='VisionTransformer', img_size=32, patch_size=8,
                                arch=_VIT_ARCH), _VIT_HEAD),
                   32, (16, (4, 4)), (16, (4, 4)), 1, 10, lambda m: _mm_layers(m)[-2], _seq),
    'mm_vit_no_cls': Case(_mm_vit(dict(type='VisionTransformer', img_size=32, patch_size=8,
                                       with_cls_token=False, out_type='featmap',
                                       arch=_VIT_ARCH),
                                  B.linear_head(16), dict(type='GlobalAveragePooling'),
                                  tpp_blocks=1),
                          32, (16, (4, 4)), (16, (4, 4)), 0, 10,
                          lambda m: _mm_layers(m)[-1], _seq),
    'mm_eva_beit': Case(B.eva_teacher(), 56, (16, (4, 4)), (16, (4, 4)), 1, 10,
                        lambda m: _mm_layers(m)[-2], _seq),
    'mm_beit_relpos': Case(_mm_vit(dict(type='BEiTViT', img_size=28, patch_size=7,
                                        arch=_VIT_ARCH), B.linear_head(16), tpp_blocks=1),
                           28, (16, (4, 4)), (16, (4, 4)), 1, 10,
                           lambda m: _mm_layers(m)[-1], _seq),
    'mm_eva02': Case(_mm_vit(dict(type='ViTEVA02', img_size=28, patch_size=7,
                                  arch=_VIT_ARCH), _VIT_HEAD),
                     28, (16, (4, 4)), (16, (4, 4)), 1, 10, lambda m: _mm_layers(m)[-2], _seq),
    # ConvNeXt 64: stem /4 = 16, then 8, 4 (TPP input, 32 ch), 2 (final, 64 ch).
    'mm_convnext': Case(dict(type='MMPretrainConvNeXtTeacher', input_size=64,
                             allow_random_teacher=True, model=dict(
                                 type='ImageClassifier',
                                 backbone=dict(type='ConvNeXt', arch=dict(
                                     depths=[1, 1, 1, 1], channels=[8, 16, 32, 64])),
                                 head=B.linear_head(64))),
                        64, (32, (4, 4)), (64, (2, 2)), 0, 10,
                        lambda m: m.backbone.downsample_layers[-1], _nchw),
    # ---------------------------------------------------------------- timm
    'timm_vit': Case(_timm('vit_tiny_patch16_224', img_size=32, depth=3, embed_dim=16,
                           num_heads=2, num_classes=10),
                     32, (16, (2, 2)), (16, (2, 2)), 1, 10, lambda m: _timm_blocks(m)[-2], _seq),
    'timm_swin': Case(_timm('swin_tiny_patch4_window7_224', img_size=64, embed_dim=16,
                            depths=(1, 1, 1, 1), num_heads=(1, 1, 1, 1), window_size=2,
                            num_classes=10),
                      64, (64, (4, 4)), (128, (2, 2)), 0, 10, lambda m: m.layers[-1], _nhwc),
    'timm_convnext': Case(dict(_timm('convnext_atto', depths=(1, 1, 1, 1), dims=(8, 16, 32, 64),
                                     num_classes=10), input_size=64),
                          64, (32, (4, 4)), (64, (2, 2)), 0, 10, lambda m: m.stages[-1], _nchw),
    # BEiTv2-L/16 shrunk: 32/16 = 2x2 patches, a class token, per-block relative bias.
    'timm_beitv2': Case(_timm('beitv2_large_patch16_224.in1k_ft_in22k_in1k', img_size=32,
                              **_TIMM_SMALL),
                        32, (32, (2, 2)), (32, (2, 2)), 1, 10, lambda m: _timm_blocks(m)[-2],
                        _seq),
    'timm_beit_shared_bias': Case(_timm('beit_base_patch16_224.in22k_ft_in22k_in1k',
                                        img_size=32, use_shared_rel_pos_bias=True,
                                        use_rel_pos_bias=False, **_TIMM_SMALL),
                                  32, (32, (2, 2)), (32, (2, 2)), 1, 10,
                                  lambda m: _timm_blocks(m)[-2], _seq),
    # EVA-02-L/14 shrunk: 56/14 = 4x4 patches, a class token, RoPE in every block.
    'timm_eva02': Case(_timm('eva02_large_patch14_448.mim_m38m_ft_in22k_in1k', img_size=56,
                             **_TIMM_SMALL),
                       56, (32, (4, 4)), (32, (4, 4)), 1, 10, lambda m: _timm_blocks(m)[-2],
                       _seq),
    # DINOv2-L/14 with 4 registers: 1 + 4 prefix tokens; no classifier (num_classes=0).
    'timm_dinov2_reg4': Case(_timm('vit_large_patch14_reg4_dinov2.lvd142m', img_size=56,
                                   depth=3, embed_dim=32, num_heads=2),
                             56, (32, (4, 4)), (32, (4, 4)), 5, 0,
                             lambda m: _timm_blocks(m)[-2], _seq),
    # CLIP-L/14: a class token and a pre-norm.
    'timm_clip': Case(_timm('vit_large_patch14_clip_224.openai_ft_in12k_in1k', img_size=56,
                            **_TIMM_SMALL),
                      56, (32, (4, 4)), (32, (4, 4)), 1, 10, lambda m: _timm_blocks(m)[-2],
                      _seq),
    # SigLIP So400m/14 fine-tuned: no class token, attention-pool head.
    'timm_siglip': Case(_timm('vit_so400m_patch14_siglip_378.webli_ft_in1k', img_size=56,
                              **_TIMM_SMALL),
                        56, (32, (4, 4)), (32, (4, 4)), 0, 10, lambda m: _timm_blocks(m)[-2],
                        _seq),
}

# Families without TPP: targets and logits only (worked out by hand: ResNet-18 at 64 px,
# /32 -> 2x2, 64 channels at widths 8..64).
TARGET_ONLY = {
    'timm_resnet': (dict(_timm('resnet18', channels=(8, 16, 32, 64), num_classes=10),
                         input_size=64), 64, (64, (2, 2))),
}


def capture_stage_input(case: Case, teacher,
                        x: Tensor) -> Tuple[Tensor, Optional[Tensor], Tensor]:
    """``(tokens, prefix or None, target map)``: the teacher's own last-stage input for
    ``x``, read by a forward pre-hook, and its target for ``x``."""
    seen = {}

    def keep(module, args):  # returns None: a pre-hook that returns a value replaces args
        seen.setdefault('x', args[0])

    handle = case.stage_input(teacher.model).register_forward_pre_hook(keep)
    try:
        with torch.no_grad():
            target = teacher.forward_targets(x, with_logits=False).feature
    finally:
        handle.remove()
    tokens, prefix = case.split(seen['x'], case.prefix)
    return tokens, prefix, target
