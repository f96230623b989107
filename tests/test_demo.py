"""The main job (tools/demo.py): options checked against the data, configs, orchestration, and
end-to-end runs in the --quick form."""
import json
import os
import os.path as osp
import subprocess
import sys

import numpy as np
import pytest
import torch

from mmscalekd.demo import configs as C
from mmscalekd.demo import pipeline as P
from mmscalekd.demo.teacher import TeacherMismatchError, plateau_check, teacher_meta
from tests._builders import write_fake_fashion_mnist

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
DEMO = osp.join(ROOT, 'tools', 'demo.py')
FMNIST = osp.join(ROOT, 'data', 'fashion_mnist', 't10k-images-idx3-ubyte')
DEBIAN = '/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz'

needs_data = pytest.mark.skipif(
    not (osp.isfile(FMNIST) or osp.isfile(DEBIAN)),
    reason='Fashion-MNIST is installed by tools/setup.sh (apt: dataset-fashion-mnist)')


def _load_demo():
    import importlib.util
    spec = importlib.util.spec_from_file_location('mmscalekd_demo_cli', DEMO)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture()
def fake_root(tmp_path):
    root = str(tmp_path / 'fake')
    write_fake_fashion_mnist(root, 'train', 2100, seed=0)
    write_fake_fashion_mnist(root, 'test', 40, seed=1)
    return root


# ------------------------------------------------------------------------------------ options
@pytest.mark.parametrize('args,message', [
    (['--labels', '0'], '--labels must be positive'),
    (['--labels', '500', '--pool', '100'], 'need --labels <= --pool'),
    (['--val-size', '500', '--curve-size', '600'], '--curve-size must be <= --val-size (500)'),
    (['--curve-size', '0'], '--curve-size must be positive'),
    (['--seeds', '0'], '--seeds must be positive'),
    (['--jobs', '0'], '--jobs must be positive'),
    (['--seed', '-1'], '--seed must be >= 0'),
    (['--methods', 'distill'], 'invalid choice'),
])
def test_demo_rejects_bad_options(args, message, capsys) -> None:
    demo = _load_demo()
    with pytest.raises(SystemExit) as exc:
        demo.parse_args(args)
    assert exc.value.code == 2
    assert message in capsys.readouterr().err


def test_cli_choices_are_the_library_ones_and_the_data_root_has_help() -> None:
    demo = _load_demo()
    assert demo.STUDENTS == tuple(C.STUDENTS) and demo.METHODS == C.METHODS
    help_text = ' '.join(demo.build_parser().format_help().split())
    assert 'IDX files' in help_text and 'folder of images per class' in help_text
    args = demo.parse_args(['--data-root', 'rel/dir'])
    assert args.data_root == osp.abspath('rel/dir')  # relative to where the user is


def test_defaults_follow_the_data() -> None:
    full = P.resolve(P.DemoSetting(), 60000, 10000, 10, 'fmnist')
    assert (full.labels, full.pool, full.val_size, full.curve_size, full.iters, full.seeds) == \
        (2000, 60000, 10000, 1000, None, P.DEFAULT_SEEDS)
    quick = P.resolve(P.DemoSetting(quick=True), 60000, 10000, 10, 'fmnist')
    assert (quick.labels, quick.pool, quick.val_size, quick.curve_size, quick.iters,
            quick.seeds) == (100, 400, 200, 200, 6, 1)
    small = P.resolve(P.DemoSetting(), 1400, 350, 5, 'small')
    assert (small.labels, small.pool, small.val_size, small.curve_size) == (140, 1400, 350, 350)


@pytest.mark.parametrize('kwargs,message', [
    (dict(pool=70000), "--pool 70000 exceeds the 60000 training images of 'fmnist'"),
    (dict(labels=5000, pool=3000), 'need --labels <= --pool'),
    (dict(labels=5), '--labels 5 is fewer than the 10 classes'),
    (dict(val_size=20000), "--val-size 20000 exceeds the 10000 test images of 'fmnist'"),
    (dict(val_size=300, curve_size=500), '--curve-size must be <= --val-size (300)'),
    (dict(methods=('labels', 'hinton')), "unknown --methods ['hinton']"),
])
def test_bounds_come_from_the_data(kwargs, message) -> None:
    with pytest.raises(P.DemoOptionError) as err:
        P.resolve(P.DemoSetting(**kwargs), 60000, 10000, 10, "'fmnist'")
    assert message in str(err.value)


