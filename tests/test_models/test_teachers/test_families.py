"""What each family adds to the contract: timm family dispatch, prefix tokens, RoPE, heads,
mmpretrain adapters against mmpretrain's own forward, timm CNNs, bad configs."""
import pytest
import torch

from mmscalekd.models.teachers import (
    MMPretrainViTTeacher,
    TimmBeitTeacher,
    TimmCNNTeacher,
    TimmConvNeXtTeacher,
    TimmEvaTeacher,
    TimmSwinTeacher,
    TimmTeacher,
    TimmViTTeacher,
    TPPTeacher,
    timm_families,
    timm_family_for,
)
from mmscalekd.registry import MODELS
from tests import _builders as B
from tests.test_models.test_teachers.cases import CASES, capture_stage_input


# ----------------------------------------------------------------------------- dispatch
@pytest.mark.parametrize('name,family', [
    ('vit_base_patch16_224.augreg2_in21k_ft_in1k', TimmViTTeacher),
    ('deit_small_patch16_224.fb_in1k', TimmViTTeacher),
    ('vit_large_patch14_reg4_dinov2.lvd142m', TimmViTTeacher),
    ('vit_large_patch14_clip_224.openai_ft_in12k_in1k', TimmViTTeacher),
    ('vit_so400m_patch14_siglip_378.webli_ft_in1k', TimmViTTeacher),
    ('beitv2_large_patch16_224.in1k_ft_in22k_in1k', TimmBeitTeacher),
    ('eva02_large_patch14_448.mim_m38m_ft_in22k_in1k', TimmEvaTeacher),
    ('swin_large_patch4_window7_224.ms_in22k_ft_in1k', TimmSwinTeacher),
    ('convnext_large.fb_in22k_ft_in1k', TimmConvNeXtTeacher),
    ('resnet50d.ra4_e3600_r224_in1k', TimmCNNTeacher),
])
def test_timm_family_is_picked_from_the_name(name, family):
    assert timm_family_for(name) is family
    assert issubclass(family, TimmTeacher)
    assert issubclass(family, TPPTeacher) == (family is not TimmCNNTeacher)


def test_family_registry_is_complete_and_each_family_builds_through_timm_teacher():
    assert {f.family for f in timm_families()} == {'vit', 'beit', 'eva', 'swin', 'convnext',
                                                   'cnn'}
    assert [f.family for f in timm_families() if f.fallback] == ['cnn']
    cfg = CASES['timm_eva02'].cfg
    built = TimmTeacher(**{k: v for k, v in cfg.items() if k != 'type'})
    assert type(built) is TimmEvaTeacher and built.family == 'eva'
    assert built.model_name == cfg['model_name']
    # a family class can be built directly too (same arguments)
    direct = TimmEvaTeacher(**{k: v for k, v in cfg.items() if k != 'type'})
    assert type(direct) is TimmEvaTeacher


def test_family_class_checks_the_built_model():
    # vit_* names are VisionTransformers; the Beit family refuses one
    with pytest.raises(ValueError, match=r"is a VisionTransformer, not a Beit that the 'beit' "
                                         'teacher family takes'):
        TimmBeitTeacher(model_name='vit_tiny_patch16_224', allow_random_teacher=True,
                        model_kwargs=dict(img_size=32, depth=1, embed_dim=16, num_heads=2))


# ----------------------------------------------------------------------------- plain ViTs
def _build(name: str):
    torch.manual_seed(0)
    return MODELS.build(CASES[name].cfg)


def test_dinov2_registers_are_prefix_tokens_and_it_has_no_classifier():
    teacher = _build('timm_dinov2_reg4')
    m = teacher.model
    assert m.reg_token.shape[1] == 4 and teacher.num_prefix_tokens == 5
    assert not teacher.has_classifier
    # layer-0 prefix = [cls, reg] + their positional embedding (dinov2 embeds no prefix
    # position: no_embed_class) -> exactly the learned tokens
    assert m.no_embed_class
    expected = torch.cat((m.cls_token, m.reg_token), dim=1)
    torch.testing.assert_close(teacher.prefix_state(1), expected, rtol=0, atol=0)


