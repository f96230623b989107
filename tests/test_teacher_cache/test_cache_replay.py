"""Training on a teacher cache equals training with the live teacher, step for step.

The tiny KD config (random crops, flips, per-sample Mixup / CutMix, 2 epochs of 4 batches) is
trained twice in this process: with the live teacher on ``SeededViewDataset`` views, and from a
cache of all classes in fp32 written beforehand, without building the teacher. Then: the check
mode, the start-up checks of the hook, and an exact resume from a mid-epoch checkpoint.
"""
from pathlib import Path
from typing import Dict, List

import pytest
import torch
from mmengine.hooks import Hook
from mmengine.runner import Runner

from mmscalekd.models.teachers import BaseTeacher
from mmscalekd.teacher_cache import TeacherCacheError
from mmscalekd.teacher_cache.writer import derive_cache, write_teacher_cache
from tests.test_teacher_cache.cache_helpers import live_config, make_data, tiny_config


class _Record(Hook):
    """Keeps every training iteration's logged outputs (losses and check values)."""

    priority = 'LOWEST'

    def __init__(self) -> None:
        self.steps: List[Dict[str, float]] = []

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None) -> None:
        self.steps.append({k: float(v.detach()) for k, v in outputs.items()})


def _train(cfg, work_dir: Path, **overrides) -> tuple:
    cfg = type(cfg)(cfg.to_dict())
    cfg.work_dir = str(work_dir)
    for key, value in overrides.items():  # top-level keys are replaced, dotted ones merged
        if '.' in key:
            cfg.merge_from_dict({key: value})
        else:
            cfg[key] = value
    runner = Runner.from_cfg(cfg)
    record = _Record()
    runner.register_hook(record)
    runner.train()
    return runner, record.steps