# ------------------------------------------------------------------------------------ configs
def test_run_configs_point_at_the_data_with_stratified_subsets(fake_root) -> None:
    from mmscalekd.datasets import load_image_set
    from mmscalekd.datasets.data_root import follow_data_root
    from mmscalekd.registry import DATASETS
    s = load_image_set(fake_root, 28, 1)
    facts = C.DataFacts(s.root, 10, (10.0, ), (20.0, ), 2100, 40)
    kd = C.student_run_config('kd', 'cnn', facts, labels=500, pool=2000, val_size=30,
                              curve_size=20, iters=50, seed=3, teacher_ckpt='t.pth',
                              work_dir='w')
    follow_data_root(kd)
    ds = kd.train_dataloader.dataset
    assert (ds.labeled.subset, ds.unlabeled.subset) == ((2000, 500), (2000, ))
    built = DATASETS.build(ds)  # 2000 // 500: about half of every batch labeled
    assert (built.labeled_repeat, built.num_labeled, built.num_unlabeled) == (4, 2000, 2000)
    counts = np.bincount(s.train.labels[built.labeled.source_indices], minlength=10)
    expected = np.bincount(s.train.labels[built.unlabeled.source_indices], minlength=10) / 4
    assert np.all(np.abs(counts - expected) < 1)  # per class, inside the pool
    assert set(built.labeled.source_indices) <= set(built.unlabeled.source_indices)
    assert kd.val_dataloader.dataset.subset == (30, 20)  # curves: a subset of the table's
    assert kd.test_dataloader.dataset.subset == (30, )
    assert kd.model.data_preprocessor.mean == [10.0] and kd.model.teacher.checkpoint == 't.pth'
    assert (kd.train_cfg.max_iters, kd.train_cfg.val_interval, kd.randomness.seed) == (50, 10, 3)
    labels = C.student_run_config('labels', 'mlp', facts, labels=500, pool=2100, val_size=40,
                                  curve_size=40, iters=None, seed=0, teacher_ckpt=None,
                                  work_dir='w')
    assert labels.train_dataloader.dataset.subset == (None, 500)  # the whole split as pool
    assert labels.test_dataloader.dataset.subset == ()  # the whole test split
    ssld = C.student_run_config('ssld', 'cnn', facts, labels=500, pool=2000, val_size=30,
                                curve_size=20, iters=None, seed=0, teacher_ckpt='t.pth',
                                work_dir='w')
    ds = ssld.train_dataloader.dataset
    assert (ds.labeled_repeat, ds.keep_labels) == (1, False)


def test_a_shortened_demo_config_trains_on_another_data_root(fake_root, tmp_path) -> None:
    """`tools/train.py CONFIG --cfg-options data_root=DIR train_cfg.max_iters=6` works: every
    dataset follows data_root, the schedule follows max_iters."""
    import importlib.util
    spec = importlib.util.spec_from_file_location('mmscalekd_train', osp.join(ROOT, 'tools',
                                                                             'train.py'))
    train = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(train)
    from mmengine.runner import Runner
    built = {}
    original = Runner.train

    def keep(self):
        built['runner'] = self
        return original(self)

    Runner.train = keep
    try:
        train.main(['configs/demo/labels_resnet18-w8_fashion-mnist-2k.py', '--work-dir',
                    str(tmp_path / 'w'), '--cfg-options', f'data_root={fake_root}',
                    'train_cfg.max_iters=6', 'train_cfg.val_interval=6'])
    finally:
        Runner.train = original
    runner = built['runner']
    assert runner.iter == 6
    assert runner.train_dataloader.dataset.data_root == fake_root
    assert runner.val_dataloader.dataset.data_root == fake_root
    assert len(runner.val_dataloader.dataset) == 40  # the fake test split, not Fashion-MNIST's
    lr = runner.optim_wrapper.get_lr()['lr'][0]
    assert lr == pytest.approx(1e-5, rel=0.05)  # the one-cycle schedule ended at step 6