def test_clip_prefix_state_is_pre_normed():
    teacher = _build('timm_clip')
    m = teacher.model
    assert isinstance(m.norm_pre, torch.nn.LayerNorm)
    with torch.no_grad():
        m.norm_pre.weight.fill_(2.0)
        m.norm_pre.bias.fill_(0.5)
        expected = m.norm_pre(m.cls_token + m.pos_embed[:, :1])
    torch.testing.assert_close(teacher.prefix_state(1), expected)


def test_siglip_has_no_prefix_and_pools_with_attention():
    teacher = _build('timm_siglip')
    m = teacher.model
    assert m.cls_token is None and teacher.num_prefix_tokens == 0
    assert m.attn_pool is not None and m.global_pool == 'map'
    x = torch.randn(2, 3, 56, 56)
    with torch.no_grad():
        logits = teacher.forward_targets(x).logits
        torch.testing.assert_close(logits, m(x))  # the model's own attention-pool head


@pytest.mark.parametrize('name', ['timm_vit', 'timm_beitv2', 'timm_eva02', 'timm_clip',
                                  'timm_siglip'])
def test_timm_targets_and_logits_are_the_models_own(name):
    teacher = _build(name)
    m = teacher.model
    x = torch.randn(2, 3, CASES[name].size, CASES[name].size)
    with torch.no_grad():
        out = teacher.forward_targets(x)
        feats = m.forward_features(x)
        torch.testing.assert_close(out.logits, m.forward_head(feats), rtol=0, atol=0)
        n = m.num_prefix_tokens
        torch.testing.assert_close(out.feature.flatten(2).transpose(1, 2), feats[:, n:],
                                   rtol=0, atol=0)


def test_eva02_rotary_embedding_is_applied_in_the_rerun_blocks(monkeypatch):
    case = CASES['timm_eva02']
    teacher = _build('timm_eva02')
    assert teacher.model.rope is not None and teacher.rotary_embed() is not None
    with torch.no_grad():  # sharper attention than at random init: positions matter
        for p in teacher.model.blocks.parameters():
            p.mul_(4.0 if p.dim() == 2 else 1.0)
    x = torch.randn(2, 3, case.size, case.size)
    tokens, prefix, target = capture_stage_input(case, teacher, x)
    with torch.no_grad():
        torch.testing.assert_close(teacher.forward_last_stage(tokens, prefix), target,
                                   atol=1e-5, rtol=0)
        monkeypatch.setattr(teacher, 'rotary_embed', lambda: None)
        without_rope = teacher.forward_last_stage(tokens, prefix)
    assert (without_rope - target).abs().max() > 1e-3  # the test can fail without RoPE


def test_beit_shared_relative_position_bias_is_applied_in_the_rerun_blocks():
    case = CASES['timm_beit_shared_bias']
    teacher = _build('timm_beit_shared_bias')
    m = teacher.model
    assert m.rel_pos_bias is not None
    with torch.no_grad():  # make the (zero-initialised) bias table matter
        m.rel_pos_bias.relative_position_bias_table.normal_(0, 5.0)
    tokens, prefix, target = capture_stage_input(case, teacher, torch.randn(2, 3, 32, 32))
    with torch.no_grad():
        torch.testing.assert_close(teacher.forward_last_stage(tokens, prefix), target,
                                   atol=1e-5, rtol=0)
        m.rel_pos_bias.relative_position_bias_table.zero_()
        assert (teacher.forward_last_stage(tokens, prefix) - target).abs().max() > 1e-3


def test_plain_vit_input_size_must_match_the_built_model():
    cfg = dict(CASES['timm_vit'].cfg, input_size=64)
    with pytest.raises(ValueError, match=r'input_size \(64, 64\) differs from the size '
                                         r'\(32, 32\).*model_kwargs=dict\(img_size=...\)'):
        MODELS.build(cfg)
    # a dynamic-size EVA-02 runs at another grid, with the RoPE of that grid
    dyn = dict(CASES['timm_eva02'].cfg, input_size=84)
    dyn['model_kwargs'] = dict(dyn['model_kwargs'], dynamic_img_size=True)
    teacher = MODELS.build(dyn)
    assert teacher.final_hw == teacher.tpp_hw == (6, 6)
    x = torch.randn(1, 3, 84, 84)
    tokens, prefix, target = capture_stage_input(CASES['timm_eva02'], teacher, x)
    torch.testing.assert_close(teacher.forward_last_stage(tokens, prefix), target,
                               atol=1e-5, rtol=0)


