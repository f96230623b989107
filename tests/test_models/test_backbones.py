"""Student backbones: MobileNet-V1 and the subclasses that expose ScaleKD's taps."""
import pytest
import torch
from mmpretrain.models.backbones import MlpMixer, SwinTransformer, VisionTransformer

from mmscalekd.models.backbones import (
    ConvNeXtTaps,
    MlpMixerTaps,
    MobileNetV1,
    SwinTransformerTaps,
    VisionTransformerTaps,
)
from mmscalekd.registry import MODELS


@pytest.mark.slow
def test_mobilenet_v1_full_size_stage_shapes_and_params():
    model = MobileNetV1(out_indices=(0, 1, 2, 3)).eval()
    with torch.no_grad():
        outs = model(torch.rand(1, 3, 224, 224))
    assert [tuple(o.shape[1:]) for o in outs] == [(128, 56, 56), (512, 14, 14), (512, 14, 14),
                                                  (1024, 7, 7)]
    # Standard MobileNet-V1 1.0: 4.23 M with the 1024 -> 1000 classifier (paper Table 3).
    n = sum(p.numel() for p in model.parameters()) + 1024 * 1000 + 1000
    assert abs(n / 1e6 - 4.23) < 0.01


def test_mobilenet_v1_widen_out_indices_and_grads():
    model = MODELS.build(dict(type='MobileNetV1', widen_factor=0.25, out_indices=(-2, -1)))
    outs = model(torch.rand(2, 3, 64, 64))
    assert [tuple(o.shape) for o in outs] == [(2, 128, 4, 4), (2, 256, 2, 2)]
    sum(o.sum() for o in outs).backward()
    assert all(p.grad is not None for p in model.parameters())


def test_mobilenet_v1_frozen_stages_and_validation():
    model = MobileNetV1(widen_factor=0.25, frozen_stages=1)
    model.train()
    assert not model.stem.training and not model.stages[1].training and model.stages[2].training
    assert not any(p.requires_grad for p in model.stages[0].parameters())
    with pytest.raises(ValueError, match='out_indices.*got 4'):
        MobileNetV1(out_indices=(4, ))
    with pytest.raises(ValueError, match='widen_factor.*-1'):
        MobileNetV1(widen_factor=-1)
    with pytest.raises(ValueError, match='frozen_stages.*got 7'):
        MobileNetV1(frozen_stages=7)


SWIN = dict(arch=dict(embed_dims=8, depths=[1, 1, 1, 1], num_heads=[1, 1, 1, 1]), img_size=64,
            window_size=2, out_indices=(2, 3))


def test_swin_taps_norm_only_last():
    torch.manual_seed(0)
    ours = SwinTransformerTaps(**SWIN)
    stock = SwinTransformer(**SWIN)
    ours.eval()
    stock.eval()  # upstream's train() returns None, so no chaining
    stock.load_state_dict(ours.state_dict(), strict=False)  # stock has an extra norm2
    x = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        o3, o4 = ours(x)
        s3, s4 = stock(x)
    assert isinstance(ours.norm2, torch.nn.Identity)
    assert tuple(o3.shape) == (2, 32, 4, 4) and tuple(o4.shape) == (2, 64, 2, 2)
    torch.testing.assert_close(o4, s4)
    torch.testing.assert_close(stock.norm2(o3.flatten(2).transpose(1, 2)),
                               s3.flatten(2).transpose(1, 2))


def test_convnext_taps_maps_and_norm_only_last():
    model = ConvNeXtTaps(arch=dict(depths=[1, 1, 1, 1], channels=[8, 16, 32, 64]),
                         out_indices=(2, 3))
    o3, o4 = model(torch.rand(2, 3, 64, 64))
    assert tuple(o3.shape) == (2, 32, 4, 4) and tuple(o4.shape) == (2, 64, 2, 2)
    assert isinstance(model.norm2, torch.nn.Identity)
    assert not isinstance(model.norm3, torch.nn.Identity)


