"""The teacher contract as the distiller uses it: derived connector shapes for every family,
capability checks at build, the student's input convention and the mode passed at build."""
import pytest
import torch

from mmscalekd.models.teachers import TPPTeacher
from mmscalekd.registry import MODELS
from tests import _builders as B
from tests.test_models.test_teachers.cases import CASES, TARGET_ONLY

RESNET = dict(type='ResNet', depth=18, stem_channels=8, base_channels=8, out_indices=(2, 3))


def _stages(heads: int = 2) -> list:
    """The new stage format: choices only, every shape derived."""
    return [
        dict(name='s3', student_index=0, tpp=True,
             connector=dict(type='CrossAttentionProjector', num_heads=heads, softmax_scale=5.0),
             loss=dict(type='DualViewMimicLoss', alpha=(0.08, 0.06))),
        dict(name='s4', student_index=1, query_from='s3',
             connector=dict(type='CrossAttentionProjector', num_heads=heads, softmax_scale=5.0),
             loss=dict(type='DualViewMimicLoss', alpha=(0.08, 0.06))),
    ]


def _distiller(teacher: dict, stages=None, **kwargs) -> dict:
    cfg = B.distiller(B.classifier(RESNET, 64), teacher, _stages() if stages is None else stages,
                      **kwargs)
    return cfg


@pytest.mark.parametrize('name', list(CASES))
def test_connectors_are_derived_from_the_teacher_and_one_step_runs(name):
    case = CASES[name]
    no_logits = case.num_classes == 0
    extra = dict(logit_loss=None, label_loss_weight=1.0) if no_logits else {}
    torch.manual_seed(0)
    model = MODELS.build(_distiller(case.cfg, **extra))
    t = model.teacher
    assert isinstance(t, TPPTeacher)
    s3, s4 = (model.connectors[f'{s}_spatial'] for s in ('s3', 's4'))
    assert (s3.embed_dims, tuple(s3.query_hw)) == (t.tpp_dims, t.tpp_hw) == (
        case.tpp[0], case.tpp[1])
    assert (s4.embed_dims, tuple(s4.query_hw)) == (t.final_dims, t.final_hw) == (
        case.final[0], case.final[1])
    x, samples = B.batch(case.size)
    target = t.forward_targets(x, with_logits=False).feature
    tokens = s3(model.student.extract_feat(x, stage='backbone')[0])
    assert tuple(t.forward_last_stage(tokens).shape) == tuple(target.shape) == (
        2, case.final[0], *case.final[1])
    losses = model.loss(x, samples)
    expected = {'student.loss', 'distill.loss_s3_spatial', 'distill.loss_s3_freq',
                'distill.loss_s4_spatial', 'distill.loss_s4_freq'}
    assert set(losses) == (expected if no_logits else expected | {'distill.loss_kd'})
    sum(losses.values()).backward()
    assert all(B.grads(model).values())
    assert all(p.grad is None for p in t.parameters())


def test_logit_kd_from_a_teacher_without_classifier_fails_at_build():
    cfg = CASES['timm_dinov2_reg4'].cfg
    with pytest.raises(ValueError, match=r"logit_loss=SoftTargetKDLoss needs teacher logits, "
                                         r"but TimmTeacher\('vit_large_patch14_reg4_dinov2"
                                         r".lvd142m'\) has no classifier \(num_classes=0.*"
                                         'logit_loss=None'):
        MODELS.build(_distiller(cfg))
    logit_only = dict(_distiller(cfg), distill_stages=[])
    with pytest.raises(ValueError, match='has no classifier'):
        MODELS.build(logit_only)
    features_only = MODELS.build(_distiller(cfg, logit_loss=None, label_loss_weight=1.0))
    assert features_only.logit_loss is None


def test_logit_kd_needs_the_students_classes():
    cfg = dict(CASES['timm_vit'].cfg)
    cfg['model_kwargs'] = dict(cfg['model_kwargs'], num_classes=7)
    with pytest.raises(ValueError, match='7-class teacher logits .* 10-class student head'):
        MODELS.build(_distiller(cfg))