# ------------------------------------------------------------------------------- orchestration
class FakeRuns:
    """Stands in for the worker processes: records the tasks, returns made-up results."""

    def __init__(self):
        self.calls = []

    def __call__(self, tasks, jobs, threads=1, on_event=None):
        self.calls.append([t.kind for t in tasks])
        out = []
        for i, task in enumerate(tasks):
            if task.kind == 'teacher_train':
                history = [[task.iters // 2, 50.0], [task.iters, 70.0]]
                recipe = dict(train_images=100, plateau=plateau_check(history, task.iters))
                os.makedirs(osp.dirname(task.teacher_ckpt), exist_ok=True)
                torch.save(dict(state_dict={}, meta=teacher_meta(task.fingerprint, [1.0], [1.0],
                                                                 recipe)), task.teacher_ckpt)
                result = dict(checkpoint=task.teacher_ckpt, recipe=recipe, log=task.log)
            elif task.kind == 'teacher_eval':
                result = dict(top1=60.0, params=800000, checkpoint=task.teacher_ckpt)
            else:
                top1 = 50.0 + 2 * C.METHODS.index(task.method) + task.seed
                result = dict(student=task.student, method=task.method, seed=task.seed,
                              top1=top1, params=1000, wall_s=1.0, cpu_s=1.0, iters=6,
                              curve=[[3, top1 - 1], [6, top1]], losses=[], config={},
                              log=task.log)
            if on_event:
                on_event('done', i, result)
            out.append(result)
        return out


def test_labels_only_needs_no_teacher(fake_root, tmp_path, monkeypatch) -> None:
    fake = FakeRuns()
    monkeypatch.setattr(P, 'run_tasks', fake)
    monkeypatch.setattr(P, 'plan_teacher', lambda *a, **k: pytest.fail('no teacher needed'))
    work = str(tmp_path / 'work')
    results = P.run_demo(P.DemoSetting(work_dir=work, data_root=fake_root, methods=('labels', ),
                                       quick=True), stream=open(os.devnull, 'w'))
    assert fake.calls == [['student', 'student']] and results['teacher'] is None
    assert not osp.exists(osp.join(work, 'teachers'))


def test_a_teacher_is_trained_for_new_data_then_reused_and_seeds_give_spread(
        fake_root, tmp_path, monkeypatch, capsys) -> None:
    fake = FakeRuns()
    monkeypatch.setattr(P, 'run_tasks', fake)
    work = str(tmp_path / 'work')
    setting = P.DemoSetting(work_dir=work, data_root=fake_root, methods=('labels', 'kd'),
                            students=('cnn', ), quick=True, seeds=2)
    results = P.run_demo(setting)
    out = capsys.readouterr().out
    assert fake.calls[0] == ['teacher_train']  # first, alone
    assert sorted(fake.calls[1]) == ['student'] * 4 + ['teacher_eval']
    assert 'training the teacher (no teacher for this data yet)' in out
    assert 'still improving' in ' '.join(results['warnings'])  # +20 points at the end
    assert 'does not clearly beat' not in ' '.join(results['warnings'])  # 60 vs 50/51
    cells = {c['method']: c for c in results['cells']}
    assert cells['labels']['std'] == pytest.approx(0.707, abs=1e-3)  # 50, 51
    kd = next(c for c in results['comparisons'] if c['method'] == 'kd')
    assert kd['differences'] == [2.0, 2.0] and kd['within_spread'] is False
    table = open(osp.join(work, 'results.md')).read()
    assert '50.50 ± 0.71' in table and 'seeds 0, 1' in table
    assert json.load(open(osp.join(work, 'results.json')))['setting']['seeds'] == [0, 1]
    # Again: the trained teacher is reused, the first results are kept aside.
    fake.calls.clear()
    P.run_demo(setting)
    out = capsys.readouterr().out
    assert len(fake.calls) == 1 and 'teacher_train' not in fake.calls[0]
    assert 'teacher: ' in out and '(trained on this data)' in out
    assert 'kept the previous results: moved to' in out
    assert len(os.listdir(osp.join(work, 'previous'))) == 1


def test_a_teacher_of_other_data_is_refused_before_any_run(fake_root, tmp_path,
                                                           monkeypatch) -> None:
    fake = FakeRuns()
    monkeypatch.setattr(P, 'run_tasks', fake)
    other = tmp_path / 'other.pth'
    torch.save(dict(state_dict={}, meta=dict(data_fingerprint=dict(
        sha256='0' * 64, num_train=60000, num_classes=10, image_shape=[1, 28, 28],
        format='idx', name='fashion_mnist'))), str(other))
    with pytest.raises(TeacherMismatchError, match="trained on 'fashion_mnist'.*'fake'"):
        P.run_demo(P.DemoSetting(work_dir=str(tmp_path / 'w'), data_root=fake_root,
                                 teacher_ckpt=str(other), quick=True),
                   stream=open(os.devnull, 'w'))
    assert fake.calls == []


# ---------------------------------------------------------------------------------- end to end
@pytest.mark.slow
@needs_data
def test_quick_demo_with_two_seeds_writes_mean_and_std(tmp_path) -> None:
    work_dir = tmp_path / 'demo'
    proc = subprocess.run(
        [sys.executable, DEMO, '--quick', '--seeds', '2', '--work-dir', str(work_dir)],
        cwd=ROOT, capture_output=True, text=True, timeout=1800)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    results = json.loads((work_dir / 'results.json').read_text())
    runs = {(r['student'], r['method'], r['seed']): r for r in results['runs']}
    assert set(runs) == {(s, m, seed) for s in ('cnn', 'mlp') for m in C.METHODS
                         for seed in (0, 1)}
    assert results['teacher']['trained_now'] is False  # the committed one fits Fashion-MNIST
    assert results['teacher']['checkpoint'] == osp.join(ROOT, C.TEACHER_CKPT)
    assert 0.0 <= results['teacher']['top1'] <= 100.0
    for run in runs.values():
        assert 0.0 <= run['top1'] <= 100.0 and run['iters'] == 6 and run['curve']
        steps = [step for step, _ in run['curve']]
        assert steps[0] > 0 and steps[-1] == 6  # logged by iteration, not by epoch
        assert osp.isfile(run['log'])  # one log per run
    assert runs[('cnn', 'scalekd', 0)]['params'] == runs[('cnn', 'labels', 0)]['params']
    assert all(c['std'] is not None and c['seeds'] == [0, 1] for c in results['cells'])
    table = (work_dir / 'results.md').read_text()
    assert table.count(' ± ') >= 8 and 'seeds 0, 1' in table and 'spread' in table
    png = (work_dir / 'accuracy_curves.png').read_bytes()
    assert png[:8] == b'\x89PNG\r\n\x1a\n' and len(png) > 5000
    assert 'done in' in proc.stdout and 'ETA' in proc.stdout


@pytest.mark.slow
def test_cli_refuses_the_fashion_mnist_teacher_for_other_data(fake_root, tmp_path) -> None:
    proc = subprocess.run(
        [sys.executable, DEMO, '--quick', '--data-root', fake_root, '--methods', 'kd',
         '--teacher-ckpt', C.TEACHER_CKPT, '--work-dir', str(tmp_path / 'w')],
        cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 2, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "trained on 'fashion_mnist'" in proc.stderr and "the data is 'fake'" in proc.stderr
    assert '--retrain-teacher' in proc.stderr
    assert not osp.exists(tmp_path / 'w' / 'runs')


@pytest.mark.slow
def test_benchmark_tool_feeds_the_demo_configs_one_channel(tmp_path) -> None:
    """The step benchmark builds its random batch with the config's channel count (1 here)."""
    import importlib.util
    spec = importlib.util.spec_from_file_location(
        'benchmark_distill', osp.join(ROOT, 'tools', 'analysis_tools', 'benchmark_distill.py'))
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    out = tmp_path / 'bench.json'
    tool.main([osp.join(ROOT, 'configs', 'demo', 'scalekd_resnet18-w8_fashion-mnist-2k.py'),
               '--batch-size', '2', '--iters', '1', '--warmup', '0', '--out', str(out)])
    result = json.loads(out.read_text())
    assert result['input_size'] == [28, 28] and result['step']['median_s'] > 0
