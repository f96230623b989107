"""configs/foundation: real timm names with pretrained tags, built offline with random weights
and a shallow, narrow teacher (full grid); their derived connectors; the logit-KD twins."""
import glob
import os.path as osp

import pytest
import torch
from mmengine.config import Config

from mmscalekd.registry import MODELS
from tests import _builders as B

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))
CONFIGS = sorted(glob.glob(osp.join(ROOT, 'configs', 'foundation', '*.py')))
SCALEKD = [p for p in CONFIGS if osp.basename(p).startswith('scalekd_')]
# teacher key in the file name -> (family, teacher grid at its input size, input size)
TEACHERS = {
    'beitv2-l16': ('beit', (14, 14), (224, 224)),
    'eva02-l14-448': ('eva', (32, 32), (448, 448)),
    'clip-l14': ('vit', (16, 16), (224, 224)),
    'dinov2-l14-reg4': ('vit', (16, 16), (224, 224)),
}
# student key -> (s3 grid, s4 grid) at 224 px
STUDENTS = {'resnet50': ((14, 14), (7, 7)), 'vit-s16': ((14, 14), (14, 14))}


def _name(path: str) -> str:
    return osp.basename(path)


def _offline(model_cfg: dict) -> dict:
    """The config's model with a random, shallow and narrow teacher at its real grid."""
    teacher = model_cfg['teacher']
    assert teacher['type'] == 'TimmTeacher' and teacher['pretrained'] is True
    teacher['pretrained'] = False
    teacher['allow_random_teacher'] = True
    teacher['model_kwargs'] = dict(teacher.get('model_kwargs') or {}, depth=3, embed_dim=64,
                                   num_heads=2)
    for stage in model_cfg['distill_stages']:
        assert not {'in_channels', 'student_hw', 'embed_dims', 'query_hw',
                    'learnable_query'} & set(stage['connector'])  # the new stage format
    return model_cfg


def test_the_set_of_foundation_configs():
    names = {_name(p) for p in CONFIGS}
    assert len(SCALEKD) == 6 and len(names) == 11
    for path in SCALEKD:
        twin = _name(path).replace('scalekd_', 'kd_', 1)
        assert (twin in names) == ('dinov2' not in path), twin


@pytest.mark.parametrize('path', CONFIGS, ids=_name)
def test_teacher_is_a_real_timm_name_with_a_pretrained_tag(path):
    import timm
    teacher = Config.fromfile(path).model.teacher
    assert teacher.model_name in timm.list_pretrained(), teacher.model_name


@pytest.mark.parametrize('path', [p for p in CONFIGS if _name(p).startswith('kd_')], ids=_name)
def test_logit_kd_twin_differs_only_in_distill_stages(path):
    twin = Config.fromfile(path).model.to_dict()
    scalekd = Config.fromfile(path.replace('/kd_', '/scalekd_')).model.to_dict()
    assert twin.pop('distill_stages') == [] and len(scalekd.pop('distill_stages')) == 2
    assert twin == scalekd


@pytest.mark.slow  # full-size students (ResNet-50-D, ViT-S/16) at 224 px
@pytest.mark.parametrize('path', SCALEKD, ids=_name)
def test_builds_offline_with_derived_connectors(path):
    torch.manual_seed(0)
    _, teacher_key, student_key, _ = _name(path).split('_', 3)
    family, grid, teacher_size = TEACHERS[teacher_key]
    s3_hw, s4_hw = STUDENTS[student_key]
    model = MODELS.build(_offline(Config.fromfile(path).model.to_dict()))
    t = model.teacher
    assert (t.family, t.input_size, t.tpp_hw, t.final_hw) == (family, teacher_size, grid, grid)
    assert model.input_size == (224, 224)  # the student's resolution, also beside EVA-02 at 448
    s3, s4 = model.connectors['s3_spatial'], model.connectors['s4_spatial']
    assert (tuple(s3.student_hw), tuple(s3.query_hw), s3.embed_dims) == (s3_hw, grid, 64)
    assert (tuple(s4.student_hw), tuple(s4.query_hw), s4.embed_dims) == (s4_hw, grid, 64)
    assert t.has_classifier == ('dinov2' not in path)
    assert (model.logit_loss is None) == ('dinov2' in path)
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert not any(n.startswith('teacher.') for n in trainable)


def test_dinov2_config_with_a_logit_loss_fails_at_build():
    path = [p for p in SCALEKD if 'dinov2' in p][0]
    model_cfg = _offline(Config.fromfile(path).model.to_dict())
    model_cfg.update(logit_loss=dict(type='SoftTargetKDLoss'), label_loss_weight=0.5)
    with pytest.raises(ValueError, match='has no classifier .*logit_loss=None'):
        MODELS.build(model_cfg)


@pytest.mark.slow
def test_one_step_eva02_at_448_beside_a_224_student():
    path = [p for p in SCALEKD if 'eva02' in p and 'resnet50' in p][0]
    torch.manual_seed(0)
    model = MODELS.build(_offline(Config.fromfile(path).model.to_dict()))
    model.train()
    x, samples = B.batch(224, b=1)
    for ds in samples:  # the config's 1000-class head
        ds.set_gt_label(3)
    losses = model.loss(x, samples)
    assert {'distill.loss_s3_spatial', 'distill.loss_s4_freq', 'distill.loss_kd'} <= set(losses)
    assert all(torch.isfinite(v) for v in losses.values())
    sum(losses.values()).backward()
    assert not [n for n, ok in B.grads(model).items() if not ok]
