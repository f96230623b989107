"""Teacher adapters: shapes per family, TPP consistency, freezing, input handling, checkpoints."""
import pytest
import torch

from mmscalekd.models.teachers import BaseTeacher, TeacherTargets
from mmscalekd.registry import MODELS
from tests import _builders as B

VIT = dict(type='MMPretrainViTTeacher', model=dict(
    type='ImageClassifier',
    backbone=dict(type='VisionTransformer', img_size=32, patch_size=8,
                  arch=dict(embed_dims=16, num_layers=3, num_heads=2, feedforward_channels=32)),
    neck=None, head=dict(type='VisionTransformerClsHead', num_classes=10, in_channels=16)))
VIT_NO_CLS = dict(type='MMPretrainViTTeacher', tpp_blocks=1, model=dict(
    type='ImageClassifier',
    backbone=dict(type='VisionTransformer', img_size=32, patch_size=8, with_cls_token=False,
                  out_type='featmap',
                  arch=dict(embed_dims=16, num_layers=3, num_heads=2, feedforward_channels=32)),
    neck=dict(type='GlobalAveragePooling'), head=B.linear_head(16)))
EVA02 = dict(type='MMPretrainViTTeacher', model=dict(
    type='ImageClassifier',
    backbone=dict(type='ViTEVA02', img_size=28, patch_size=7,
                  arch=dict(embed_dims=16, num_layers=2, num_heads=2, feedforward_channels=32)),
    neck=None, head=dict(type='VisionTransformerClsHead', num_classes=10, in_channels=16)))
BEIT_RELPOS = dict(type='MMPretrainViTTeacher', tpp_blocks=1, model=dict(
    type='ImageClassifier',
    backbone=dict(type='BEiTViT', img_size=28, patch_size=7,
                  arch=dict(embed_dims=16, num_layers=2, num_heads=2, feedforward_channels=32)),
    neck=None, head=B.linear_head(16)))
CONVNEXT = dict(type='MMPretrainConvNeXtTeacher', input_size=64, model=dict(
    type='ImageClassifier',
    backbone=dict(type='ConvNeXt', arch=dict(depths=[1, 1, 1, 1], channels=[8, 16, 32, 64])),
    head=B.linear_head(64)))
TIMM_VIT = dict(type='TimmTeacher', model_name='vit_tiny_patch16_224',
                model_kwargs=dict(img_size=32, depth=3, embed_dim=16, num_heads=2,
                                  num_classes=10))
TIMM_SWIN = dict(type='TimmTeacher', model_name='swin_tiny_patch4_window7_224',
                 model_kwargs=dict(img_size=64, embed_dim=16, depths=(1, 1, 1, 1),
                                   num_heads=(1, 1, 1, 1), window_size=2, num_classes=10))
TIMM_CONVNEXT = dict(type='TimmTeacher', model_name='convnext_atto', input_size=64,
                     model_kwargs=dict(depths=(1, 1, 1, 1), dims=(8, 16, 32, 64),
                                       num_classes=10))

# cfg, input size, (tpp_dims, tpp_hw), (final_dims, final_hw) -- worked out by hand from
# the archs: Swin 64/4=16 -> merges to 8, 4 (tpp), 2 (final), dims 16*2^k.
CASES = {
    'swin': (B.swin_teacher(), 64, (64, (4, 4)), (128, (2, 2))),
    'vit': (VIT, 32, (16, (4, 4)), (16, (4, 4))),
    'vit_no_cls': (VIT_NO_CLS, 32, (16, (4, 4)), (16, (4, 4))),
    'eva_beit': (B.eva_teacher(), 56, (16, (4, 4)), (16, (4, 4))),
    'beit_relpos': (BEIT_RELPOS, 28, (16, (4, 4)), (16, (4, 4))),
    'eva02': (EVA02, 28, (16, (4, 4)), (16, (4, 4))),
    'convnext': (CONVNEXT, 64, (32, (4, 4)), (64, (2, 2))),
    'timm_vit': (TIMM_VIT, 32, (16, (2, 2)), (16, (2, 2))),
    'timm_swin': (TIMM_SWIN, 64, (64, (4, 4)), (128, (2, 2))),
    'timm_convnext': (TIMM_CONVNEXT, 64, (32, (4, 4)), (64, (2, 2))),
}


