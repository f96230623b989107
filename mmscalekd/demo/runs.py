"""One unit of demo work (a student run, the teacher's evaluation or training), run in a worker.

A :class:`Task` is plain data, so it can be sent to another process; :func:`execute` builds the
config, runs MMEngine's Runner (``DataRootRunner``) and returns a JSON-able result.
"""
from __future__ import annotations

import os
import os.path as osp
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Optional

from mmengine.hooks import Hook

from .configs import (
    TEACHER_CONFIG,
    DataFacts,
    apply_data,
    config_summary,
    load_config,
    set_iters,
    student_run_config,
)
from .teacher import history_from_scalars, plateau_check, teacher_meta

Report = Callable[[int, int], None]


@dataclass(frozen=True)
class Task:
    """What a worker runs.

    Attributes:
        kind (str): ``'student'``, ``'teacher_eval'`` or ``'teacher_train'``.
        name (str): Unique, readable name (``'scalekd_resnet18-w8_seed0'``).
        work_dir (str): The Runner's work dir; the task's log is ``work_dir/run.log``.
        data (dict): :class:`DataFacts` as a dict.
        val_size (int): Test images of the final evaluation.
        curve_size (int): Test images of the evaluations during training.
        cost (float): Estimated CPU seconds (ordering, ETA).
        method (str, optional): Student runs: the method.
        student (str, optional): Student runs: the student.
        seed (int): ``randomness.seed``.
        iters (int, optional): Training steps (None: the config's).
        labels (int, optional): Labeled images.
        pool (int, optional): Pool size.
        teacher_ckpt (str, optional): Teacher checkpoint (to use, or to write).
        holdout (int, optional): Teacher training: held-out images.
        fingerprint (dict): Teacher training: the data fingerprint for the checkpoint's meta.
        log_level (str): MMEngine log level.
    """
    kind: str
    name: str
    work_dir: str
    data: Dict[str, Any]
    val_size: int
    curve_size: int
    cost: float
    method: Optional[str] = None
    student: Optional[str] = None
    seed: int = 0
    iters: Optional[int] = None
    labels: Optional[int] = None
    pool: Optional[int] = None
    teacher_ckpt: Optional[str] = None
    holdout: Optional[int] = None
    fingerprint: Dict[str, Any] = field(default_factory=dict)
    log_level: str = 'INFO'

    @property
    def log(self) -> str:
        return osp.join(self.work_dir, 'run.log')


class DemoProgressHook(Hook):
    """Reports ``(iteration, max_iters)`` after training iterations (at most every ``every_s``)."""

    priority = 'LOWEST'

    def __init__(self, report: Report, every_s: float = 0.5) -> None:
        self.report = report
        self.every_s = every_s
        self._last = 0.0

    def after_train_iter(self, runner: Any, batch_idx: int, data_batch: Any = None,
                         outputs: Any = None) -> None:
        now = time.monotonic()
        if now - self._last >= self.every_s or runner.iter + 1 == runner.max_iters:
            self._last = now
            self.report(runner.iter + 1, runner.max_iters)


def _build_runner(cfg: Any, task: Task, report: Optional[Report]) -> Any:
    from mmscalekd.registry import RUNNERS
    cfg.log_level = task.log_level
    cfg.experiment_name = f'{task.name}_{os.getpid()}_{time.time_ns()}'  # unique per process
    runner = RUNNERS.build(cfg) if 'runner_type' in cfg else _plain_runner(cfg)
    if report is not None:
        runner.register_hook(DemoProgressHook(report), priority='LOWEST')
    return runner


def _plain_runner(cfg: Any) -> Any:
    from mmengine.runner import Runner
    return Runner.from_cfg(cfg)


def _num_params(module: Any) -> int:
    return sum(p.numel() for p in module.parameters())


def _teacher_config(task: Task) -> Any:
    from mmscalekd.utils import adapt_cfg_to_device
    cfg = load_config(TEACHER_CONFIG)
    apply_data(cfg, DataFacts(**task.data), None, None, task.val_size, task.curve_size)
    cfg.randomness.seed = task.seed
    cfg.work_dir = task.work_dir
    return adapt_cfg_to_device(cfg)


