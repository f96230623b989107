"""ScaleKDDistiller: loss step, gradient routing (TPP), modes, label-free, build-time checks."""
import copy

import pytest
import torch

from mmscalekd.registry import MODELS
from tests import _builders as B

# Tiny Swin teacher at 64: TPP space 64 @ 4x4, final 128 @ 2x2.
TPP, FINAL = (64, (4, 4)), (128, (2, 2))
RESNET = dict(type='ResNet', depth=18, base_channels=8, stem_channels=8, out_indices=(2, 3))


def resnet_distiller(**kwargs) -> dict:
    stages = kwargs.pop('distill_stages', None) or B.stages((32, (4, 4)), (64, (2, 2)), TPP,
                                                            FINAL)
    return B.distiller(B.classifier(RESNET, 64), B.swin_teacher(), stages, **kwargs)


def test_loss_step_keys_every_param_gets_grad_teacher_frozen():
    model = MODELS.build(resnet_distiller())
    model.train()
    assert not any(m.training for m in model.teacher.modules())
    assert model.student.training and model.connectors.training
    assert set(model.connectors) == {'s3_spatial', 's3_freq', 's4_spatial', 's4_freq'}
    x, samples = B.batch(64)
    losses = model(x, samples, mode='loss')
    assert set(losses) == {'student.loss', 'distill.loss_kd', 'distill.loss_s3_spatial',
                           'distill.loss_s3_freq', 'distill.loss_s4_spatial',
                           'distill.loss_s4_freq'}
    assert all(torch.isfinite(v) and v > 0 for v in losses.values())
    sum(losses.values()).backward()
    missing = [n for n, ok in B.grads(model).items() if not ok]
    assert missing == []
    assert all(p.grad is None and not p.requires_grad for p in model.teacher.parameters())
    keys = model.state_dict().keys()
    assert {k.split('.')[0] for k in keys} >= {'student', 'connectors', 'teacher'}


def test_label_loss_weight_scales_the_head_loss():
    x, samples = B.batch(64)
    full = MODELS.build(resnet_distiller(label_loss_weight=1.0))
    half = MODELS.build(resnet_distiller(label_loss_weight=0.25))
    half.load_state_dict(full.state_dict())
    full.eval()
    half.eval()  # deterministic BN for the comparison
    with torch.no_grad():
        a = full.loss(x, samples)['student.loss']
        b = half.loss(x, samples)['student.loss']
    torch.testing.assert_close(b, 0.25 * a)


def test_tpp_routes_gradient_through_frozen_teacher_to_student_stage3():
    stages = B.stages((32, (4, 4)), (64, (2, 2)), TPP, FINAL)[:1]  # s3 (TPP) only
    with pytest.warns(UserWarning, match='label_free=True with logit_loss=None'):
        model = MODELS.build(resnet_distiller(distill_stages=stages, logit_loss=None,
                                              label_free=True))
    x, _ = B.batch(64, labels=False)
    losses = model.loss(x, None)
    assert set(losses) == {'distill.loss_s3_spatial', 'distill.loss_s3_freq'}
    sum(losses.values()).backward()
    backbone = model.student.backbone
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in backbone.layer3.parameters())
    assert all(p.grad is None for p in backbone.layer4.parameters())
    assert all(p.grad is None for p in model.teacher.parameters())


def test_s4_queries_come_from_tpp_outputs_undetached():
    model = MODELS.build(resnet_distiller(logit_loss=None))
    x, samples = B.batch(64)
    loss = model.loss(x, samples)['distill.loss_s4_spatial']
    loss.backward()
    # Only the s4 spatial loss: the s3 spatial connector gets gradient through the s4
    # queries (view by view); the frequency-view connectors get none (an all-zero gradient
    # when batch_tpp_views runs both s3 views as one teacher call and splits the result).
    assert model.connectors['s3_spatial'].query.grad is not None
    assert model.connectors['s3_spatial'].q.weight.grad.abs().sum() > 0
    freq_grad = model.connectors['s3_freq'].query.grad
    assert freq_grad is None or not freq_grad.any()
    assert model.connectors['s4_freq'].q.weight.grad is None