def test_mlp_mixer_taps_grid_prenorm_and_head_output():
    arch = dict(embed_dims=16, num_layers=4, tokens_mlp_dims=8, channels_mlp_dims=32)
    model = MlpMixerTaps(arch=arch, img_size=32, patch_size=8, out_indices=(1, 3))
    stock = MlpMixer(arch=arch, img_size=32, patch_size=8, out_indices=[-3, -1])
    model.eval()
    stock.eval()
    stock.load_state_dict(model.state_dict())
    x = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        t1, t3, final = model(x)
        s1, s3 = stock(x)  # (B, C, N); the last one after the final norm
    assert [tuple(t.shape) for t in (t1, t3, final)] == [(2, 16, 4, 4)] * 3
    torch.testing.assert_close(t1.flatten(2), s1)
    torch.testing.assert_close(final.flatten(2), s3)
    torch.testing.assert_close(model.norm1(t3.flatten(2).transpose(1, 2)),
                               s3.transpose(1, 2))
    assert not torch.allclose(t3, final)  # the s4 tap is pre-norm
    with pytest.raises(ValueError, match='out_indices.*got 4'):
        MlpMixerTaps(arch=arch, img_size=32, patch_size=8, out_indices=(4, ))
    with pytest.raises(ValueError, match='needs inputs of size'):
        model(torch.rand(1, 3, 16, 16))


def test_vision_transformer_taps_maps_and_avg_ln_head_vector():
    arch = dict(embed_dims=16, num_layers=4, num_heads=2, feedforward_channels=32)
    model = VisionTransformerTaps(arch=arch, img_size=28, patch_size=7, out_indices=(1, 3),
                                  with_cls_token=False)
    # the stock class with out_type='avg_featmap' has the same parameters (ln1, ln2)
    stock = VisionTransformer(arch=arch, img_size=28, patch_size=7, out_indices=(3, ),
                              with_cls_token=False, out_type='avg_featmap')
    stock.load_state_dict(model.state_dict())
    maps = VisionTransformer(arch=arch, img_size=28, patch_size=7, out_indices=(1, 3),
                             with_cls_token=False, out_type='featmap')
    maps.load_state_dict(model.state_dict(), strict=False)  # no ln2 in the featmap model
    for m in (model, stock, maps):
        m.eval()  # mmpretrain's train() returns None: no chaining
    x = torch.rand(2, 3, 28, 28)
    with torch.no_grad():
        t1, t3, head = model(x)
        (pooled, ) = stock(x)
        m1, m3 = maps(x)
    assert tuple(t1.shape) == tuple(t3.shape) == (2, 16, 4, 4) and tuple(head.shape) == (2, 16)
    torch.testing.assert_close(head, pooled)  # LayerNorm(mean of the final-normed tokens)
    torch.testing.assert_close(t1, m1)
    torch.testing.assert_close(t3, m3)
    assert not torch.allclose(head, t3.flatten(2).mean(2))  # the extra norm is applied
    plain = VisionTransformerTaps(arch=arch, img_size=28, patch_size=7, out_indices=(1, 3),
                                  with_cls_token=False, head_pool='none')
    assert len(plain(x)) == 2 and not hasattr(plain, 'ln2')


@pytest.mark.parametrize('kwargs, message', [
    (dict(head_pool='mean'), "head_pool must be one of"),
    (dict(out_type='avg_featmap'), "out_type must be 'featmap'"),
    (dict(out_indices=(1, 2)), 'out_indices must include 3'),
    (dict(final_norm=False), 'final_norm must be True'),
])
def test_vision_transformer_taps_rejects_bad_options(kwargs, message):
    arch = dict(embed_dims=16, num_layers=4, num_heads=2, feedforward_channels=32)
    cfg = dict(arch=arch, img_size=28, patch_size=7, out_indices=(1, 3), with_cls_token=False)
    cfg.update(kwargs)
    with pytest.raises(ValueError, match=message):
        VisionTransformerTaps(**cfg)