@pytest.mark.parametrize('family', list(CASES))
def test_teacher_shapes_tpp_gradient_and_freezing(family):
    cfg, size, (tpp_dims, tpp_hw), (final_dims, final_hw) = CASES[family]
    teacher = MODELS.build(cfg)
    assert isinstance(teacher, BaseTeacher)
    assert (teacher.tpp_dims, teacher.tpp_hw) == (tpp_dims, tpp_hw)
    assert (teacher.final_dims, teacher.final_hw) == (final_dims, final_hw)
    assert teacher.input_size == (size, size)

    out = teacher.forward_targets(torch.randn(2, 3, size, size))
    assert isinstance(out, TeacherTargets)
    assert tuple(out.feature.shape) == (2, final_dims, *final_hw)
    assert tuple(out.logits.shape) == (2, B.NUM_CLASSES)

    tokens = torch.randn(2, tpp_hw[0] * tpp_hw[1], tpp_dims, requires_grad=True)
    z = teacher.forward_last_stage(tokens)
    assert tuple(z.shape) == (2, final_dims, *final_hw)
    z.square().sum().backward()
    assert tokens.grad is not None and tokens.grad.abs().sum() > 0
    assert all(not p.requires_grad and p.grad is None for p in teacher.parameters())
    with pytest.raises(ValueError, match='expects tokens of shape'):
        teacher.forward_last_stage(torch.randn(2, tpp_hw[0] * tpp_hw[1] + 1, tpp_dims))


@pytest.mark.parametrize('family', ['swin', 'vit_no_cls', 'convnext', 'timm_swin',
                                    'timm_convnext'])
def test_last_stage_on_teacher_tokens_reproduces_target(family):
    """TPP on the teacher's own stage-(n-1) tokens must give exactly its target map."""
    cfg, size, _, _ = CASES[family]
    teacher = MODELS.build(cfg)
    x = torch.randn(2, 3, size, size)
    captured = {}

    def keep(value):  # a forward hook that returns a value would replace the output
        captured.setdefault('t', value)

    m = teacher.model
    if family == 'swin':
        layer = m.backbone.stages[-2].downsample
        hook = layer.register_forward_hook(lambda mod, a, o: keep(a[0]))
    elif family == 'vit_no_cls':
        layer = m.backbone.layers[-1]
        hook = layer.register_forward_hook(lambda mod, a, o: keep(a[0]))
    elif family == 'convnext':
        layer = m.backbone.downsample_layers[-1]
        hook = layer.register_forward_hook(
            lambda mod, a, o: keep(a[0].flatten(2).transpose(1, 2)))
    elif family == 'timm_swin':
        hook = m.layers[-1].register_forward_hook(
            lambda mod, a, o: keep(a[0].flatten(1, 2)))
    else:
        hook = m.stages[-1].register_forward_hook(
            lambda mod, a, o: keep(a[0].flatten(2).transpose(1, 2)))
    with torch.no_grad():
        target = teacher.forward_targets(x).feature
        hook.remove()
        z = teacher.forward_last_stage(captured['t'])
    torch.testing.assert_close(z, target)


def test_teacher_stays_eval_unless_train_mode():
    teacher = MODELS.build(B.swin_teacher())
    teacher.train()
    assert not any(m.training for m in teacher.modules())
    quirk = MODELS.build(B.swin_teacher(train_mode=True))
    quirk.train()
    assert all(m.training for m in quirk.modules())
    assert not any(p.requires_grad for p in quirk.parameters())


