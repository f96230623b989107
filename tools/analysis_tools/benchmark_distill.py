"""Time one ScaleKD distillation step and its parts (student, teacher, projectors, TPP, full).

Builds the distiller of a config (shrink it with ``--cfg-options``), feeds random images and
labels, and times, in one process and one run:

    student      the student alone, forward + backward of its own head loss
    teacher      the teacher target pass as the distiller runs it (no graph)
    teacher_plain  the same teacher's plain classifier inference (``no_grad``), for comparison
    projectors   the non-TPP connectors + every DFM loss, forward + backward
    tpp          the TPP stages: connectors -> teacher last stage -> loss, forward + backward
    optimizer    the optimizer update alone (``optim_wrapper.step`` on kept gradients)
    full         the whole distillation step including the optimizer (the config's
                 ``optim_wrapper``)

Each part: ``--warmup`` untimed runs, then ``--iters`` timed runs; the median is reported,
of wall time and of process CPU time (robust to other load on a shared CPU).
``sum_of_parts`` adds student + teacher + projectors + tpp + optimizer (not ``teacher_plain``).
The teacher checkpoint is dropped (random weights time the same; no download) unless
``--keep-teacher-checkpoint``; SyncBN is reverted to BN (one process).

Examples:
    python tools/analysis_tools/benchmark_distill.py \\
        configs/scalekd/scalekd_swin-l_resnet50_8xb32_100e_in1k.py --batch-size 4 --out b.json
    python tools/analysis_tools/benchmark_distill.py CONFIG --device cuda --amp --channels-last
"""
# isort: off
import os.path as _osp
import sys as _sys

_sys.path.insert(0, _osp.dirname(_osp.dirname(_osp.dirname(_osp.abspath(__file__)))))
import mmscalekd  # noqa: F401,E402  (compat fixes before mmpretrain is imported)
# isort: on
import argparse  # noqa: E402
import contextlib  # noqa: E402
import copy  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import resource  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from typing import Callable, Dict, List, Optional, Tuple  # noqa: E402

import torch  # noqa: E402
from mmengine.config import Config, DictAction  # noqa: E402
from mmengine.model import revert_sync_batchnorm  # noqa: E402
from mmengine.optim import build_optim_wrapper  # noqa: E402
from mmpretrain.structures import DataSample  # noqa: E402
from torch import Tensor  # noqa: E402

from mmscalekd.registry import MODELS  # noqa: E402
from mmscalekd.utils import register_all_modules  # noqa: E402

PARTS = ('student', 'teacher', 'teacher_plain', 'projectors', 'tpp', 'optimizer', 'full')
SUMMED = ('student', 'teacher', 'projectors', 'tpp', 'optimizer')


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description='Benchmark a ScaleKD distillation step')
    p.add_argument('config', help='config with a ScaleKDDistiller model and an optim_wrapper')
    p.add_argument('--batch-size', type=int, default=4, help='images per step (default 4)')
    p.add_argument('--input-size', type=int, default=None,
                   help="square input size; default: the distiller's input_size")
    p.add_argument('--iters', type=int, default=5, help='timed runs per part (default 5)')
    p.add_argument('--warmup', type=int, default=2, help='untimed runs per part (default 2)')
    p.add_argument('--amp', action='store_true',
                   help='mixed precision: bf16 autocast on CPU; AmpOptimWrapper on CUDA')
    p.add_argument('--amp-dtype', default='bfloat16', choices=('bfloat16', 'float16'),
                   help='autocast dtype with --amp (default bfloat16; float16 on CUDA only)')
    p.add_argument('--channels-last', action='store_true',
                   help='model and inputs in channels-last memory format')
    p.add_argument('--compile', action='store_true',
                   help='torch.compile the student backbone and the connectors (falls back '
                   'with a warning where compile does not work)')
    p.add_argument('--device', default='cpu', choices=('cpu', 'cuda'))
    p.add_argument('--threads', type=int, default=None,
                   help='torch CPU threads (default: leave torch\'s setting)')
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--keep-teacher-checkpoint', action='store_true',
                   help='load the teacher checkpoint named in the config (default: drop it)')
    p.add_argument('--ab-options', action='store_true',
                   help='also time the TPP part with batch_tpp_views on/off and the teacher '
                   'part with inference_mode_targets on/off, alternating in this process '
                   '(--iters rounds each), under "options_ab"')
    p.add_argument('--out', default=None, help='write the results as JSON here')
    p.add_argument('--cfg-options', nargs='+', action=DictAction, default={},
                   help='override config keys, e.g. model.batch_tpp_views=False')
    args = p.parse_args(argv)
    for name in ('batch_size', 'iters'):
        if getattr(args, name) < 1:
            raise SystemExit(f'--{name.replace("_", "-")} must be >= 1, got {getattr(args, name)}')
    if args.warmup < 0:
        raise SystemExit(f'--warmup must be >= 0, got {args.warmup}')
    if args.device == 'cuda' and not torch.cuda.is_available():
        raise SystemExit('--device cuda: CUDA is not available on this machine')
    if args.amp and args.device == 'cpu' and args.amp_dtype != 'bfloat16':
        raise SystemExit('--amp on CPU supports --amp-dtype bfloat16 only')
    return args


