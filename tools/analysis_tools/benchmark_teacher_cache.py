"""Step time of logit distillation with a teacher cache vs the live teacher, in one process.

For each config (a ``teacher_cache`` config, e.g. ``configs/teacher_cache/*.py``):

1. writes its teacher cache into a temporary folder with ``write_teacher_cache`` (one epoch,
   ``--topk``, ``--dtype``) and times it: **write throughput** (samples/s, teacher + views +
   files) and **bytes per sample per epoch** (manifest);
2. builds two Runners from the config: the cached one and its live-teacher twin (the same
   ``SeededViewDataset`` views, no ``teacher_cache``, so the teacher is built and run);
3. times their real training steps (``next(dataloader)`` + ``model.train_step``, optimizer
   included) **interleaved** in ABBA order, after ``--warmup`` untimed steps each, so that load
   from other processes on a shared machine falls on both alike. It reports the median wall and
   process-CPU time per step and the ratio cached / live.

Shrink the data with ``--cfg-options`` (applied to every config), e.g. the demo's pool:

    python tools/analysis_tools/benchmark_teacher_cache.py \\
        configs/teacher_cache/kd-cached_resnet18-w8_fashion-mnist-2k.py \\
        configs/teacher_cache/ssld-cached_resnet18-w8_fashion-mnist-2k.py \\
        --steps 40 --cfg-options train_dataloader.dataset.dataset.unlabeled.indices=4096 \\
        --out work_dirs/benchmark_teacher_cache.json
"""
# isort: off
import os.path as _osp
import sys as _sys

_sys.path.insert(0, _osp.dirname(_osp.dirname(_osp.dirname(_osp.abspath(__file__)))))
# isort: on
import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from typing import Dict, Iterator, List, Optional  # noqa: E402

import torch  # noqa: E402
from mmengine.config import Config, DictAction  # noqa: E402
from mmengine.runner import Runner  # noqa: E402

from mmscalekd.engine.hooks import TeacherCacheHook  # noqa: E402
from mmscalekd.teacher_cache.writer import live_config, write_teacher_cache  # noqa: E402
from mmscalekd.utils import register_all_modules  # noqa: E402


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description='Benchmark teacher-cache replay vs live teacher')
    p.add_argument('configs', nargs='+', help='teacher_cache configs')
    p.add_argument('--steps', type=int, default=40, help='timed steps per mode (default 40)')
    p.add_argument('--warmup', type=int, default=5, help='untimed steps per mode (default 5)')
    p.add_argument('--topk', type=int, default=10, help='classes kept (default 10)')
    p.add_argument('--dtype', default='float16', choices=('float16', 'float32'))
    p.add_argument('--threads', type=int, default=None, help='torch CPU threads')
    p.add_argument('--work-dir', default=None, help='for caches and runner logs (default: a '
                   'temporary folder, removed afterwards)')
    p.add_argument('--cfg-options', nargs='+', action=DictAction,
                   help='overrides applied to every config')
    p.add_argument('--out', default=None, help='write the results as JSON here')
    args = p.parse_args(argv)
    for name in ('steps', 'warmup', 'topk'):
        if getattr(args, name) < (1 if name != 'warmup' else 0):
            p.error(f'--{name} must be positive, got {getattr(args, name)}')
    return args


def _endless(runner: Runner) -> Iterator:
    loader = runner.train_dataloader
    epoch = 0
    while True:
        if hasattr(loader.sampler, 'set_epoch'):
            loader.sampler.set_epoch(epoch)
        yield from loader
        epoch += 1


def _prepare(cfg: Config, work_dir: str, cached: bool):
    cfg = Config(cfg.to_dict())
    cfg.work_dir = work_dir
    cfg.val_cfg = cfg.val_dataloader = cfg.val_evaluator = None
    cfg.test_cfg = cfg.test_dataloader = cfg.test_evaluator = None
    cfg.randomness = dict(seed=0)
    cfg.log_level = 'WARNING'
    runner = Runner.from_cfg(cfg)
    if cached:
        TeacherCacheHook().before_train(runner)
    optim = runner.build_optim_wrapper(cfg.optim_wrapper)
    runner.model.train()
    return runner, optim, _endless(runner)