def test_renormalisation_and_resize():
    teacher = MODELS.build(B.swin_teacher(mean=[0.0, 0.0, 0.0], std=[2.0, 2.0, 2.0],
                                          input_size=32))
    teacher.set_student_normalization(torch.tensor([1.0, 1.0, 1.0]),
                                      torch.tensor([4.0, 4.0, 4.0]))
    x = torch.full((1, 3, 32, 32), 0.5)  # raw = 0.5 * 4 + 1 = 3 -> teacher (3 - 0) / 2 = 1.5
    torch.testing.assert_close(teacher.prepare_inputs(x), torch.full((1, 3, 32, 32), 1.5))
    assert tuple(teacher.prepare_inputs(torch.zeros(1, 3, 64, 64)).shape) == (1, 3, 32, 32)
    assert teacher.final_hw == (1, 1) and teacher.tpp_hw == (2, 2)
    same = MODELS.build(B.swin_teacher())  # no teacher mean/std: inputs pass unchanged
    same.set_student_normalization(torch.tensor([1.0]), torch.tensor([4.0]))
    x64 = torch.randn(1, 3, 64, 64)
    assert torch.equal(same.prepare_inputs(x64), x64)


def test_checkpoint_round_trip_missing_and_mismatch(tmp_path):
    src = MODELS.build(B.swin_teacher())
    path = tmp_path / 'swin.pth'
    torch.save({'state_dict': src.model.state_dict()}, path)
    torch.manual_seed(123)
    loaded = MODELS.build(B.swin_teacher(checkpoint=str(path)))
    for (k, a), b in zip(src.model.state_dict().items(), loaded.model.state_dict().values()):
        assert torch.equal(a, b), k
    loaded.init_weights()  # must not overwrite the loaded weights
    assert torch.equal(loaded.model.head.fc.weight, src.model.head.fc.weight)

    missing = tmp_path / 'nope.pth'
    with pytest.raises(FileNotFoundError, match='nope.pth'):
        MODELS.build(B.swin_teacher(checkpoint=str(missing)))

    other = MODELS.build(CONVNEXT)
    bad = tmp_path / 'convnext.pth'
    torch.save(other.model.state_dict(), bad)
    with pytest.raises(RuntimeError, match=r'does not match.*missing key.*backbone\.stages'):
        MODELS.build(B.swin_teacher(checkpoint=str(bad)))


def test_bad_teacher_configs():
    with pytest.raises(ValueError, match='unknown timm model.*VisionTransformer'):
        MODELS.build(dict(type='TimmTeacher', model_name='not_a_model_xyz'))
    with pytest.raises(ValueError, match=r'SwinTransformerV2 whose forward_features gives '
                                         r'\(1, 2, 2, 32\).*not a \(B, num_features=32, H, W\)'):
        MODELS.build(dict(type='TimmTeacher', model_name='swinv2_tiny_window8_256',  # NHWC
                          model_kwargs=dict(img_size=64, window_size=2, embed_dim=4,
                                            depths=(1, 1, 1, 1), num_heads=(1, 1, 1, 1))))
    with pytest.raises(TypeError, match='SwinTransformer backbone'):
        MODELS.build(dict(type='MMPretrainSwinTeacher', model=CONVNEXT['model']))
    with pytest.raises(ValueError, match='pass input_size'):
        MODELS.build(dict(CONVNEXT, input_size=None))
    with pytest.raises(ValueError, match='tpp_blocks=9'):
        MODELS.build(dict(VIT, tpp_blocks=9))
    with pytest.raises(ValueError, match='mean and std'):
        MODELS.build(B.swin_teacher(mean=[1.0, 2.0, 3.0]))


# ----------------------------------------------------------------------------- timm CNNs
TIMM_RESNET = dict(type='TimmTeacher', model_name='resnet18',
                   model_kwargs=dict(channels=(8, 16, 32, 64), num_classes=10))