# ----------------------------------------------------------------------------- helpers
def _sync(device: torch.device) -> None:
    if device.type == 'cuda':
        torch.cuda.synchronize(device)


def _peak_rss_mib() -> float:
    # ru_maxrss is in KiB on Linux, bytes on macOS.
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024.0 * 1024.0) if platform.system() == 'Darwin' else peak / 1024.0


def _rss_mib() -> Optional[float]:
    try:
        import psutil
    except ImportError:
        return None
    return psutil.Process().memory_info().rss / 2**20


def _time(fn: Callable[[], None], warmup: int, iters: int, device: torch.device
          ) -> Tuple[List[float], List[float], Optional[float]]:
    """Wall and process-CPU seconds of each timed run, and (CUDA) the peak allocated MiB.

    Process CPU time (all threads of this process) is reported next to wall time because
    on a shared, loaded CPU the wall time also measures the other processes.
    """
    for _ in range(warmup):
        fn()
    _sync(device)
    if device.type == 'cuda':
        torch.cuda.reset_peak_memory_stats(device)
    wall, cpu = [], []
    for _ in range(iters):
        _sync(device)
        start, start_cpu = time.perf_counter(), time.process_time()
        fn()
        _sync(device)
        wall.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    peak = (torch.cuda.max_memory_allocated(device) / 2**20
            if device.type == 'cuda' else None)
    return wall, cpu, peak


def _count(params) -> int:
    return int(sum(p.numel() for p in params))


def build(args: argparse.Namespace) -> Tuple[torch.nn.Module, object, Config]:
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    if not args.keep_teacher_checkpoint and isinstance(cfg.model.get('teacher'), dict):
        cfg.model.teacher.checkpoint = None
    if cfg.model.get('type') != 'ScaleKDDistiller':
        raise SystemExit(f'{args.config}: model type {cfg.model.get("type")!r} is not '
                         'ScaleKDDistiller')
    torch.manual_seed(args.seed)
    model = revert_sync_batchnorm(MODELS.build(cfg.model))
    device = torch.device(args.device)
    model.to(device)
    if args.channels_last:
        model.to(memory_format=torch.channels_last)
    model.train()
    optim_cfg = copy.deepcopy(cfg.get('optim_wrapper')
                              or dict(optimizer=dict(type='SGD', lr=0.01)))
    if args.amp and device.type == 'cuda':
        optim_cfg['type'] = 'AmpOptimWrapper'
        optim_cfg['dtype'] = args.amp_dtype
    elif optim_cfg.get('type') == 'AmpOptimWrapper':  # CPU: autocast is entered by hand
        optim_cfg['type'] = 'OptimWrapper'
        optim_cfg.pop('dtype', None)
        optim_cfg.pop('loss_scale', None)
    optim_wrapper = build_optim_wrapper(model, optim_cfg)
    return model, optim_wrapper, cfg