def test_predict_and_tensor_delegate_to_student():
    model = MODELS.build(resnet_distiller())
    model.eval()
    x, samples = B.batch(64)
    with torch.no_grad():
        torch.testing.assert_close(model(x, mode='tensor'), model.student(x, mode='tensor'))
        preds = model(x, copy.deepcopy(samples), mode='predict')
        ref = model.student(x, copy.deepcopy(samples), mode='predict')
        feats = model.extract_feat(x, stage='backbone')
    assert [p.pred_label.tolist() for p in preds] == [p.pred_label.tolist() for p in ref]
    assert len(feats) == 2 and tuple(feats[1].shape) == (2, 64, 2, 2)


def test_label_free_never_reads_labels_and_missing_labels_raise():
    model = MODELS.build(resnet_distiller(label_free=True))
    x, samples = B.batch(64, labels=False)
    losses = model.loss(x, samples)
    assert not any(k.startswith('student.') for k in losses)
    assert 'distill.loss_kd' in losses
    labelled = MODELS.build(resnet_distiller())
    with pytest.raises(ValueError, match='label_free=True'):
        labelled.loss(x, samples)


def _bad(**changes):
    cfg = resnet_distiller()
    stages = cfg['distill_stages']
    for path, value in changes.items():
        stage, *keys = path.split('__')
        target = stages[int(stage[1:]) - 3]
        for k in keys[:-1]:
            target = target[k]
        target[keys[-1]] = value
    return cfg


@pytest.mark.parametrize('cfg, error, match', [
    (_bad(s3__student_index=5), ValueError, r"'s3'.*student_index=5 is out of range.*2 output"),
    (_bad(s3__connector__in_channels=48), ValueError, r"in_channels=48.*\(32, 4, 4\)"),
    (_bad(s4__connector__student_hw=(4, 4)), ValueError, r"student_hw=\(4, 4\).*\(64, 2, 2\)"),
    (_bad(s3__connector__embed_dims=128), ValueError, r"embed_dims=128.*embed_dims=64.*TPP input"),
    (_bad(s4__connector__query_hw=(4, 4)), ValueError, r"query_hw=\(4, 4\).*final map.*\(2, 2\)"),
    (_bad(s4__query_from='s9'), ValueError, r"query_from='s9' names no earlier stage"),
    (_bad(s4__connector__learnable_query=True), ValueError,
     r"learnable_query=True is given, but learnable_query=False is derived from query_from='s3'"),
    (_bad(s3__tpp=False, s3__connector__embed_dims=128, s3__connector__query_hw=(2, 2)),
     ValueError, r"query_from='s3' names a stage without tpp=True"),
])
def test_bad_configs_raise_at_build(cfg, error, match):
    with pytest.raises(error, match=match):
        MODELS.build(cfg)


def test_bad_teacher_and_checkpoint_raise_at_build(tmp_path):
    cfg = resnet_distiller()
    cfg['teacher'] = dict(type='NoSuchTeacher', model=None)
    with pytest.raises(KeyError, match=r"NoSuchTeacher.*MMPretrainSwinTeacher.*TimmTeacher"):
        MODELS.build(cfg)
    cfg = resnet_distiller()
    cfg['teacher']['checkpoint'] = str(tmp_path / 'missing_teacher.pth')
    with pytest.raises(FileNotFoundError, match='missing_teacher.pth'):
        MODELS.build(cfg)
    other = MODELS.build(B.swin_teacher(embed=8))
    torch.save(other.model.state_dict(), tmp_path / 'small.pth')
    cfg['teacher']['checkpoint'] = str(tmp_path / 'small.pth')
    with pytest.raises(RuntimeError, match=r'does not match.*shape mismatch'):
        MODELS.build(cfg)


# ---------------------------------------------------------------- Table 3 pairs
def _vit(embed, patch, img):
    return dict(type='VisionTransformer', img_size=img, patch_size=patch, out_type='featmap',
                with_cls_token=False, out_indices=(1, 3),
                arch=dict(embed_dims=embed, num_layers=4, num_heads=2,
                          feedforward_channels=2 * embed))


