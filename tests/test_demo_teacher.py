"""The demo's teacher: data fingerprint check, step budget, held-out slice, plateau check."""
import os.path as osp

import pytest
import torch

from mmscalekd.datasets import load_image_set
from mmscalekd.demo import teacher as T
from tests._builders import write_fake_fashion_mnist

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))


@pytest.fixture()
def fake_set(tmp_path):
    root = str(tmp_path / 'fake')
    write_fake_fashion_mnist(root, 'train', 40, seed=0)
    write_fake_fashion_mnist(root, 'test', 10, seed=1)
    return load_image_set(root)


def _save_teacher(path, fingerprint=None):
    meta = {} if fingerprint is None else T.teacher_meta(
        fingerprint, [1.0], [2.0], dict(train_images=38, plateau=dict(steps=20,
                                                                       stopped='budget')))
    torch.save(dict(state_dict={'w': torch.zeros(1)}, meta=meta), path)
    return path


def test_step_budget_grows_with_the_pool_within_bounds() -> None:
    # 132 steps (12 epochs of ~1,400 images) gave a 73 % teacher; the budget gives 1,000+.
    assert T.teacher_step_budget(1400) == 1094  # ceil(100 * 1400 / 128)
    assert T.teacher_step_budget(500) == T.BUDGET_MIN_STEPS
    assert T.teacher_step_budget(58000) == T.BUDGET_MAX_STEPS
    with pytest.raises(ValueError, match='num_images >= 1'):
        T.teacher_step_budget(0)


def test_holdout_size() -> None:
    assert T.teacher_holdout_size(60000, 10) == 2000  # capped
    assert T.teacher_holdout_size(1400, 10) == 140  # 10 %
    assert T.teacher_holdout_size(200, 10) == 50  # 5 per class
    with pytest.raises(ValueError, match='too few'):
        T.teacher_holdout_size(55, 10)


@pytest.mark.parametrize('history,budget,expected', [
    # still rising steeply when the budget ends (the 132-step teacher): warn
    ([[25, 40.0], [50, 55.0], [75, 62.0], [100, 73.0]], 100,
     dict(stopped='budget', best_step=100, last_gain=11.0, still_improving=True)),
    # flat at the end of the budget: fine
    ([[25, 80.0], [50, 88.0], [75, 89.5], [100, 89.9]], 100,
     dict(stopped='budget', best_step=100, last_gain=0.4, still_improving=False)),
    # the 6000-step Fashion-MNIST teacher: +1.2 in the last quarter (the cosine's annealing),
    # +0.35 in the last 15 %: flattened, fine
    ([[s, a] for s, a in zip(range(300, 6001, 300), [
        76.8, 80.2, 82.6, 84.9, 85.6, 86.45, 84.75, 87.5, 87.35, 87.95, 87.05, 89.15, 87.95,
        88.9, 89.2, 90.05, 89.85, 90.4, 90.25, 90.35])], 6000,
     dict(stopped='budget', best_step=5400, last_gain=0.35, still_improving=False)),
    # early stop at a plateau: fine, the best is earlier
    ([[10, 80.0], [20, 85.0], [30, 84.9], [40, 85.0], [50, 84.8]], 100,
     dict(stopped='plateau', best_step=20, still_improving=False)),
])
def test_plateau_check(history, budget, expected) -> None:
    check = T.plateau_check(history, budget)
    for key, value in expected.items():
        assert check[key] == value, (key, check)


def test_fingerprint_mismatch_names_both_data_sets(fake_set, tmp_path) -> None:
    other = dict(fake_set.fingerprint(), sha256='0' * 64, name='fashion_mnist', num_train=60000)
    reason = T.fingerprint_mismatch(dict(data_fingerprint=other), fake_set.fingerprint())
    assert "trained on 'fashion_mnist'" in reason and '60000 training images' in reason
    assert "the data is 'fake'" in reason and '40 training images' in reason
    assert T.fingerprint_mismatch({}, fake_set.fingerprint()).startswith('its meta has no')
    assert T.fingerprint_mismatch(dict(data_fingerprint=fake_set.fingerprint()),
                                  fake_set.fingerprint()) is None


def test_plan_refuses_a_teacher_of_other_data_and_offers_to_retrain(fake_set, tmp_path) -> None:
    other = dict(fake_set.fingerprint(), sha256='f' * 64, name='fashion_mnist')
    path = _save_teacher(str(tmp_path / 'teacher.pth'), other)
    with pytest.raises(T.TeacherMismatchError) as err:
        T.plan_teacher(fake_set.fingerprint(), str(tmp_path / 'work'), path, retrain=False)
    text = str(err.value)
    assert path in text and "'fashion_mnist'" in text and "'fake'" in text
    assert '--retrain-teacher' in text and 'drop --teacher-ckpt' in text
    plan = T.plan_teacher(fake_set.fingerprint(), str(tmp_path / 'work'), path, retrain=True)
    assert plan == T.TeacherPlan(path, True, '--retrain-teacher')
    missing = str(tmp_path / 'new.pth')
    assert T.plan_teacher(fake_set.fingerprint(), 'w', missing, False).train
    good = _save_teacher(str(tmp_path / 'good.pth'), fake_set.fingerprint())
    assert not T.plan_teacher(fake_set.fingerprint(), 'w', good, False).train


