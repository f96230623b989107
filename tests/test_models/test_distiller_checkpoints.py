"""Distiller checkpoints without the teacher: teacher.* left out when the teacher reloads its
own weights, the teacher record (checkpoint, sha256) in meta and checked before loading (also
through a Runner), older checkpoints and random teachers as before."""
import hashlib
from pathlib import Path

import pytest
import torch
from mmengine.config import Config
from mmengine.model import ExponentialMovingAverage
from mmengine.runner.checkpoint import load_state_dict as mmengine_load_state_dict

from mmscalekd.models.distillers import TeacherMismatchError
from mmscalekd.models.distillers.teacher_record import check_teacher
from mmscalekd.registry import MODELS

ROOT = Path(__file__).resolve().parents[2]
CFG = ROOT / 'tests/data/configs/tiny_resume_scalekd.py'


def _teacher_file(path: Path, seed: int) -> Path:
    torch.manual_seed(seed)
    teacher = MODELS.build(Config.fromfile(str(CFG)).model.teacher.model)
    torch.save({'state_dict': teacher.state_dict()}, path)
    return path


def _distiller(checkpoint):
    cfg = Config.fromfile(str(CFG)).model
    cfg.teacher.checkpoint = None if checkpoint is None else str(checkpoint)
    if checkpoint is None:
        cfg.teacher.allow_random_teacher = True  # random weights on purpose
    return MODELS.build(cfg)


@pytest.fixture(scope='module')
def teachers(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp('teachers')
    return dict(a=_teacher_file(root / 'a.pth', 0), b=_teacher_file(root / 'b.pth', 1))


def test_state_dict_leaves_the_reloaded_teacher_out_and_records_it(teachers) -> None:
    model = _distiller(teachers['a'])
    state = model.state_dict()
    assert not [k for k in state if k.startswith('teacher.')]
    assert not [k for k in state._metadata if k.startswith('teacher')]
    full = {k for k, _ in model.named_parameters()} | {k for k, _ in model.named_buffers()}
    assert {k for k in full if not k.startswith('teacher.')} <= set(state)
    assert all(isinstance(v, torch.Tensor) for v in state.values())  # tensors only
    record = model.checkpoint_meta()['teacher']
    assert record['checkpoint'] == str(teachers['a']) and record['reloaded'] is True
    assert record['sha256'] == hashlib.sha256(teachers['a'].read_bytes()).hexdigest()


def test_teacher_free_state_dict_loads_strictly_and_keeps_the_built_teacher(teachers) -> None:
    trained = _distiller(teachers['a'])
    with torch.no_grad():
        for p in trained.connectors.parameters():
            p.add_(1.0)
    state = trained.state_dict()
    fresh = _distiller(teachers['a'])
    teacher_before = {k: v.clone() for k, v in fresh.teacher.state_dict().items()}
    result = fresh.load_state_dict(state, strict=True)  # nothing missing, nothing unexpected
    assert not result.missing_keys and not result.unexpected_keys
    for key, value in trained.connectors.state_dict().items():
        assert torch.equal(fresh.connectors.state_dict()[key], value), key
    for key, value in fresh.teacher.state_dict().items():
        assert torch.equal(value, teacher_before[key]), key
    # MMEngine's own loader (Runner.resume / load_checkpoint) reports nothing missing either.
    mmengine_load_state_dict(_distiller(teachers['a']), state, strict=True)


def test_another_teacher_file_fails_with_both_named(teachers) -> None:
    meta = _distiller(teachers['a']).checkpoint_meta()
    _distiller(teachers['a']).check_checkpoint_meta(meta)  # the same teacher passes
    with pytest.raises(TeacherMismatchError, match=r'Other teacher weights.*a\.pth.*b\.pth'):
        _distiller(teachers['b']).check_checkpoint_meta(meta)
    with pytest.raises(TeacherMismatchError, match='extract_student.py'):
        _distiller(teachers['b']).check_checkpoint_meta(meta)
    with pytest.raises(TeacherMismatchError, match='weight source'):
        _distiller(None).check_checkpoint_meta(meta)  # random teacher
    _distiller(teachers['b']).check_checkpoint_meta({})  # no record (e.g. CheckpointHook)


def test_the_same_file_elsewhere_is_accepted(teachers, tmp_path) -> None:
    meta = _distiller(teachers['a']).checkpoint_meta()
    moved = tmp_path / 'moved.pth'
    moved.write_bytes(teachers['a'].read_bytes())
    _distiller(moved).check_checkpoint_meta(meta)  # same sha256: accepted


def test_safe_checkpoint_hook_writes_the_record_and_checks_it_before_loading(
        teachers, tmp_path) -> None:
    from mmengine.runner import Runner
    from mmpretrain.structures import DataSample

    images = [dict(inputs=torch.randint(0, 256, (3, 64, 64), dtype=torch.uint8),
                   data_samples=DataSample().set_gt_label(i % 2)) for i in range(4)]

    def cfg(teacher: Path, **kwargs) -> dict:
        model = Config.fromfile(str(CFG)).model
        model.teacher.checkpoint = str(teacher)
        return dict(model=model, work_dir=str(tmp_path / 'work'),
                    train_dataloader=dict(dataset=images, batch_size=4, num_workers=0,
                                          sampler=dict(type='DefaultSampler', shuffle=False),
                                          collate_fn=dict(type='default_collate')),
                    train_cfg=dict(by_epoch=False, max_iters=1),
                    optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.01)),
                    default_hooks=dict(checkpoint=dict(type='SafeCheckpointHook', interval=1,
                                                       by_epoch=False)),
                    default_scope='mmscalekd', log_level='ERROR',
                    env_cfg=dict(dist_cfg=dict(backend='gloo')), **kwargs)

    Runner(**cfg(teachers['a'])).train()
    ckpt = torch.load(tmp_path / 'work' / 'iter_1.pth', weights_only=False)
    assert ckpt['meta']['teacher']['sha256'] == hashlib.sha256(
        teachers['a'].read_bytes()).hexdigest()
    assert not [k for k in ckpt['state_dict'] if k.startswith('teacher.')]
    runner = Runner(**cfg(teachers['b'], load_from=str(tmp_path / 'work' / 'iter_1.pth')))
    with pytest.raises(TeacherMismatchError, match='Other teacher weights'):
        runner.load_or_resume()


