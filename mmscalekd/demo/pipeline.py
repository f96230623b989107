"""The main job: distil a small ViT teacher into CNN and MLP students, every method and seed.

:func:`run_demo` checks the options against the data, chooses (or trains) a teacher tied to the
data, runs every (student, method, seed) in parallel worker processes, and writes the table,
the JSON record and the accuracy curves. ``tools/demo.py`` is its command line.
"""
from __future__ import annotations

import gzip
import os
import os.path as osp
import shutil
import sys
import time
from dataclasses import asdict, dataclass, replace
from typing import Any, Dict, List, Optional, Sequence, TextIO

from mmscalekd.utils.atomic_io import replace_atomically

from .configs import (
    EVAL_COST_MS,
    METHOD_NAMES,
    ROOT,
    STUDENT_NAMES,
    STUDENTS,
    TEACHER_CONFIG,
    DataFacts,
    load_config,
    run_cost,
)
from .outputs import keep_or_replace_outputs, remove_stale_temporaries
from .parallel import Progress, run_tasks
from .results import aggregate, format_table, write_results
from .runs import Task
from .teacher import (
    LAST_SHARE,
    QUICK_STEPS,
    plan_teacher,
    read_teacher_meta,
    teacher_holdout_size,
    teacher_step_budget,
    teacher_summary,
    weak_teacher_warning,
)

DEFAULT_DATA_ROOT = osp.join(ROOT, 'data', 'fashion_mnist')
DEFAULT_WORK_DIR = osp.join(ROOT, 'work_dirs', 'demo')
DEBIAN_FMNIST = '/usr/share/datasets/fashion-mnist'
FMNIST_FILES = ('train-images-idx3-ubyte', 'train-labels-idx1-ubyte', 't10k-images-idx3-ubyte',
                't10k-labels-idx1-ubyte')
BASE_CONFIG = 'configs/demo/_base_/fashion-mnist_label-scarce.py'
#: Seeds of the default demo (``--seeds``): the fewest that give a spread; the 10-minute budget
#: goes to steps (see the base config). See the README for the cost.
DEFAULT_SEEDS = 2
#: Labels by default: 2,000, or a tenth of the training images when that is fewer.
DEFAULT_LABELS = 2000
#: Test images of the curves (evaluations during training) by default.
DEFAULT_CURVE_SIZE = 1000
#: ``--quick``: (labels, pool, test images, steps).
QUICK = dict(labels=100, pool=400, val_size=200, iters=6)


class DemoOptionError(ValueError):
    """An option does not fit the data (the message names the option, the bound, the fix)."""


@dataclass
class DemoSetting:
    """The demo's options (``tools/demo.py``'s arguments). None: a default from the data."""
    work_dir: str = DEFAULT_WORK_DIR
    data_root: str = DEFAULT_DATA_ROOT
    students: Sequence[str] = ('cnn', 'mlp')
    methods: Sequence[str] = ('labels', 'kd', 'scalekd', 'ssld')
    labels: Optional[int] = None
    pool: Optional[int] = None
    iters: Optional[int] = None
    val_size: Optional[int] = None
    curve_size: Optional[int] = None
    seeds: Optional[int] = None
    seed: int = 0
    jobs: Optional[int] = None
    quick: bool = False
    teacher_ckpt: Optional[str] = None
    retrain_teacher: bool = False
    teacher_iters: Optional[int] = None
    force: bool = False


def ensure_data(data_root: str) -> None:
    """For the default data root, unpack Fashion-MNIST from the Debian package when absent."""
    if osp.abspath(data_root) != osp.abspath(DEFAULT_DATA_ROOT):
        return
    missing = [f for f in FMNIST_FILES if not osp.isfile(osp.join(data_root, f))]
    if not missing:
        return
    if not all(osp.isfile(osp.join(DEBIAN_FMNIST, f + '.gz')) for f in missing):
        raise DemoOptionError(
            f'Fashion-MNIST is missing from {data_root!r} ({", ".join(missing)}) and the Debian '
            f'package files are not in {DEBIAN_FMNIST}. Run `bash tools/setup.sh` (it installs '
            '`dataset-fashion-mnist`), put the uncompressed IDX files there, or give another '
            'image set with --data-root.')
    os.makedirs(data_root, exist_ok=True)
    for name in missing:
        with gzip.open(osp.join(DEBIAN_FMNIST, name + '.gz'), 'rb') as src:
            replace_atomically(osp.join(data_root, name),
                               lambda dst, src=src: shutil.copyfileobj(src, dst))