# ----------------------------------------------------------------------------- mmpretrain
@pytest.mark.parametrize('name', ['mm_swin', 'mm_vit', 'mm_eva_beit', 'mm_beit_relpos',
                                  'mm_eva02', 'mm_convnext'])
def test_mmpretrain_logits_are_the_classifiers_own(name):
    teacher = _build(name)
    x = torch.randn(2, 3, CASES[name].size, CASES[name].size)
    with torch.no_grad():
        torch.testing.assert_close(teacher.forward_targets(x).logits,
                                   teacher.model(x, mode='tensor'), rtol=0, atol=0)


def test_mmpretrain_swin_target_is_the_backbones_own_output():
    teacher = _build('mm_swin')
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():  # out_indices=(3,): the normalised stage-4 map
        torch.testing.assert_close(teacher.forward_targets(x, with_logits=False).feature,
                                   teacher.model.backbone(x)[-1], rtol=0, atol=0)


def test_mmpretrain_vit_prefix_state_includes_pre_norm():
    cfg = dict(CASES['mm_vit'].cfg)
    cfg['model'] = dict(cfg['model'], backbone=dict(cfg['model']['backbone'], pre_norm=True))
    teacher = MODELS.build(cfg)
    bb = teacher.model.backbone
    with torch.no_grad():
        bb.pre_norm.weight.fill_(3.0)
        expected = bb.pre_norm(bb.cls_token + bb.pos_embed[:, :1])
    torch.testing.assert_close(teacher.prefix_state(1), expected)
    tokens, prefix, target = capture_stage_input(CASES['mm_vit'], teacher,
                                                 torch.randn(2, 3, 32, 32))
    torch.testing.assert_close(teacher.forward_last_stage(tokens, prefix), target,
                               atol=1e-5, rtol=0)
    assert isinstance(teacher, MMPretrainViTTeacher)


# ----------------------------------------------------------------------------- timm CNNs
TIMM_RESNET = dict(type='TimmTeacher', model_name='resnet18', allow_random_teacher=True,
                   model_kwargs=dict(channels=(8, 16, 32, 64), num_classes=10))


@pytest.mark.parametrize('size,final_hw', [
    ((64, 64), (2, 2)),
    # worked out by hand: 48 -> 24 (conv1 s2) -> 12 (maxpool) -> 12 -> 6 -> 3 -> 2;
    # 80 -> 40 -> 20 -> 20 -> 10 -> 5 -> 3 (stride-2 3x3 convs with padding 1 round up)
    ((48, 80), (2, 3)),
])
def test_timm_cnn_teacher_gives_logits_and_final_map(size, final_hw):
    teacher = MODELS.build(dict(TIMM_RESNET, input_size=size))
    assert teacher.family == 'cnn' and not isinstance(teacher, TPPTeacher)
    assert (teacher.final_dims, teacher.final_hw) == (64, final_hw)
    # mean/std from timm's pretrained_cfg (ImageNet), in 0-255 units; RGB
    torch.testing.assert_close(teacher.teacher_mean.flatten(),
                               torch.tensor([123.675, 116.28, 103.53]))
    assert teacher.channel_order == 'rgb'
    x = torch.randn(2, 3, *size)
    out = teacher.forward_targets(x)
    assert tuple(out.feature.shape) == (2, 64, *final_hw)
    assert tuple(out.logits.shape) == (2, B.NUM_CLASSES)
    with torch.no_grad():  # the target is forward_features, the logits the full model
        torch.testing.assert_close(out.feature, teacher.model.forward_features(x))
        torch.testing.assert_close(out.logits, teacher.model(x))
    # another input size is resized to the teacher's
    assert tuple(teacher.forward_targets(torch.randn(2, 3, 32, 32)).feature.shape) == (
        2, 64, *final_hw)


def test_timm_cnn_without_classifier_gives_features_only():
    teacher = MODELS.build(dict(TIMM_RESNET, input_size=64,
                                model_kwargs=dict(TIMM_RESNET['model_kwargs'], num_classes=0)))
    assert teacher.num_classes == 0 and not teacher.has_classifier
    x = torch.randn(2, 3, 64, 64)
    assert teacher.forward_targets(x, with_logits=False).logits is None
    with pytest.raises(ValueError, match=r"TimmTeacher\('resnet18'\) has no classifier"):
        teacher.forward_targets(x)