def test_random_teacher_stays_in_the_state_dict_and_older_checkpoints_load() -> None:
    model = _distiller(None)
    state = model.state_dict()
    assert [k for k in state if k.startswith('teacher.')]
    assert model.checkpoint_meta()['teacher']['reloaded'] is False
    fresh = _distiller(None)
    fresh.load_state_dict(state, strict=True)  # as every checkpoint before
    for key, value in model.teacher.state_dict().items():
        assert torch.equal(fresh.teacher.state_dict()[key], value), key


def test_ema_copy_saves_and_loads_without_the_teacher(teachers) -> None:
    ema = ExponentialMovingAverage(_distiller(teachers['a']), momentum=0.1)
    state = ema.state_dict()
    assert not [k for k in state if k.startswith('module.teacher.')]
    fresh = ExponentialMovingAverage(_distiller(teachers['a']), momentum=0.1)
    fresh.load_state_dict(state, strict=True)


def test_check_teacher_cases() -> None:
    rec = dict(type='T', model_name=None, checkpoint='a.pth', source='a.pth',
               sha256='1' * 64, reloaded=True)
    timm = dict(type='T', model_name='m', checkpoint=None, sha256=None, reloaded=True,
                source="timm pretrained weights of 'm.tag1'")
    assert check_teacher(None, rec) is None  # older checkpoint: teacher weights inside
    assert check_teacher(dict(rec, reloaded=False), rec) is None
    assert check_teacher(rec, dict(rec, checkpoint='b.pth')) is None  # same hash
    assert 'Cannot verify' in check_teacher(rec, dict(rec, checkpoint='b.pth', sha256=None))
    with pytest.raises(TeacherMismatchError, match='Another teacher'):
        check_teacher(rec, dict(rec, type='U'))
    with pytest.raises(TeacherMismatchError, match='Other teacher weights'):
        check_teacher(rec, dict(rec, sha256='2' * 64))
    assert check_teacher(timm, dict(timm)) is None
    with pytest.raises(TeacherMismatchError, match='weight source'):
        check_teacher(timm, dict(timm, source="timm pretrained weights of 'm.tag2'"))