def _mixer(embed, patch, img):
    return dict(type='MlpMixerTaps', img_size=img, patch_size=patch, out_indices=(1, 3),
                arch=dict(embed_dims=embed, num_layers=4, tokens_mlp_dims=8,
                          channels_mlp_dims=2 * embed))


R50 = dict(type='ResNet', depth=50, base_channels=8, stem_channels=8, out_indices=(2, 3))
SWIN_T = dict(type='SwinTransformerTaps', img_size=64, window_size=2, out_indices=(2, 3),
              arch=dict(embed_dims=8, depths=[1, 1, 1, 1], num_heads=[1, 1, 1, 1]))
CONVNEXT_T = dict(type='ConvNeXtTaps', out_indices=(2, 3),
                  arch=dict(depths=[1, 1, 1, 1], channels=[8, 16, 32, 64]))
MBV1 = dict(type='MobileNetV1', widen_factor=0.25, out_indices=(2, 3))
EVA = (16, (4, 4))  # tiny EVA teacher: TPP and final 16 @ 4x4 (patch 14 at 56)

# name: (teacher, input size, student backbone, head in_channels, s3 tap, s4 tap, tpp, final,
#        stem norm). Tap shapes hand-derived: R50 layer3 = 16 * base(8) = 128 @ /16, layer4 256
#        @ /32; MBv1 x0.25: 128 @ /16, 256 @ /32; patch-16 ViT/Mixer at 64 and patch-14 at 56:
#        4x4 grids at both taps.
PAIRS = {
    'swinl_mbv1': ('swin', 64, MBV1, 256, (128, (4, 4)), (256, (2, 2)), 'BN'),
    'swinl_res50': ('swin', 64, R50, 256, (128, (4, 4)), (256, (2, 2)), 'BN'),
    'swinl_convnext_t': ('swin', 64, CONVNEXT_T, 64, (32, (4, 4)), (64, (2, 2)), 'BN'),
    'swinl_mixer_s16': ('swin', 64, _mixer(24, 16, 64), 24, (24, (4, 4)), (24, (4, 4)), 'BN'),
    'swinl_mixer_b16': ('swin', 64, _mixer(32, 16, 64), 32, (32, (4, 4)), (32, (4, 4)), 'BN'),
    'swinl_vit_s16': ('swin', 64, _vit(24, 16, 64), 24, (24, (4, 4)), (24, (4, 4)), 'BN'),
    'swinl_swin_t': ('swin', 64, SWIN_T, 64, (32, (4, 4)), (64, (2, 2)), 'LN'),
    'swinl_vit_b16': ('swin', 64, _vit(32, 16, 64), 32, (32, (4, 4)), (32, (4, 4)), 'BN'),
    'eval_res50': ('eva', 56, R50, 256, (128, (4, 4)), (256, (2, 2)), 'BN'),
    'eval_mixer_b14': ('eva', 56, _mixer(32, 14, 56), 32, (32, (4, 4)), (32, (4, 4)), 'BN'),
    'eval_vit_b14': ('eva', 56, _vit(32, 14, 56), 32, (32, (4, 4)), (32, (4, 4)), 'BN'),
}


@pytest.mark.parametrize('pair', list(PAIRS))
def test_table3_pair_one_loss_step(pair):
    teacher_kind, size, backbone, head_c, s3, s4, stem_norm = PAIRS[pair]
    if teacher_kind == 'swin':
        teacher, tpp, final, alpha = B.swin_teacher(), TPP, FINAL, (0.08, 0.06)
    else:
        teacher, tpp, final, alpha = B.eva_teacher(), EVA, EVA, (0.016, 0.008)
    student = B.classifier(backbone, head_c)
    model = MODELS.build(B.distiller(student, teacher,
                                     B.stages(s3, s4, tpp, final, alpha=alpha,
                                              stem_norm=stem_norm)))
    model.train()
    x, samples = B.batch(size)
    losses = model.loss(x, samples)
    assert len(losses) == 6 and all(torch.isfinite(v) for v in losses.values())
    sum(losses.values()).backward()
    assert [n for n, ok in B.grads(model).items() if not ok] == []
    assert all(p.grad is None for p in model.teacher.parameters())