def test_tpp_stages_need_a_tpp_teacher():
    teacher, size, _ = TARGET_ONLY['timm_resnet']
    with pytest.raises(ValueError, match=r"stage 's3'.*TimmTeacher\('resnet18'\) does not "
                                         'support'):
        MODELS.build(_distiller(teacher))
    # a stage on the final map with learnable queries is fine, and so is logits only
    final_stage = dict(name='s4', student_index=1,
                       connector=dict(type='CrossAttentionProjector', num_heads=2),
                       loss=dict(type='DualViewMimicLoss', alpha=(0.08, 0.06)))
    model = MODELS.build(_distiller(teacher, [final_stage]))
    assert tuple(model.connectors['s4_spatial'].query_hw) == model.teacher.final_hw == (2, 2)
    x, samples = B.batch(size)
    losses = model.loss(x, samples)
    assert set(losses) == {'student.loss', 'distill.loss_kd', 'distill.loss_s4_spatial',
                           'distill.loss_s4_freq'}
    sum(losses.values()).backward()
    assert all(B.grads(model).values())
    logit_only = MODELS.build(_distiller(teacher, []))
    assert set(logit_only.loss(x, samples)) == {'student.loss', 'distill.loss_kd'}


def test_student_input_convention_is_given_to_the_teacher_at_build():
    pre = dict(type='ClsDataPreprocessor', mean=[10.0, 20.0, 30.0], std=[2.0, 4.0, 8.0],
               to_rgb=False)
    model = MODELS.build(_distiller(CASES['timm_clip'].cfg, data_preprocessor=pre))
    t = model.teacher
    assert t.student_mean.flatten().tolist() == [10.0, 20.0, 30.0]
    assert t.student_std.flatten().tolist() == [2.0, 4.0, 8.0]
    assert (t.student_channel_order, t.channel_order) == ('bgr', 'rgb')
    # the teacher converts by values: BGR student batch -> RGB batch in CLIP's normalisation
    bgr = torch.tensor([50.0, 60.0, 70.0]).view(1, 3, 1, 1).expand(1, 3, 56, 56)
    student = (bgr - torch.tensor([10.0, 20.0, 30.0]).view(1, 3, 1, 1)) / torch.tensor(
        [2.0, 4.0, 8.0]).view(1, 3, 1, 1)
    rgb = bgr.flip(1)
    expected = (rgb - t.teacher_mean) / t.teacher_std
    torch.testing.assert_close(t.prepare_inputs(student), expected)
    # a preprocessor that does not normalise gives raw pixels: identity convention
    raw = MODELS.build(_distiller(CASES['timm_clip'].cfg))
    assert raw.teacher.student_mean.flatten().tolist() == [0.0]
    assert raw.teacher.student_std.flatten().tolist() == [1.0]
    assert not hasattr(raw.teacher, 'set_student_normalization')


def test_student_convention_in_the_teacher_config_must_agree():
    pre = dict(type='ClsDataPreprocessor', mean=[1.0, 2.0, 3.0], std=[1.0, 1.0, 1.0],
               to_rgb=True)
    agree = dict(CASES['timm_vit'].cfg, student_mean=[1.0, 2.0, 3.0])
    MODELS.build(_distiller(agree, data_preprocessor=pre))
    disagree = dict(CASES['timm_vit'].cfg, student_channel_order='bgr')
    with pytest.raises(ValueError, match=r"teacher.student_channel_order='bgr' differs from the "
                                         r"distiller's data_preprocessor \('rgb'\).*remove "
                                         'student_channel_order'):
        MODELS.build(_distiller(disagree, data_preprocessor=pre))
    # a built teacher with its own normalisation must have been built with the same one
    built = MODELS.build(CASES['timm_vit'].cfg)
    with pytest.raises(ValueError, match='made for another student input convention'):
        MODELS.build(_distiller(built, data_preprocessor=pre))


def test_teacher_train_mode_is_passed_at_build_and_the_teacher_owns_the_mode():
    model = MODELS.build(_distiller(B.swin_teacher(), teacher_train_mode=True))
    assert model.teacher.train_mode and not hasattr(model, 'teacher_train_mode')
    model.train()
    assert all(m.training for m in model.teacher.modules())
    model.eval()
    assert not any(m.training for m in model.teacher.modules())
    frozen = MODELS.build(_distiller(B.swin_teacher()))
    frozen.train()
    assert frozen.student.training and not any(m.training for m in frozen.teacher.modules())
    with pytest.raises(ValueError, match=r'teacher.train_mode=True differs from the distiller.s '
                                         r'teacher_train_mode \(False\).*set teacher_train_mode'):
        MODELS.build(_distiller(B.swin_teacher(train_mode=True)))
    with pytest.raises(ValueError, match='made for another student input convention or mode'):
        MODELS.build(_distiller(MODELS.build(B.swin_teacher(train_mode=True))))