@pytest.fixture(scope='module')
def setup(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp('replay')
    data = make_data(root)
    cache = root / 'cache'
    cfg = tiny_config(data, cache)
    write_teacher_cache(cfg, epochs=2, topk=None, dtype='float32', shard_size=12)
    live_runner, live_steps = _train(live_config(cfg), root / 'live')
    return dict(root=root, data=data, cache=cache, cfg=cfg, live_runner=live_runner,
                live_steps=live_steps)


def _student_state(runner) -> Dict[str, torch.Tensor]:
    return {k: v for k, v in runner.model.state_dict().items() if k.startswith('student.')}


def test_cached_run_equals_the_live_teacher_run_step_for_step(setup: dict, tmp_path: Path,
                                                              monkeypatch) -> None:
    built = []
    original = BaseTeacher.__init__

    def counting(self, *args, **kwargs):
        built.append(type(self).__name__)
        original(self, *args, **kwargs)

    monkeypatch.setattr(BaseTeacher, '__init__', counting)
    runner, steps = _train(setup['cfg'], tmp_path / 'cached')
    # the teacher was neither built nor run
    assert built == [] and runner.model.teacher is None
    assert not any(isinstance(m, BaseTeacher) for m in runner.model.modules())
    assert not any(k.startswith('teacher.') for k in runner.model.state_dict())
    live = setup['live_steps']
    assert len(steps) == len(live) == 8
    for i, (a, b) in enumerate(zip(steps, live)):
        for key in ('loss', 'distill.loss_kd', 'student.loss'):
            assert abs(a[key] - b[key]) <= 1e-6, (i, key, a[key], b[key])
    assert steps[-1]['loss'] != steps[0]['loss']  # it trained
    live_state, cached_state = _student_state(setup['live_runner']), _student_state(runner)
    assert live_state.keys() == cached_state.keys()
    for key in live_state:
        torch.testing.assert_close(cached_state[key], live_state[key], rtol=0, atol=1e-6,
                                   msg=key)


def test_check_mode_logs_the_deviation_of_cache_and_teacher(setup: dict, tmp_path: Path) -> None:
    opts = {'model.teacher_cache.check_interval': 3}
    runner, steps = _train(setup['cfg'], tmp_path / 'check', **opts)
    assert runner.model.teacher is not None  # built for the checks only
    checked = [i for i, s in enumerate(steps) if 'cache.check_max_abs_dp' in s]
    assert checked == [0, 3, 6]  # every 3rd batch: a fraction of 1/3
    for i in checked:
        assert steps[i]['cache.check_max_abs_dp'] <= 1e-6  # fp32, all classes: the same
        assert steps[i]['cache.check_top1_agree'] == 1.0
    # an fp16 top-3 cache: measurably off, within the fp16 + truncation budget
    small = tmp_path / 'top3'
    derive_cache(setup['cfg'], str(setup['cache']), out_dir=str(small), topk=3)
    cfg = tiny_config(setup['data'], small)
    _, steps = _train(cfg, tmp_path / 'check3', **opts)
    devs = [s['cache.check_max_abs_dp'] for s in steps if 'cache.check_max_abs_dp' in s]
    assert len(devs) == 3 and all(0 < d < 0.5 for d in devs)
    assert all(s['cache.check_kl'] >= 0 for s in steps if 'cache.check_kl' in s)
    with pytest.raises(TeacherCacheError, match='check_tolerance'):
        _train(cfg, tmp_path / 'check_fail', **opts,
               **{'model.teacher_cache.check_tolerance': 1e-9})


def test_resume_from_a_mid_epoch_checkpoint_is_exact(setup: dict, tmp_path: Path) -> None:
    full, _ = _train(setup['cfg'], tmp_path / 'full')
    ckpt = tmp_path / 'full' / 'iter_3.pth'  # epoch 0, batch 3 of 4
    assert ckpt.is_file()
    resumed, steps = _train(setup['cfg'], tmp_path / 'resumed', resume=True, load_from=str(ckpt))
    assert len(steps) == 5  # iterations 4..8
    a, b = _student_state(full), _student_state(resumed)
    for key in a:
        assert torch.equal(a[key], b[key]), key


def test_a_run_longer_than_the_cache_fails_before_the_first_step(setup: dict,
                                                                 tmp_path: Path) -> None:
    with pytest.raises(TeacherCacheError,
                       match=r'holds 2 epoch\(s\).*needs 3.*--epochs 3.*max_epochs=3'):
        _train(setup['cfg'], tmp_path / 'e3', **{'train_cfg.max_epochs': 3})
    iters = {'train_cfg': dict(type='ResumableIterBasedTrainLoop', max_iters=9)}
    with pytest.raises(TeacherCacheError, match=r'needs 3.*max_iters=9 at 4 batches per epoch'):
        _train(setup['cfg'], tmp_path / 'i9', **iters)
    # a cycling dataset replays epoch e % 2
    _, steps = _train(setup['cfg'], tmp_path / 'cyc', **iters,
                      **{'train_dataloader.dataset.cycle': True})
    assert len(steps) == 9


def test_missing_hook_and_wrong_sampler_are_refused(setup: dict, tmp_path: Path) -> None:
    with pytest.raises(TeacherCacheError, match=r"custom_hooks = \[dict\(type='TeacherCacheHook"):
        _train(setup['cfg'], tmp_path / 'nohook', custom_hooks=[])
    with pytest.raises(TeacherCacheError, match='EpochTaggedSampler'):
        _train(setup['cfg'], tmp_path / 'sampler',
               **{'train_dataloader.sampler': dict(type='DefaultSampler', shuffle=True)})


def test_another_teacher_is_refused_when_the_model_is_built(setup: dict) -> None:
    from mmscalekd.registry import MODELS
    cfg = tiny_config(setup['data'], setup['cache'], {'model.teacher.tpp_blocks': 2})
    with pytest.raises(TeacherCacheError, match=r'teacher config.*tpp_blocks: 1 vs 2'):
        MODELS.build(cfg.model)
    cfg = tiny_config(setup['data'], setup['cache'],
                      {'model.data_preprocessor.mean': [0.0]})
    with pytest.raises(TeacherCacheError, match=r'data preprocessor.*mean\[0\]'):
        MODELS.build(cfg.model)


@pytest.mark.parametrize('extra, error, match', [
    ({'model.teacher_cache.check_interval': -1}, ValueError, 'check_interval'),
    ({'model.teacher_cache.check_tolerance': 0.1}, ValueError, 'needs check_interval'),
    ({'model.teacher_cache.cache': 'x'}, ValueError, 'cache_dir required'),
    ({'model.distill_stages': [dict(name='s3')]}, ValueError, 'logits only'),
    ({'model.teacher_train_mode': True}, ValueError, 'stochastic'),
    ({'model.data_preprocessor.batch_augments': dict(augments=dict(type='Mixup', alpha=1.0))},
     ValueError, 'mix=dict'),
])
def test_bad_teacher_cache_settings_are_refused(setup: dict, extra: dict, error,
                                                match: str) -> None:
    from mmscalekd.registry import MODELS
    cfg = tiny_config(setup['data'], setup['cache'], extra)
    with pytest.raises(error, match=match):
        MODELS.build(cfg.model)