@pytest.mark.slow
def test_full_size_swin_t_teacher_to_mobilenet_v1_at_224():
    """Real archs at 224 (Swin-T teacher to keep CPU time low; Swin-L has the same shapes
    pattern with 768/1536 dims), batch 1: one loss step + backward."""
    teacher = dict(type='MMPretrainSwinTeacher', model=dict(
        type='ImageClassifier', backbone=dict(type='SwinTransformer', arch='tiny', img_size=224),
        neck=dict(type='GlobalAveragePooling'), head=B.linear_head(768)),
        allow_random_teacher=True)
    student = B.classifier(dict(type='MobileNetV1', out_indices=(2, 3)), 1024)
    stages = B.stages((512, (14, 14)), (1024, (7, 7)), (384, (14, 14)), (768, (7, 7)),
                      heads=8)
    model = MODELS.build(B.distiller(student, teacher, stages))
    model.train()
    x, samples = B.batch(224, b=1)
    losses = model.loss(x, samples)
    sum(losses.values()).backward()
    assert [n for n, ok in B.grads(model).items() if not ok] == []


def _logit_only(**kwargs) -> dict:
    cfg = resnet_distiller(**kwargs)
    cfg['distill_stages'] = []
    return cfg


def test_logit_only_distillation_with_empty_stages():
    # SSLD / plain KD: no feature stage, no connector; every trainable parameter still learns.
    model = MODELS.build(_logit_only(
        logit_loss=dict(type='SymmetricKLLoss', temperature=1.0, loss_weight=1.0),
        label_free=True))
    assert len(model.connectors) == 0
    x, _ = B.batch(64, labels=False)
    losses = model.loss(x, None)
    assert set(losses) == {'distill.loss_kd'}
    losses['distill.loss_kd'].backward()
    assert [n for n, ok in B.grads(model).items() if not ok] == []


def test_nothing_to_distil_is_refused():
    with pytest.raises(ValueError, match='Nothing to distil'):
        MODELS.build(_logit_only(logit_loss=None))


def test_partial_labels_average_the_label_term_over_labeled_samples():
    model = MODELS.build(resnet_distiller(partial_labels=True, label_loss_weight=1.0))
    model.eval()  # deterministic BN: compare the same logits
    x, samples = B.batch(64, b=4)
    for i in (1, 3):
        del samples[i].gt_label
    with torch.no_grad():
        logits = model.student(x, mode='tensor')
        mixed = model.loss(x, samples)['student.loss']
    expected = torch.nn.functional.cross_entropy(
        logits[[0, 2]], torch.tensor([int(samples[0].gt_label), int(samples[2].gt_label)]))
    torch.testing.assert_close(mixed, expected)


def test_partial_labels_batch_without_labels_keeps_every_gradient():
    model = MODELS.build(resnet_distiller(partial_labels=True))
    x, samples = B.batch(64, labels=False)
    losses = model.loss(x, samples)
    assert losses['student.loss'].item() == 0.0
    sum(losses.values()).backward()
    assert [n for n, ok in B.grads(model).items() if not ok] == []


def test_mixed_batch_without_partial_labels_names_both_options():
    model = MODELS.build(resnet_distiller())
    x, samples = B.batch(64, b=3)
    del samples[1].gt_label
    with pytest.raises(ValueError, match=r'1 of 3 samples.*label_free=True.*partial_labels=True'):
        model.loss(x, samples)


@pytest.mark.parametrize('changes,match', [
    (dict(label_free=True, partial_labels=True), 'set only one of them'),
    (dict(partial_labels='yes'), 'partial_labels must be a bool'),
])
def test_label_flags_are_validated(changes, match):
    with pytest.raises((ValueError, TypeError), match=match):
        MODELS.build(resnet_distiller(**changes))