@pytest.mark.parametrize('size,final_hw', [
    ((64, 64), (2, 2)),
    # worked out by hand: 48 -> 24 (conv1 s2) -> 12 (maxpool) -> 12 -> 6 -> 3 -> 2;
    # 80 -> 40 -> 20 -> 20 -> 10 -> 5 -> 3 (stride-2 3x3 convs with padding 1 round up)
    ((48, 80), (2, 3)),
])
def test_timm_cnn_teacher_gives_logits_and_final_map(size, final_hw):
    teacher = MODELS.build(dict(TIMM_RESNET, input_size=size))
    assert teacher.family == 'cnn' and teacher.supports_tpp is False
    assert (teacher.final_dims, teacher.final_hw) == (64, final_hw)
    assert teacher.tpp_dims is None and teacher.tpp_hw is None
    # mean/std from timm's pretrained_cfg (ImageNet), in 0-255 units
    torch.testing.assert_close(teacher.teacher_mean.flatten(),
                               torch.tensor([123.675, 116.28, 103.53]))
    teacher.train()
    assert not any(m.training for m in teacher.modules())
    assert not any(p.requires_grad for p in teacher.parameters())
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
    with pytest.raises(NotImplementedError, match=r"TimmTeacher\('resnet18'\).*logits-only.*"
                                                  r'tpp=True or query_from'):
        teacher.forward_last_stage(torch.randn(2, 4, 32))


def test_timm_resnext_and_resnet_d_teachers_build_small():
    """The SSLD teachers' timm names, shrunk through model_kwargs (pretrained=False)."""
    small = dict(layers=(1, 1, 1, 1), channels=(8, 16, 32, 64), stem_width=8, num_classes=10)
    resnext = MODELS.build(dict(type='TimmTeacher', input_size=32, model_kwargs=small,
                                model_name='resnext101_32x16d.fb_wsl_ig1b_ft_in1k'))
    resnet_d = MODELS.build(dict(type='TimmTeacher', input_size=32, model_kwargs=small,
                                 model_name='resnet50d.ra4_e3600_r224_in1k'))
    for teacher in (resnext, resnet_d):  # Bottleneck: 4 x 64 channels; 32 / 32 = 1
        assert (teacher.family, teacher.final_dims, teacher.final_hw) == ('cnn', 256, (1, 1))
        out = teacher.forward_targets(torch.randn(2, 3, 32, 32))
        assert tuple(out.logits.shape) == (2, 10) and torch.isfinite(out.logits).all()
    assert resnext.model.layer1[0].conv2.groups == 32  # cardinality kept from the name
    # resnet50d's own normalisation (0.5, 0.5) from its pretrained_cfg, in 0-255 units
    torch.testing.assert_close(resnet_d.teacher_std.flatten(), torch.full((3, ), 127.5))


def test_distiller_refuses_tpp_with_a_logits_only_teacher():
    student = B.classifier(dict(type='MobileNetV1', widen_factor=0.25, out_indices=(2, 3)), 256)
    teacher = dict(TIMM_RESNET, input_size=64)
    tpp_stages = B.stages((128, (4, 4)), (256, (2, 2)), (64, (4, 4)), (64, (2, 2)))
    with pytest.raises(ValueError, match=r"stage 's3'.*TimmTeacher\('resnet18'\) does not "
                                         'support'):
        MODELS.build(B.distiller(student, teacher, tpp_stages))
    # a stage on the final map with learnable queries is fine, and so is logits only
    final_stage = dict(name='s4', student_index=1,
                       connector=dict(type='CrossAttentionProjector', in_channels=256,
                                      embed_dims=64, student_hw=(2, 2), query_hw=(2, 2),
                                      num_heads=2),
                       loss=dict(type='DualViewMimicLoss', alpha=(0.08, 0.06)))
    model = MODELS.build(B.distiller(student, teacher, [final_stage]))
    x, samples = B.batch(64)
    losses = model.loss(x, samples)
    assert set(losses) == {'student.loss', 'distill.loss_kd', 'distill.loss_s4_spatial',
                           'distill.loss_s4_freq'}
    sum(losses.values()).backward()
    assert all(B.grads(model).values())
    logit_only = MODELS.build(B.distiller(student, teacher, []))
    assert set(logit_only.loss(x, samples)) == {'student.loss', 'distill.loss_kd'}