def test_timm_resnext_and_resnet_d_teachers_build_small():
    """The SSLD teachers' timm names, shrunk through model_kwargs (pretrained=False)."""
    small = dict(layers=(1, 1, 1, 1), channels=(8, 16, 32, 64), stem_width=8, num_classes=10)
    resnext = MODELS.build(dict(type='TimmTeacher', input_size=32, model_kwargs=small,
                                model_name='resnext101_32x16d.fb_wsl_ig1b_ft_in1k',
                                allow_random_teacher=True))
    resnet_d = MODELS.build(dict(type='TimmTeacher', input_size=32, model_kwargs=small,
                                 model_name='resnet50d.ra4_e3600_r224_in1k',
                                 allow_random_teacher=True))
    for teacher in (resnext, resnet_d):  # Bottleneck: 4 x 64 channels; 32 / 32 = 1
        assert (teacher.family, teacher.final_dims, teacher.final_hw) == ('cnn', 256, (1, 1))
        out = teacher.forward_targets(torch.randn(2, 3, 32, 32))
        assert tuple(out.logits.shape) == (2, 10) and torch.isfinite(out.logits).all()
    assert resnext.model.layer1[0].conv2.groups == 32  # cardinality kept from the name
    # resnet50d's own normalisation (0.5, 0.5) from its pretrained_cfg, in 0-255 units
    torch.testing.assert_close(resnet_d.teacher_std.flatten(), torch.full((3, ), 127.5))


# ----------------------------------------------------------------------------- bad configs
def test_bad_teacher_configs():
    with pytest.raises(ValueError, match='unknown timm model.*VisionTransformer'):
        MODELS.build(dict(type='TimmTeacher', model_name='not_a_model_xyz'))
    with pytest.raises(TypeError, match='model_name must be a timm model name'):
        MODELS.build(dict(type='TimmTeacher', model_name=3))
    with pytest.raises(ValueError, match=r'SwinTransformerV2 whose forward_features gives '
                                         r'\(1, 2, 2, 32\).*not a \(B, num_features=32, H, W\)'):
        MODELS.build(dict(type='TimmTeacher', model_name='swinv2_tiny_window8_256',  # NHWC
                          allow_random_teacher=True,
                          model_kwargs=dict(img_size=64, window_size=2, embed_dim=4,
                                            depths=(1, 1, 1, 1), num_heads=(1, 1, 1, 1))))
    with pytest.raises(ValueError, match=r"tpp_blocks=3 applies to plain ViTs only; the swin "
                                         'family'):
        MODELS.build(dict(CASES['timm_swin'].cfg, tpp_blocks=3))
    with pytest.raises(ValueError, match='tpp_blocks=9 exceeds the number of blocks'):
        MODELS.build(dict(CASES['timm_beitv2'].cfg, tpp_blocks=9))
    with pytest.raises(ValueError, match="pretrained=True .* or checkpoint='x.pth', not both"):
        MODELS.build(dict(CASES['timm_vit'].cfg, pretrained=True, checkpoint='x.pth'))
    with pytest.raises(TypeError, match='model_kwargs must be a dict'):
        MODELS.build(dict(CASES['timm_vit'].cfg, model_kwargs=[1]))
    convnext = CASES['mm_convnext'].cfg
    with pytest.raises(TypeError, match='SwinTransformer backbone'):
        MODELS.build(B.swin_teacher() | dict(model=convnext['model']))
    with pytest.raises(ValueError, match='pass input_size'):
        MODELS.build(dict(convnext, input_size=None))
    with pytest.raises(ValueError, match='tpp_blocks=9'):
        MODELS.build(dict(CASES['mm_vit'].cfg, tpp_blocks=9))
    with pytest.raises(ValueError, match='mean and std'):
        MODELS.build(B.swin_teacher(mean=[1.0, 2.0, 3.0]))
    with pytest.raises(ValueError, match="channel_order must be 'rgb', 'bgr' or None"):
        MODELS.build(B.swin_teacher(channel_order='rbg'))
    with pytest.raises(TypeError, match='train_mode must be a bool'):
        MODELS.build(B.swin_teacher(train_mode='yes'))