def _run_student(task: Task, report: Optional[Report]) -> Dict[str, Any]:
    cfg = student_run_config(task.method, task.student, DataFacts(**task.data),
                             labels=task.labels, pool=task.pool, val_size=task.val_size,
                             curve_size=task.curve_size, iters=task.iters, seed=task.seed,
                             teacher_ckpt=task.teacher_ckpt, work_dir=task.work_dir)
    start, cpu = time.perf_counter(), time.process_time()
    runner = _build_runner(cfg, task, report)
    runner.train()
    metrics = runner.test()  # the student on the test images (predict delegates to it)
    model = getattr(runner.model, 'module', runner.model)
    student = getattr(model, 'student', model)
    scalars = osp.join(runner.log_dir, 'vis_data', 'scalars.json')
    return dict(student=task.student, method=task.method, seed=task.seed,
                top1=float(metrics['accuracy/top1']), params=_num_params(student),
                wall_s=round(time.perf_counter() - start, 1),
                cpu_s=round(time.process_time() - cpu, 1), iters=cfg.train_cfg.max_iters,
                curve=history_from_scalars(scalars), losses=history_from_scalars(scalars, 'loss'),
                config=config_summary(cfg), log=task.log)


def _eval_teacher(task: Task, report: Optional[Report]) -> Dict[str, Any]:
    cfg = _teacher_config(task)
    cfg.load_from = task.teacher_ckpt
    # Testing only: no training parts (EarlyStoppingHook would build the train loop and data).
    for key in ('train_dataloader', 'train_cfg', 'optim_wrapper', 'param_scheduler',
                'val_dataloader', 'val_cfg', 'val_evaluator'):
        cfg[key] = None
    cfg.custom_hooks = []
    start = time.perf_counter()
    runner = _build_runner(cfg, task, None)
    metrics = runner.test()
    return dict(top1=float(metrics['accuracy/top1']), params=_num_params(runner.model),
                checkpoint=task.teacher_ckpt, wall_s=round(time.perf_counter() - start, 1),
                log=task.log)


def _train_teacher(task: Task, report: Optional[Report]) -> Dict[str, Any]:
    import torch

    from mmscalekd.utils import load_checkpoint_file

    from .outputs import atomic_torch_save
    cfg = _teacher_config(task)
    for key in ('train_dataloader', 'val_dataloader'):
        cfg[key].dataset.subset = (task.holdout, )
    set_iters(cfg, task.iters, evaluations=20)
    cfg.train_cfg.val_interval = max(1, task.iters // 20)
    start = time.perf_counter()
    runner = _build_runner(cfg, task, report)
    runner.train()
    best = runner.message_hub.get_info('best_ckpt')
    if not best or not osp.isfile(best):
        raise RuntimeError(f'teacher training in {task.work_dir} saved no best checkpoint')
    state = load_checkpoint_file(best, map_location='cpu')['state_dict']
    history = history_from_scalars(osp.join(runner.log_dir, 'vis_data', 'scalars.json'))
    num_train = len(runner.train_dataloader.dataset)
    recipe = dict(config=TEACHER_CONFIG, max_iters=task.iters, holdout=task.holdout,
                  train_images=num_train, batch_size=cfg.train_dataloader.batch_size,
                  seed=task.seed, heldout_curve=history,
                  plateau=plateau_check(history, task.iters),
                  best_checkpoint=osp.basename(best),
                  wall_s=round(time.perf_counter() - start, 1),
                  threads=torch.get_num_threads())
    data = DataFacts(**task.data)
    meta = teacher_meta(task.fingerprint, data.mean, data.std, recipe)
    atomic_torch_save(dict(state_dict={k: v.detach().clone() for k, v in state.items()},
                           meta=meta), task.teacher_ckpt)
    return dict(checkpoint=task.teacher_ckpt, recipe=recipe, log=task.log)


_KINDS = {'student': _run_student, 'teacher_eval': _eval_teacher, 'teacher_train': _train_teacher}


def execute(task: Task, report: Optional[Report] = None) -> Dict[str, Any]:
    """Run ``task`` in this process and return its result (JSON-able).

    Args:
        task (Task): What to run.
        report (Callable, optional): Called with ``(iteration, max_iters)`` while training.

    Returns:
        dict: Student runs: ``student, method, seed, top1, params, wall_s, cpu_s, iters,
        curve, config, log``; teacher evaluation: ``top1, params, checkpoint, wall_s, log``;
        teacher training: ``checkpoint, recipe, log``.
    """
    if task.kind not in _KINDS:
        raise ValueError(f'unknown task kind {task.kind!r}; one of {sorted(_KINDS)}')
    os.makedirs(task.work_dir, exist_ok=True)
    return _KINDS[task.kind](task, report)