def _positive(name: str, value: Optional[int]) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        raise DemoOptionError(f'--{name} must be a positive integer, got {value!r}')


def check_static(setting: DemoSetting) -> None:
    """The checks that need no data (run before anything is imported or read)."""
    for name in ('labels', 'pool', 'iters', 'val_size', 'curve_size', 'seeds', 'jobs',
                 'teacher_iters'):
        _positive(name.replace('_', '-'), getattr(setting, name))
    if isinstance(setting.seed, bool) or not isinstance(setting.seed, int) or setting.seed < 0:
        raise DemoOptionError(f'--seed must be a non-negative integer, got {setting.seed!r}')
    if setting.labels is not None and setting.pool is not None and setting.labels > setting.pool:
        raise DemoOptionError(f'need --labels <= --pool (the labeled images are drawn from the '
                              f'pool), got {setting.labels} and {setting.pool}')
    if setting.curve_size is not None and setting.val_size is not None and \
            setting.curve_size > setting.val_size:
        raise DemoOptionError(f'--curve-size must be <= --val-size ({setting.val_size}), '
                              f'got {setting.curve_size}')
    unknown = [s for s in setting.students if s not in STUDENTS]
    if unknown:
        raise DemoOptionError(f'unknown --students {unknown}; choose from {sorted(STUDENTS)}')
    unknown = [m for m in setting.methods if m not in METHOD_NAMES]
    if unknown:
        raise DemoOptionError(f'unknown --methods {unknown}; choose from {list(METHOD_NAMES)}')
    if setting.teacher_ckpt is not None and not setting.teacher_ckpt:
        raise DemoOptionError('--teacher-ckpt must be a file path')


