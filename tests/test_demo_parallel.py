"""Demo runs in worker processes: the numbers do not depend on --jobs; failures name the run."""
import io
import os.path as osp
from dataclasses import asdict

import pytest
import torch

from mmscalekd.datasets import load_image_set
from mmscalekd.demo.configs import TEACHER_CONFIG, DataFacts, load_config, run_cost
from mmscalekd.demo.parallel import Progress, TaskFailed, run_tasks
from mmscalekd.demo.runs import Task
from mmscalekd.registry import MODELS
from tests._builders import write_fake_fashion_mnist


def _tasks(tmp_path, name):
    root = str(tmp_path / 'data')
    if not osp.isdir(root):
        write_fake_fashion_mnist(root, 'train', 120, seed=0)
        write_fake_fashion_mnist(root, 'test', 30, seed=1)
    image_set = load_image_set(root, 28, 1)
    mean, std = image_set.pixel_stats()
    facts = DataFacts(image_set.root, image_set.num_classes, tuple(mean), tuple(std), 120, 30)
    teacher = str(tmp_path / 'teacher.pth')
    if not osp.isfile(teacher):  # a random teacher is enough to compare two executions
        torch.manual_seed(0)
        model = MODELS.build(load_config(TEACHER_CONFIG).model)
        torch.save(dict(state_dict=model.state_dict(), meta={}), teacher)
    common = dict(data=asdict(facts), val_size=30, curve_size=20, iters=3, labels=20, pool=100,
                  teacher_ckpt=teacher, log_level='WARNING', seed=0)
    return [Task(kind='student', name=f'{m}_{s}', method=m, student=s,
                 work_dir=str(tmp_path / name / f'{m}_{s}'), cost=run_cost(m, s, 3, 110),
                 **common)
            for m, s in (('scalekd', 'cnn'), ('labels', 'mlp'))]


@pytest.mark.slow
def test_parallel_runs_give_the_numbers_of_sequential_runs(tmp_path) -> None:
    sequential = run_tasks(_tasks(tmp_path, 'seq'), jobs=1)
    events = []
    parallel = run_tasks(_tasks(tmp_path, 'par'), jobs=2,
                         on_event=lambda kind, i, payload: events.append((kind, i)))
    for a, b in zip(sequential, parallel):
        assert (a['method'], a['student']) == (b['method'], b['student'])
        assert a['losses'] and len(a['losses']) == 3  # every step's loss, bitwise equal
        assert a['losses'] == b['losses']
        assert a['top1'] == b['top1'] and a['curve'] == b['curve']
        assert osp.isfile(b['log']) and b['log'].startswith(str(tmp_path / 'par'))
    assert sequential[0]['losses'] != sequential[1]['losses']  # two different runs
    assert ('start', 0) in events and ('done', 1) in events
    assert any(kind == 'progress' for kind, _ in events)


@pytest.mark.slow
def test_a_failing_run_stops_the_demo_and_names_its_log(tmp_path) -> None:
    bad = Task(kind='student', name='labels_broken', method='labels', student='cnn',
               work_dir=str(tmp_path / 'broken'), cost=1.0, val_size=10, curve_size=10,
               data=dict(data_root=str(tmp_path / 'no_such_data'), num_classes=10, mean=(0.0, ),
                         std=(1.0, ), num_train=10, num_test=10), labels=10, pool=10)
    with pytest.raises(TaskFailed) as err:
        run_tasks([bad], jobs=1)
    assert 'labels_broken failed' in str(err.value) and bad.log in str(err.value)
    assert 'no_such_data' in open(bad.log).read()  # the traceback is in the run's log


def test_progress_line_weighs_runs_by_cost_and_estimates_the_rest() -> None:
    tasks = [Task(kind='student', name=n, work_dir='w', data={}, val_size=1, curve_size=1,
                  cost=c) for n, c in (('a', 30.0), ('b', 10.0))]
    out = io.StringIO()
    progress = Progress(tasks, stream=out, every_s=0.0)
    progress('start', 0, None)
    progress('start', 1, None)
    progress('progress', 0, (50, 100))  # half of a's training: 0.9 * 0.5 of 30 of 40
    assert progress.share == pytest.approx(0.45 * 30 / 40)
    progress.start -= 15.0  # 15 s elapsed, 10 s of them since the first run started
    progress.first_start -= 10.0
    assert progress.eta_s() == pytest.approx(10.0 * (1 - 0.3375) / 0.3375, rel=0.02)
    progress('done', 1, {})
    line = out.getvalue().strip().splitlines()[-1]
    assert line.startswith('[demo] 1/2 runs done, 1 running |') and 'ETA' in line
    with pytest.raises(ValueError, match='jobs must be a positive int'):
        run_tasks(tasks, jobs=0)