def test_auto_plan_uses_a_matching_committed_teacher_else_one_per_data(fake_set, tmp_path,
                                                                       monkeypatch) -> None:
    monkeypatch.setattr(T, 'ROOT', str(tmp_path))
    committed = tmp_path / T.TEACHER_CKPT
    committed.parent.mkdir(parents=True)
    work = str(tmp_path / 'work')
    _save_teacher(str(committed), dict(fake_set.fingerprint(), sha256='1' * 64))
    plan = T.plan_teacher(fake_set.fingerprint(), work, None, retrain=False)
    assert plan.train and plan.path == T.auto_teacher_path(work, fake_set.fingerprint())
    assert plan.path.startswith(osp.join(work, 'teachers', 'vit-teacher_fake-'))
    _save_teacher(str(committed), fake_set.fingerprint())
    plan = T.plan_teacher(fake_set.fingerprint(), work, None, retrain=False)
    assert plan == T.TeacherPlan(str(committed), False, f'{T.TEACHER_CKPT} (trained on this '
                                 'data)')
    # --retrain-teacher never overwrites the committed file unless it is named explicitly
    assert T.plan_teacher(fake_set.fingerprint(), work, None, retrain=True).path != \
        str(committed)


def test_committed_teacher_fits_fashion_mnist() -> None:
    """The committed teacher carries the fingerprint of the Fashion-MNIST training split."""
    meta = T.read_teacher_meta(osp.join(ROOT, T.TEACHER_CKPT))
    fp = meta['data_fingerprint']
    assert (fp['num_train'], fp['num_classes'], fp['image_shape']) == (60000, 10, [1, 28, 28])
    assert len(fp['sha256']) == 64 and meta['mean'] == [72.94] and meta['std'] == [90.02]
    fmnist = osp.join(ROOT, 'data', 'fashion_mnist')
    if osp.isfile(osp.join(fmnist, 'train-images-idx3-ubyte')):
        assert T.fingerprint_mismatch(meta, load_image_set(fmnist, 28, 1).fingerprint()) is None


def test_weak_teacher_warning() -> None:
    assert T.weak_teacher_warning(89.6, [('ResNet', 80.0), ('Mixer', 81.0)]) is None
    text = T.weak_teacher_warning(73.0, [('ResNet', 91.0), ('Mixer', 85.0)])
    assert '73.00 %' in text and 'ResNet (91.00 %' in text and '--retrain-teacher' in text
    assert T.weak_teacher_warning(50.0, []) is None  # no labels-only run to compare with


@pytest.mark.slow
def test_teacher_training_writes_weights_fingerprint_and_recipe(fake_set, tmp_path) -> None:
    """The real teacher training (in this process): best held-out checkpoint + meta."""
    from dataclasses import asdict

    from mmscalekd.demo.configs import DataFacts
    from mmscalekd.demo.runs import Task, execute
    mean, std = fake_set.pixel_stats()
    data = asdict(DataFacts(fake_set.root, 10, tuple(mean), tuple(std), 40, 10))
    path = str(tmp_path / 'teachers' / 'teacher.pth')
    common = dict(data=data, val_size=10, curve_size=10, cost=1.0, log_level='WARNING')
    out = execute(Task(kind='teacher_train', name='t', work_dir=str(tmp_path / 'train'),
                       iters=4, holdout=10, teacher_ckpt=path,
                       fingerprint=fake_set.fingerprint(), **common))
    meta = T.read_teacher_meta(path)
    assert T.fingerprint_mismatch(meta, fake_set.fingerprint()) is None
    recipe = meta['recipe']
    assert (recipe['max_iters'], recipe['holdout'], recipe['train_images']) == (4, 10, 30)
    assert [s for s, _ in recipe['heldout_curve']] == [1, 2, 3, 4]  # every max_iters / 20 >= 1
    assert recipe['plateau']['stopped'] == 'budget' and out['checkpoint'] == path
    assert meta['mean'] == mean and meta['std'] == std
    evaluated = execute(Task(kind='teacher_eval', name='e', work_dir=str(tmp_path / 'eval'),
                             teacher_ckpt=path, **common))
    assert 0.0 <= evaluated['top1'] <= 100.0 and evaluated['params'] > 700000