def try_compile(model: torch.nn.Module) -> Tuple[bool, Optional[str]]:
    """Compile the student backbone and every connector in place (``Module.compile``)."""
    targets = [model.student.backbone] + list(model.connectors.values())
    try:
        for m in targets:
            m.compile()
    except Exception as err:  # noqa: BLE001  (any backend failure means: no compile)
        return False, f'{type(err).__name__}: {err}'
    return True, None


def uncompile(model: torch.nn.Module) -> None:
    for m in [model.student.backbone] + list(model.connectors.values()):
        # Module.compile() stores the compiled callable here; None restores eager calls.
        m._compiled_call_impl = None


# ----------------------------------------------------------------------------- the parts
def make_parts(model, optim_wrapper, x: Tensor, samples: list,
               autocast: Callable[[], contextlib.AbstractContextManager]
               ) -> Dict[str, Callable[[], None]]:
    student, teacher = model.student, model.teacher
    stages = model.stages

    with torch.no_grad(), autocast():
        feats = student.extract_feat(x, stage='backbone')
        feats = (feats, ) if isinstance(feats, Tensor) else tuple(feats)
        target = model._teacher_targets(x).feature
        queries = {}
        for stage in stages:
            if stage.tpp:
                for view, z in model._tpp_views(stage, feats[stage.student_index]).items():
                    queries[(stage.name, view)] = z
    leaf_feats = [f.detach().requires_grad_(True) for f in feats]

    def student_part():
        with autocast():
            losses = student(x, samples, mode='loss')
            loss = sum(v for k, v in losses.items() if 'loss' in k)
        loss.backward()

    def teacher_part():
        with autocast():
            model._teacher_targets(x)

    def teacher_plain():
        with torch.no_grad(), autocast():
            teacher.model(teacher.prepare_inputs(x), mode='tensor')

    def projectors_part():
        total = 0.0
        with autocast():
            for stage in stages:
                if stage.tpp:
                    continue
                preds = model._project_views(stage, leaf_feats[stage.student_index], queries)
                out = model.distill_losses[stage.name](preds.get('spatial'),
                                                          preds.get('freq'), target)
                total = total + sum(out.values())
        if isinstance(total, Tensor):
            total.backward()

    def tpp_part():
        total = 0.0
        with autocast():
            for stage in stages:
                if not stage.tpp:
                    continue
                preds = model._tpp_views(stage, leaf_feats[stage.student_index])
                out = model.distill_losses[stage.name](preds.get('spatial'),
                                                          preds.get('freq'), target)
                total = total + sum(out.values())
        if isinstance(total, Tensor):
            total.backward()

    def optimizer_part():
        # Gradients from the previous part stay in .grad, so the update does real work.
        optim_wrapper.step()

    def full():
        with optim_wrapper.optim_context(model), autocast():
            losses = model(x, samples, mode='loss')
        parsed, _ = model.parse_losses(losses)
        optim_wrapper.update_params(parsed)

    return dict(student=student_part, teacher=teacher_part, teacher_plain=teacher_plain,
                projectors=projectors_part, tpp=tpp_part, optimizer=optimizer_part, full=full)