def _step(runner: Runner, optim, data_iter) -> Dict[str, float]:
    w0, c0 = time.perf_counter(), time.process_time()
    data = next(data_iter)
    w1 = time.perf_counter()
    runner.model.train_step(data, optim)
    return dict(wall=time.perf_counter() - w0, cpu=time.process_time() - c0, data=w1 - w0)


def bench_config(path: str, args: argparse.Namespace, work_dir: str) -> dict:
    name = _osp.splitext(_osp.basename(path))[0]
    cfg = Config.fromfile(path)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    cache_dir = _osp.join(work_dir, name, 'cache')
    cfg.train_dataloader.dataset.cache_dir = cache_dir
    cfg.model.teacher_cache.cache_dir = cache_dir
    cfg.train_dataloader.dataset.cycle = True  # the timed steps may go past one epoch
    w0, c0 = time.perf_counter(), time.process_time()
    result = write_teacher_cache(cfg, epochs=1, topk=args.topk, dtype=args.dtype)
    write_wall, write_cpu = time.perf_counter() - w0, time.process_time() - c0
    manifest = result.manifest

    modes = {'live': _prepare(live_config(cfg), _osp.join(work_dir, name, 'live'), False),
             'cached': _prepare(cfg, _osp.join(work_dir, name, 'cached'), True)}
    for mode in modes.values():
        for _ in range(args.warmup):
            _step(*mode)
    times: Dict[str, List[Dict[str, float]]] = {'live': [], 'cached': []}
    for i in range(args.steps):
        order = ('live', 'cached') if i % 2 == 0 else ('cached', 'live')  # ABBA
        for key in order:
            times[key].append(_step(*modes[key]))
    out = dict(config=path, dataset_length=manifest.dataset_length,
               num_classes=manifest.num_classes, topk=manifest.topk, dtype=manifest.dtype,
               bytes_per_sample_epoch=manifest.record_bytes,
               write=dict(samples=result.samples_written, wall_s=round(write_wall, 2),
                          cpu_s=round(write_cpu, 2),
                          samples_per_s=round(result.samples_written / write_wall, 1)),
               batch_size=cfg.train_dataloader.batch_size, steps=args.steps)
    for key, runs in times.items():
        out[key] = {f'{m}_ms': round(1e3 * statistics.median(r[m] for r in runs), 2)
                    for m in ('wall', 'cpu', 'data')}
    out['ratio_wall'] = round(out['cached']['wall_ms'] / out['live']['wall_ms'], 3)
    out['ratio_cpu'] = round(out['cached']['cpu_ms'] / out['live']['cpu_ms'], 3)
    teacher = modes['live'][0].model.teacher
    out['teacher_params'] = sum(p.numel() for p in teacher.parameters())
    out['student_params'] = sum(p.numel() for p in modes['cached'][0].model.student.parameters())
    out['cached_model_has_teacher'] = modes['cached'][0].model.teacher is not None
    return out


def main(argv: Optional[List[str]] = None) -> dict:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    register_all_modules()
    tmp = None
    work_dir = args.work_dir
    if work_dir is None:
        tmp = tempfile.TemporaryDirectory(prefix='bench_teacher_cache_')
        work_dir = tmp.name
    try:
        results = [bench_config(p, args, work_dir) for p in args.configs]
    finally:
        if tmp is not None:
            tmp.cleanup()
    report = dict(results=results, torch_threads=torch.get_num_threads(),
                  machine=platform.processor() or platform.machine(), cpus=os.cpu_count(),
                  torch=torch.__version__)
    for r in results:
        print(f"{_osp.basename(r['config'])}: step live {r['live']['wall_ms']:.1f} ms, cached "
              f"{r['cached']['wall_ms']:.1f} ms (wall ratio {r['ratio_wall']:.3f}, CPU ratio "
              f"{r['ratio_cpu']:.3f}); cache {r['bytes_per_sample_epoch']} B/sample/epoch; "
              f"write {r['write']['samples_per_s']:.0f} samples/s")
    if args.out:
        os.makedirs(_osp.dirname(_osp.abspath(args.out)), exist_ok=True)
        with open(args.out, 'w') as f:
            json.dump(report, f, indent=1)
    return report


if __name__ == '__main__':
    main()
