"""Effect of the kept classes (top-k) of a teacher cache on a training run's accuracy.

From a cache of all classes in fp32 (``tools/write_teacher_cache.py CONFIG --topk all --dtype
float32``), derives the caches of each ``--topk`` in ``--dtype`` (no teacher run), trains the
config on each (and, with ``--live``, its live-teacher twin on the same views) one after the
other in this process, and reports the last validation top-1 and the wall time of each run,
and how far each cache's soft targets are from the source's (``compare_caches``: mean KL, max
|dp|, the mass outside the top-k), which does not depend on training noise.
The remaining probability mass of a top-k cache is spread uniformly over the other classes
(``docs/teacher_cache.md``); this measures what that costs.

    python tools/analysis_tools/teacher_cache_topk_sweep.py \\
        configs/teacher_cache/kd-cached_resnet18-w8_fashion-mnist-2k.py \\
        --source work_dirs/teacher_cache/kd_all-fp32 --topk 10 5 2 1 --live \\
        --work-dir work_dirs/cache_sweep/kd \\
        --cfg-options train_cfg.max_iters=300 train_cfg.val_interval=300
"""
# isort: off
import os.path as _osp
import sys as _sys

_sys.path.insert(0, _osp.dirname(_osp.dirname(_osp.dirname(_osp.abspath(__file__)))))
# isort: on
import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import time  # noqa: E402
from typing import List, Optional  # noqa: E402

from mmengine.config import Config, DictAction  # noqa: E402
from mmengine.runner import Runner  # noqa: E402

from mmscalekd.teacher_cache import load_manifest  # noqa: E402
from mmscalekd.teacher_cache.compare import compare_caches  # noqa: E402
from mmscalekd.teacher_cache.writer import derive_cache, live_config  # noqa: E402
from mmscalekd.utils import register_all_modules  # noqa: E402


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description='Accuracy of a cached run per kept top-k')
    p.add_argument('config', help='a teacher_cache config')
    p.add_argument('--source', required=True, help='its cache of all classes in float32')
    p.add_argument('--topk', type=int, nargs='+', required=True, help='k values to train')
    p.add_argument('--dtype', default='float16', choices=('float16', 'float32'))
    p.add_argument('--also-source', action='store_true',
                   help='also train on the source cache itself (all classes, float32)')
    p.add_argument('--live', action='store_true', help='also train the live-teacher twin')
    p.add_argument('--work-dir', required=True)
    p.add_argument('--targets-only', action='store_true',
                   help='only derive the caches and compare their targets (no training)')
    p.add_argument('--metric', default='accuracy/top1', help='validation metric to report')
    p.add_argument('--cfg-options', nargs='+', action=DictAction)
    args = p.parse_args(argv)
    if any(k < 1 for k in args.topk):
        p.error(f'--topk values must be >= 1, got {args.topk}')
    return args


def _train(cfg: Config, work_dir: str, metric: str) -> dict:
    cfg = Config(cfg.to_dict())
    cfg.work_dir = work_dir
    start = time.perf_counter()
    runner = Runner.from_cfg(cfg)
    runner.train()
    scalar = runner.message_hub.log_scalars.get(f'val/{metric}')  # RuntimeInfoHook puts it
    value = scalar.current() if scalar is not None else None
    return dict(metric=None if value is None else float(value),
                wall_s=round(time.perf_counter() - start, 1))


def main(argv: Optional[List[str]] = None) -> List[dict]:
    args = parse_args(argv)
    register_all_modules()
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    source = load_manifest(args.source)
    os.makedirs(args.work_dir, exist_ok=True)
    runs = []
    if args.live:
        runs.append(dict(name='live teacher', cfg=live_config(cfg)))
    caches = [(args.source, f'cache top-{source.topk} {source.dtype}')] if args.also_source \
        else []
    for k in args.topk:
        out = _osp.join(args.work_dir, f'cache_top{k}_{args.dtype}')
        derive_cache(cfg, args.source, out_dir=out, topk=k, dtype=args.dtype)
        caches.append((out, f'cache top-{k} {args.dtype}'))
    for path, name in caches:
        run = Config(cfg.to_dict())
        run.train_dataloader.dataset.cache_dir = path
        run.model.teacher_cache.cache_dir = path
        runs.append(dict(name=name, cfg=run, bytes=load_manifest(path).record_bytes,
                         targets=compare_caches(source, load_manifest(path))))
    results = []
    for i, run in enumerate(runs):
        if args.targets_only:
            run.pop('cfg')
            results.append(run)
            print(f"{run['name']}: targets {run.get('targets')}", flush=True)
            continue
        res = _train(run.pop('cfg'), _osp.join(args.work_dir, f'run{i}'), args.metric)
        results.append(dict(run, **res))
        print(f"{run['name']}: {args.metric} {res['metric']}, {res['wall_s']} s, targets "
              f"{run.get('targets')}", flush=True)
    with open(_osp.join(args.work_dir, 'sweep.json'), 'w') as f:
        json.dump(dict(config=args.config, source=args.source, results=results), f, indent=1)
    return results


if __name__ == '__main__':
    main()