def resolve(setting: DemoSetting, num_train: int, num_test: int, num_classes: int,
            data_name: str) -> DemoSetting:
    """Fill the defaults from the data and check every bound against it.

    Args:
        setting (DemoSetting): The options.
        num_train, num_test, num_classes (int): The data's sizes.
        data_name (str): For messages.

    Returns:
        DemoSetting: A copy without None sizes.

    Raises:
        DemoOptionError: A size exceeds what the data holds (the message names both).
    """
    check_static(setting)
    quick = setting.quick
    pool = setting.pool if setting.pool is not None else (
        min(QUICK['pool'], num_train) if quick else num_train)
    if pool > num_train:
        raise DemoOptionError(f'--pool {pool} exceeds the {num_train} training images of '
                              f'{data_name}; give at most {num_train}')
    labels = setting.labels if setting.labels is not None else min(
        QUICK['labels'] if quick else DEFAULT_LABELS, max(num_classes, num_train // 10), pool)
    if labels > pool:
        raise DemoOptionError(f'--labels {labels} exceeds the pool of {pool} images (the labeled '
                              'images are drawn from it); lower --labels or raise --pool')
    if labels < num_classes:
        raise DemoOptionError(f'--labels {labels} is fewer than the {num_classes} classes of '
                              f'{data_name}: the labeled subset needs one image per class')
    val_size = setting.val_size if setting.val_size is not None else (
        min(QUICK['val_size'], num_test) if quick else num_test)
    if val_size > num_test:
        raise DemoOptionError(f'--val-size {val_size} exceeds the {num_test} test images of '
                              f'{data_name}; give at most {num_test}')
    curve_size = setting.curve_size if setting.curve_size is not None else min(
        DEFAULT_CURVE_SIZE, val_size)
    if curve_size > val_size:
        raise DemoOptionError(f'--curve-size {curve_size} must be <= --val-size ({val_size})')
    iters = setting.iters if setting.iters is not None else (QUICK['iters'] if quick else None)
    seeds = setting.seeds if setting.seeds is not None else (1 if quick else DEFAULT_SEEDS)
    jobs = setting.jobs if setting.jobs is not None else max(1, os.cpu_count() or 1)
    return replace(setting, pool=pool, labels=labels, val_size=val_size, curve_size=curve_size,
                   iters=iters, seeds=seeds, jobs=jobs)


def _n(count: int, noun: str, plural: str = '') -> str:
    return f'{count} {noun if count == 1 else plural or noun + "s"}'


def _short(path: str) -> str:
    rel = osp.relpath(path)
    return path if rel.startswith('..') else rel


def run_demo(setting: DemoSetting, stream: Optional[TextIO] = None) -> Dict[str, Any]:
    """Run the demo and write ``results.{json,md}`` and ``accuracy_curves.png``.

    Args:
        setting (DemoSetting): The options.
        stream (TextIO, optional): Where progress goes. Defaults to ``sys.stdout``.

    Returns:
        dict: The results (as written to ``results.json``).
    """
    from mmscalekd.datasets.image_set import load_image_set
    stream = stream or sys.stdout

    def say(text: str) -> None:
        print(f'[demo] {text}', file=stream, flush=True)

    check_static(setting)
    start = time.perf_counter()
    ensure_data(setting.data_root)
    base = load_config(BASE_CONFIG)
    try:
        image_set = load_image_set(setting.data_root, img_size=base.img_size,
                                   channels=base.in_channels)
    except (FileNotFoundError, ValueError) as err:
        raise DemoOptionError(f'--data-root {setting.data_root}: {err}') from err
    fingerprint = image_set.fingerprint()
    s = resolve(setting, len(image_set.train), len(image_set.test), image_set.num_classes,
                repr(fingerprint['name']))
    mean, std = image_set.pixel_stats()
    facts = DataFacts(image_set.root, image_set.num_classes, tuple(mean), tuple(std),
                      len(image_set.train), len(image_set.test))
    warnings: List[str] = []
    say(f'data: {image_set.describe()}, {len(image_set.test)} test images; pixel mean {mean}, '
        f'std {std}')
    if image_set.converted:
        note = (f'the images were converted on load ({image_set.converted}) to the configs\' '
                f'{base.in_channels} channel(s) at {base.img_size}x{base.img_size} '
                f'(img_size and in_channels in {BASE_CONFIG})')
        say(note)
        warnings.append(note)
    if image_set.skipped:
        warnings.append(f'{len(image_set.skipped)} unreadable image(s) were skipped, e.g. '
                        f'{image_set.skipped[0]}')

    os.makedirs(s.work_dir, exist_ok=True)
    for path in remove_stale_temporaries(s.work_dir, recursive=True):
        say(f'removed {_short(path)}, left by a killed write')
    moved = keep_or_replace_outputs(s.work_dir, replace=s.force)
    if moved:
        say(f'kept the previous results: moved to {_short(moved)} (--force replaces them '
            'instead)')

    needs_teacher = any(m != 'labels' for m in s.methods)
    teacher: Optional[Dict[str, Any]] = None
    tasks: List[Task] = []
    common = dict(data=asdict(facts), val_size=s.val_size, curve_size=s.curve_size,
                  log_level='WARNING' if s.quick else 'INFO')
    if needs_teacher:
        plan = plan_teacher(fingerprint, s.work_dir, s.teacher_ckpt, s.retrain_teacher)
        if plan.train:
            holdout = teacher_holdout_size(len(image_set.train), image_set.num_classes)
            budget = s.teacher_iters or (QUICK_STEPS if s.quick else teacher_step_budget(
                len(image_set.train) - holdout))
            say(f'training the teacher ({plan.reason}): {TEACHER_CONFIG}, {budget} steps at '
                f'most, {holdout} training images held out; -> {_short(plan.path)}')
            train_dir = osp.join(s.work_dir, 'teachers',
                                 osp.splitext(osp.basename(plan.path))[0] + '_train')
            task = Task(kind='teacher_train', name='teacher_train', work_dir=train_dir,
                        cost=float(budget), iters=budget, holdout=holdout,
                        teacher_ckpt=osp.abspath(plan.path), fingerprint=fingerprint, **common)
            progress = Progress([task], stream=stream, label='teacher trainings')
            trained = run_tasks([task], jobs=1, threads=s.jobs, on_event=progress)[0]
            progress.close()
            check = trained['recipe']['plateau']
            if check['best_top1'] is not None:
                say(f'teacher trained: best held-out top-1 {check["best_top1"]:.2f} % at step '
                    f'{check["best_step"]}; stopped: {check["stopped"]} after {check["steps"]} '
                    'steps')
            if check['still_improving']:
                warnings.append(
                    f'the teacher was still improving when its {budget}-step budget ended '
                    f'(+{check["last_gain"]:.2f} points on the held-out images in the last '
                    f'{100 * LAST_SHARE:.0f} % of the steps); train it longer: --retrain-teacher '
                    f'--teacher-iters {2 * budget}')
        else:
            say(f'teacher: {plan.reason}')
        meta = read_teacher_meta(plan.path)
        teacher = dict(checkpoint=osp.abspath(plan.path), trained_now=plan.train,
                       summary=teacher_summary(meta), recipe=meta.get('recipe', {}))
        tasks.append(Task(kind='teacher_eval', name='teacher_eval',
                          work_dir=osp.join(s.work_dir, 'runs', 'teacher_eval'),
                          cost=s.val_size * EVAL_COST_MS / 1000,
                          teacher_ckpt=teacher['checkpoint'],
                          **common))

    iters = s.iters or int(base.max_iters)
    seeds = list(range(s.seed, s.seed + s.seeds))
    for seed in seeds:
        for student in s.students:
            for method in s.methods:
                name = f'{method}_{STUDENTS[student]}'
                tasks.append(Task(
                    kind='student', name=f'{name}_seed{seed}',
                    work_dir=osp.join(s.work_dir, 'runs', f'seed{seed}', name), method=method,
                    student=student, seed=seed, iters=s.iters, labels=s.labels, pool=s.pool,
                    teacher_ckpt=teacher['checkpoint'] if teacher else None,
                    cost=run_cost(method, student, iters, 5 * s.curve_size + s.val_size),
                    **common))
    tasks.sort(key=lambda t: -t.cost)  # longest first: the workers finish together
    n_runs = sum(t.kind == 'student' for t in tasks)
    say(f'{_n(n_runs, "run")} ({_n(len(s.students), "student")} x '
        f'{_n(len(s.methods), "method")} x {_n(len(seeds), "seed")}), {iters} steps each'
        f'{", and the teacher evaluation" if teacher else ""}, in '
        f'{_n(min(s.jobs, len(tasks)), "parallel process", "parallel processes")} of 1 thread; '
        'logs: '
        f'{_short(osp.join(s.work_dir, "runs"))}/.../run.log')
    progress = Progress(tasks, stream=stream)

    def on_event(kind: str, index: int, payload: Any) -> None:
        task = tasks[index]
        if kind == 'done' and task.kind == 'student':
            progress.message(
                f'[demo] {METHOD_NAMES[task.method]} -> {STUDENT_NAMES[task.student]}, seed '
                f'{task.seed}: top-1 {payload["top1"]:.2f} % in {payload["wall_s"]:.0f} s')
        elif kind == 'done':
            progress.message(f'[demo] teacher: top-1 {payload["top1"]:.2f} % on {s.val_size} '
                             'test images')
        progress(kind, index, payload)

    try:
        outputs = run_tasks(tasks, jobs=s.jobs, threads=1, on_event=on_event)
    finally:
        progress.close()
    runs = [r for t, r in zip(tasks, outputs) if t.kind == 'student']
    runs.sort(key=lambda r: (r['seed'], list(STUDENTS).index(r['student']),
                             list(METHOD_NAMES).index(r['method'])))
    if teacher is not None:
        evaluated = next(r for t, r in zip(tasks, outputs) if t.kind == 'teacher_eval')
        teacher.update(top1=evaluated['top1'], params=evaluated['params'])
    summary = aggregate(runs)
    if teacher is not None:
        warning = weak_teacher_warning(teacher['top1'], [
            (STUDENT_NAMES[c['student']], c['mean']) for c in summary['cells']
            if c['method'] == 'labels'])
        if warning:
            warnings.append(warning)
    results = dict(
        setting=dict(
            data_root=image_set.root, data_name=fingerprint['name'], data=image_set.describe(),
            data_fingerprint=fingerprint, converted=image_set.converted,
            num_classes=image_set.num_classes, classes=list(image_set.classes),
            num_train=len(image_set.train), num_test=len(image_set.test), mean=mean, std=std,
            labels=s.labels, pool=s.pool, subset_seed=int(base.subset_seed),
            val_size=s.val_size, curve_size=s.curve_size, iters=iters, seeds=seeds,
            students=list(s.students), methods=list(s.methods), jobs=s.jobs,
            threads_per_run=1, quick=s.quick),
        teacher=teacher, runs=runs, cells=summary['cells'],
        comparisons=summary['comparisons'], warnings=warnings,
        wall_s=round(time.perf_counter() - start, 1))
    paths = write_results(results, s.work_dir)
    print('\n' + format_table(results), file=stream, flush=True)
    for warning in warnings:
        say(f'WARNING: {warning}')
    say(f'done in {results["wall_s"]:.0f} s. Table: {_short(paths["md"])}  JSON: '
        f'{_short(paths["json"])}  curves: {_short(paths["png"])}')
    return results