def ab_options(model, parts: Dict[str, Callable[[], None]], args: argparse.Namespace,
               device: torch.device) -> Dict[str, dict]:
    """Each option on and off, alternating run by run on the same model and batch, so that
    a change in the machine's load hits both sides alike. Medians of wall and CPU seconds."""
    out = {}
    for option, part in (('batch_tpp_views', 'tpp'), ('inference_mode_targets', 'teacher')):
        original = getattr(model, option)
        samples: Dict[bool, Tuple[List[float], List[float]]] = {True: ([], []), False: ([], [])}
        for value in (True, False):  # warm-up of both code paths
            setattr(model, option, value)
            _time(parts[part], args.warmup, 1, device)
        for _ in range(args.iters):
            for value in (True, False):
                setattr(model, option, value)
                wall, cpu, _ = _time(parts[part], 0, 1, device)
                samples[value][0].extend(wall)
                samples[value][1].extend(cpu)
        setattr(model, option, original)
        model.zero_grad(set_to_none=True)
        out[option] = dict(
            part=part,
            **{f'{"on" if v else "off"}_{kind}': dict(median_s=statistics.median(t), times_s=t)
               for v in (True, False) for kind, t in zip(('wall', 'cpu'), samples[v])})
        out[option]['on_over_off_cpu'] = (out[option]['on_cpu']['median_s']
                                          / out[option]['off_cpu']['median_s'])
        out[option]['on_over_off_wall'] = (out[option]['on_wall']['median_s']
                                           / out[option]['off_wall']['median_s'])
    return out


def run(args: argparse.Namespace) -> dict:
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    register_all_modules(init_default_scope=True)
    device = torch.device(args.device)
    model, optim_wrapper, cfg = build(args)

    size = args.input_size or model.input_size
    size = (size, size) if isinstance(size, int) else tuple(size)
    g = torch.Generator().manual_seed(args.seed)
    # As many channels as the model's normalisation has (1 for the grayscale demo configs).
    pre = model.data_preprocessor
    channels = pre.mean.shape[0] if getattr(pre, '_enable_normalize', False) else 3
    x = torch.randn(args.batch_size, channels, *size, generator=g).to(device)
    if args.channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    num_classes = getattr(model.student.head, 'num_classes', 1000)
    samples = [DataSample().set_gt_label(int(i))
               for i in torch.randint(0, num_classes, (args.batch_size, ), generator=g)]
    samples = [s.to(device) for s in samples]

    if args.amp and device.type == 'cpu':
        def autocast():
            return torch.autocast('cpu', dtype=torch.bfloat16)
    else:  # CUDA AMP: AmpOptimWrapper.optim_context enters autocast for the full step
        amp_dtype = getattr(torch, args.amp_dtype)

        def autocast():
            if args.amp:
                return torch.autocast(device.type, dtype=amp_dtype)
            return contextlib.nullcontext()

    compiled, compile_error = False, None
    if args.compile:
        compiled, compile_error = try_compile(model)
        if compiled:
            try:  # compile errors surface at the first call
                parts = make_parts(model, optim_wrapper, x, samples, autocast)
                parts['full']()
            except Exception as err:  # noqa: BLE001
                compiled, compile_error = False, f'{type(err).__name__}: {err}'
                uncompile(model)
        if not compiled:
            warnings.warn(f'--compile: torch.compile is not usable here ({compile_error}); '
                          'timing the eager model instead')

    parts = make_parts(model, optim_wrapper, x, samples, autocast)
    results: Dict[str, dict] = {}
    for name in PARTS:
        model.zero_grad(set_to_none=True)
        if name == 'optimizer':  # give every parameter a gradient to update
            parts['full']()
            for p in model.parameters():
                if p.requires_grad and p.grad is None:
                    p.grad = torch.zeros_like(p)
        times, cpu_times, peak = _time(parts[name], args.warmup, args.iters, device)
        median = statistics.median(times)
        results[name] = dict(median_s=median, times_s=times, images_per_s=args.batch_size / median,
                             cpu_median_s=statistics.median(cpu_times), cpu_times_s=cpu_times)
        if peak is not None:
            results[name]['cuda_peak_allocated_mib'] = peak
    model.zero_grad(set_to_none=True)
    options_ab = ab_options(model, parts, args, device) if args.ab_options else None

    parts_sum = sum(results[n]['median_s'] for n in SUMMED)
    cpu_sum = sum(results[n]['cpu_median_s'] for n in SUMMED)
    for name in PARTS:
        results[name]['share_of_sum'] = results[name]['median_s'] / parts_sum
        results[name]['cpu_share_of_sum'] = results[name]['cpu_median_s'] / cpu_sum
    trainable = [p for p in model.parameters() if p.requires_grad]
    out = dict(
        config=args.config,
        cfg_options={k: repr(v) for k, v in args.cfg_options.items()},
        device=str(device),
        device_name=(torch.cuda.get_device_name(device) if device.type == 'cuda'
                     else platform.processor() or platform.machine()),
        torch=torch.__version__,
        threads=torch.get_num_threads(),
        batch_size=args.batch_size,
        input_size=list(size),
        iters=args.iters,
        warmup=args.warmup,
        amp=args.amp,
        amp_dtype=args.amp_dtype if args.amp else None,
        channels_last=args.channels_last,
        compile_requested=args.compile,
        compiled=compiled,
        compile_error=compile_error,
        batch_tpp_views=model.batch_tpp_views,
        batch_tpp_views_applied=model.batches_tpp_views_on(device.type),
        inference_mode_targets=model.inference_mode_targets,
        parts=results,
        options_ab=options_ab,
        sum_of_parts_s=parts_sum,
        full_over_sum_of_parts=results['full']['median_s'] / parts_sum,
        cpu_sum_of_parts_s=cpu_sum,
        cpu_full_over_sum_of_parts=results['full']['cpu_median_s'] / cpu_sum,
        teacher_over_plain_inference=(results['teacher']['median_s']
                                      / results['teacher_plain']['median_s']),
        cpu_teacher_over_plain_inference=(results['teacher']['cpu_median_s']
                                          / results['teacher_plain']['cpu_median_s']),
        images_per_s=results['full']['images_per_s'],
        params=dict(student=_count(model.student.parameters()),
                    projectors=_count(model.connectors.parameters()),
                    teacher=_count(model.teacher.parameters()),
                    trainable=_count(trainable)),
        memory=dict(cpu_peak_rss_mib=_peak_rss_mib(), cpu_rss_mib=_rss_mib(),
                    cuda_peak_allocated_mib=(max(r.get('cuda_peak_allocated_mib', 0.0)
                                                 for r in results.values())
                                             if device.type == 'cuda' else None)),
    )
    return out


