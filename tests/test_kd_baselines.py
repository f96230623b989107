"""The vanilla-KD twins (configs/kd/): one beside every paper Table-3 ScaleKD pair, equal to its
ScaleKD config outside the distillation stages, building and training with logit KD only."""
from __future__ import annotations

import glob
import os.path as osp

import pytest
from mmengine.config import Config

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
TWINS = sorted(glob.glob(osp.join(ROOT, 'configs', 'kd', 'kd_*.py')))
# The 11 pairs of paper Table 3 (advanced strategy, 300 epochs).
TABLE3 = sorted(osp.basename(p) for p in glob.glob(osp.join(ROOT, 'configs', 'scalekd',
                                                            'scalekd_*_32xb*_300e_in1k.py')))


def _name(path: str) -> str:
    return osp.basename(path)


def _scalekd_of(path: str) -> str:
    return osp.join(ROOT, 'configs', 'scalekd', osp.basename(path).replace('kd_', 'scalekd_', 1))


def _settings(cfg: Config) -> dict:
    """The config without its upper-case constants (NUM_HEADS, ALPHA, ...): what MMEngine uses."""
    return {k: v for k, v in cfg.to_dict().items() if not k.isupper()}


def test_one_twin_per_table3_pair():
    assert len(TABLE3) == 11
    assert sorted(osp.basename(_scalekd_of(p)) for p in TWINS) == TABLE3


@pytest.mark.parametrize('path', TWINS, ids=_name)
def test_twin_equals_its_scalekd_config_outside_the_distillation_stages(path):
    twin, scalekd = _settings(Config.fromfile(path)), _settings(Config.fromfile(_scalekd_of(path)))
    assert twin['model'].pop('distill_stages') == []
    assert len(scalekd['model'].pop('distill_stages')) == 2
    assert twin == scalekd  # student, teacher, data, augmentation, schedule, label loss, KD
    assert twin['model']['logit_loss']['type'] == 'SoftTargetKDLoss'


def test_a_changed_twin_is_noticed():
    path = TWINS[0]
    twin, scalekd = _settings(Config.fromfile(path)), _settings(Config.fromfile(_scalekd_of(path)))
    twin['model'].pop('distill_stages'), scalekd['model'].pop('distill_stages')
    twin['train_dataloader']['batch_size'] += 1
    assert twin != scalekd


@pytest.mark.slow  # about 5-12 s per twin: full-size student, shrunk teacher, one step at 224 px
@pytest.mark.parametrize('path', TWINS, ids=_name)
def test_twin_builds_and_trains_with_logit_kd_only(path):
    import torch

    from mmscalekd.registry import MODELS
    from mmscalekd.utils import register_all_modules
    from tests._builders import batch
    from tests.test_configs import shrink_scalekd

    register_all_modules()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = MODELS.build(shrink_scalekd(Config.fromfile(path).model.to_dict()))
    assert len(model.connectors) == 0
    model.init_weights()
    model.train()
    inputs, samples = batch(224, 2)
    losses = model(inputs, samples, mode='loss')
    assert set(losses) == {'student.loss', 'distill.loss_kd'}, sorted(losses)
    total = sum(losses.values())
    assert torch.isfinite(total)
    total.backward()
    grads = [p.grad for n, p in model.named_parameters() if n.startswith('student.')]
    assert all(g is not None for g in grads)
    assert not any(p.requires_grad for p in model.teacher.parameters())