def print_table(out: dict) -> None:
    print(f'{out["config"]}  device={out["device"]} threads={out["threads"]} '
          f'B={out["batch_size"]} input={out["input_size"]} amp={out["amp"]} '
          f'channels_last={out["channels_last"]} compiled={out["compiled"]}')
    print(f'{"part":<14}{"wall s":>9}{"img/s":>9}{"share":>8}{"cpu s":>9}{"share":>8}')
    for name, r in out['parts'].items():
        print(f'{name:<14}{r["median_s"]:>9.4f}{r["images_per_s"]:>9.2f}'
              f'{r["share_of_sum"]:>8.1%}{r["cpu_median_s"]:>9.4f}{r["cpu_share_of_sum"]:>8.1%}')
    print(f'full / sum of parts = {out["full_over_sum_of_parts"]:.3f} (wall), '
          f'{out["cpu_full_over_sum_of_parts"]:.3f} (cpu); teacher target pass / plain '
          f'inference = {out["teacher_over_plain_inference"]:.3f} (wall), '
          f'{out["cpu_teacher_over_plain_inference"]:.3f} (cpu)')
    print(f'params: {out["params"]}; memory: {out["memory"]}')
    for option, r in (out.get('options_ab') or {}).items():
        print(f'{option} ({r["part"]} part): on {r["on_cpu"]["median_s"]:.4f} s, off '
              f'{r["off_cpu"]["median_s"]:.4f} s (cpu medians), on/off = '
              f'{r["on_over_off_cpu"]:.3f} (cpu), {r["on_over_off_wall"]:.3f} (wall)')


def main(argv: Optional[List[str]] = None) -> dict:
    args = parse_args(argv)
    out = run(args)
    print_table(out)
    if args.out:
        with open(args.out, 'w') as f:
            json.dump(out, f, indent=2)
    return out


if __name__ == '__main__':
    main()
