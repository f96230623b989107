"""Time the real ScaleKD distillation step and read its parts back from the profiler.

Builds the distiller of a config (shrink it with ``--cfg-options``), feeds random images and
labels, and runs the training step exactly as training runs it: ``model(x, samples,
mode='loss')`` and ``parse_losses`` inside the optimizer wrapper's ``optim_context``, then
``optim_wrapper.backward``, ``step`` and ``zero_grad``. Nothing is re-enacted: the parts are
the ``torch.profiler.record_function`` ranges that ``ScaleKDDistiller.loss`` opens around each
of its parts (``mmscalekd.models.distillers.PROFILE_RANGES``: student, label loss, teacher
targets, TPP, projectors, DFM losses, logit KD) plus this tool's ranges around the three
optimizer-wrapper calls (``step/forward``, ``step/backward``, ``step/optimizer``).

Two measurements, in one process:

    step      ``--warmup`` untimed steps, then ``--iters`` timed steps without the profiler:
              medians of wall time and of process CPU time (robust to other load on a
              shared CPU), images per second
    ranges    ``--iters`` more steps under ``torch.profiler``: each range's time per step
              (the profiler's CPU-side wall time; with CUDA also the time of the kernels
              launched in it), calls per step and share of the profiled step

Reference: the same teacher's plain classifier inference (``no_grad``, public adapter calls)
under the profiler, for ``teacher_targets / plain``. ``--ab-options`` alternates
``batch_tpp_views`` and ``inference_mode_targets`` on and off step by step and reads the
``scalekd/tpp`` and ``scalekd/teacher_targets`` ranges of each step.

The teacher checkpoint is dropped (random weights time the same; no download) unless
``--keep-teacher-checkpoint``; SyncBN is reverted to BN (one process).

Examples:
    python tools/analysis_tools/benchmark_distill.py \\
        configs/scalekd/scalekd_swin-l_resnet50_8xb32_100e_in1k.py --batch-size 4 --out b.json
    python tools/analysis_tools/benchmark_distill.py CONFIG --device cuda --amp --channels-last
"""
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

import argparse  # noqa: E402
import contextlib  # noqa: E402
import copy  # noqa: E402
import inspect  # noqa: E402
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
from torch.profiler import ProfilerActivity, profile, record_function  # noqa: E402

from mmscalekd.models.distillers import PROFILE_RANGES  # noqa: E402
from mmscalekd.registry import MODELS  # noqa: E402
from mmscalekd.utils import register_all_modules  # noqa: E402
from mmscalekd.utils.atomic_io import atomic_write_text, check_output  # noqa: E402

#: This tool's ranges around the optimizer wrapper's calls (one of each per step).
STEP_RANGES = ('step/forward', 'step/backward', 'step/optimizer')
PLAIN_RANGE = 'reference/teacher_plain'
#: Options compared by --ab-options and the range each one affects.
AB_OPTIONS = (('batch_tpp_views', 'scalekd/tpp'),
              ('inference_mode_targets', 'scalekd/teacher_targets'))


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description='Benchmark the real ScaleKD distillation step')
    p.add_argument('config', help='config with a ScaleKDDistiller model and an optim_wrapper')
    p.add_argument('--batch-size', type=int, default=4, help='images per step (default 4)')
    p.add_argument('--input-size', type=int, default=None,
                   help="square input size; default: the distiller's input_size")
    p.add_argument('--iters', type=int, default=5,
                   help='timed steps, and as many profiled steps (default 5)')
    p.add_argument('--warmup', type=int, default=2, help='untimed steps first (default 2)')
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
                   help='also run --iters rounds of steps with batch_tpp_views and '
                   'inference_mode_targets on and off, alternating, and compare the ranges '
                   'they affect (under "options_ab")')
    p.add_argument('--out', default=None, help='write the results as JSON here (atomically)')
    p.add_argument('--force', action='store_true', help='replace --out if it exists')
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


def _count(params) -> int:
    return int(sum(p.numel() for p in params))


def _accepts(cls, name: str) -> bool:
    try:
        return name in inspect.signature(cls).parameters
    except (TypeError, ValueError):
        return False


def build(args: argparse.Namespace) -> Tuple[torch.nn.Module, object, Config]:
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    if cfg.model.get('type') != 'ScaleKDDistiller':
        raise SystemExit(f'{args.config}: model type {cfg.model.get("type")!r} is not '
                         'ScaleKDDistiller')
    teacher = cfg.model.get('teacher')
    if not args.keep_teacher_checkpoint and isinstance(teacher, dict):
        teacher.checkpoint = None
        if teacher.get('pretrained'):  # a TimmTeacher: no hub download either
            teacher.pretrained = False
        teacher.allow_random_teacher = True  # random weights on purpose: they time the same
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


# ----------------------------------------------------------------------------- the step
def make_step(model, optim_wrapper, x: torch.Tensor, samples: list,
              autocast: Callable[[], contextlib.AbstractContextManager]) -> Callable[[], None]:
    """One training step as MMEngine's ``BaseModel.train_step`` runs it, in three ranges."""

    def step() -> None:
        with optim_wrapper.optim_context(model), autocast():
            with record_function('step/forward'):
                losses = model(x, samples, mode='loss')
                parsed, _ = model.parse_losses(losses)
        with record_function('step/backward'):
            optim_wrapper.backward(parsed)
        with record_function('step/optimizer'):
            optim_wrapper.step()
            optim_wrapper.zero_grad()

    return step


def make_plain_teacher(model, x: torch.Tensor,
                       autocast: Callable[[], contextlib.AbstractContextManager]
                       ) -> Callable[[], None]:
    """The same teacher's plain classifier inference (reference for the target pass)."""
    teacher = model.teacher
    # mmpretrain classifiers take mode='tensor'; timm models are called plainly.
    kwargs = dict(mode='tensor') if _accepts(teacher.model.forward, 'mode') else {}

    def plain() -> None:
        with torch.no_grad(), autocast(), record_function(PLAIN_RANGE):
            teacher.model(teacher.prepare_inputs(x), **kwargs)

    return plain


def time_steps(fn: Callable[[], None], warmup: int, iters: int, device: torch.device
               ) -> Tuple[List[float], List[float], Optional[float]]:
    """Wall and process-CPU seconds of each timed run, and (CUDA) the peak allocated MiB."""
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


def profile_ranges(fns: List[Callable[[], None]], iters: int, device: torch.device
                   ) -> Dict[str, dict]:
    """Run every function ``iters`` times under the profiler; per range and per run: time
    (CPU-side wall time of the range; with CUDA, also its kernels' time) and calls."""
    activities = [ProfilerActivity.CPU]
    if device.type == 'cuda':
        activities.append(ProfilerActivity.CUDA)
    wanted = set(PROFILE_RANGES) | set(STEP_RANGES) | {PLAIN_RANGE}
    _sync(device)
    with profile(activities=activities) as prof:
        for _ in range(iters):
            for fn in fns:
                fn()
        _sync(device)
    out: Dict[str, dict] = {}
    for event in prof.key_averages():
        if event.key not in wanted:
            continue
        entry = dict(s_per_step=event.cpu_time_total / 1e6 / iters,
                     calls_per_step=event.count / iters)
        if device.type == 'cuda':
            device_total = getattr(event, 'device_time_total', None)
            if device_total is None:
                device_total = getattr(event, 'cuda_time_total', 0.0)
            entry['device_s_per_step'] = device_total / 1e6 / iters
        out[event.key] = entry
    return out


def ab_options(model, step: Callable[[], None], args: argparse.Namespace,
               device: torch.device) -> Dict[str, dict]:
    """Each option on and off, alternating step by step on the same model and batch (load
    changes hit both sides alike); the affected range of every step, and its median."""
    out = {}
    for option, range_name in AB_OPTIONS:
        original = getattr(model, option)
        times: Dict[bool, List[float]] = {True: [], False: []}
        for value in (True, False):  # warm-up of both code paths
            setattr(model, option, value)
            step()
        for _ in range(args.iters):
            for value in (True, False):
                setattr(model, option, value)
                ranges = profile_ranges([step], 1, device)
                times[value].append(ranges.get(range_name, {}).get('s_per_step', 0.0))
        setattr(model, option, original)
        on, off = statistics.median(times[True]), statistics.median(times[False])
        out[option] = dict(range=range_name, on_median_s=on, off_median_s=off,
                           on_times_s=times[True], off_times_s=times[False],
                           on_over_off=on / off if off else None)
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
    # As many channels as the data preprocessor normalises (1 for the grayscale demo configs).
    mean = getattr(getattr(model, 'data_preprocessor', None), 'mean', None)
    channels = int(mean.numel()) if isinstance(mean, torch.Tensor) else 3
    x = torch.randn(args.batch_size, channels, *size, generator=g).to(device)
    if args.channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    num_classes = getattr(model.student.head, 'num_classes', 1000)
    samples = [DataSample().set_gt_label(int(i)).to(device)
               for i in torch.randint(0, num_classes, (args.batch_size, ), generator=g)]

    if args.amp and device.type == 'cpu':
        def autocast():
            return torch.autocast('cpu', dtype=torch.bfloat16)
    else:  # CUDA AMP: AmpOptimWrapper.optim_context enters autocast for the step
        amp_dtype = getattr(torch, args.amp_dtype)

        def autocast():
            if args.amp:
                return torch.autocast(device.type, dtype=amp_dtype)
            return contextlib.nullcontext()

    step = make_step(model, optim_wrapper, x, samples, autocast)
    compiled, compile_error = False, None
    if args.compile:
        compiled, compile_error = try_compile(model)
        if compiled:
            try:  # compile errors surface at the first call
                step()
            except Exception as err:  # noqa: BLE001
                compiled, compile_error = False, f'{type(err).__name__}: {err}'
                uncompile(model)
        if not compiled:
            warnings.warn(f'--compile: torch.compile is not usable here ({compile_error}); '
                          'timing the eager model instead')

    wall, cpu, peak = time_steps(step, args.warmup, args.iters, device)
    median = statistics.median(wall)
    plain = make_plain_teacher(model, x, autocast)
    plain()  # warm-up
    ranges = profile_ranges([step, plain], args.iters, device)
    options_ab = ab_options(model, step, args, device) if args.ab_options else None

    profiled_step = sum(ranges.get(n, {}).get('s_per_step', 0.0) for n in STEP_RANGES)
    forward = ranges.get('step/forward', {}).get('s_per_step', 0.0)
    parts = {n: r for n, r in ranges.items() if n in PROFILE_RANGES}
    for name, r in ranges.items():
        if name != PLAIN_RANGE:
            r['share_of_step'] = r['s_per_step'] / profiled_step if profiled_step else None
    targets = ranges.get('scalekd/teacher_targets', {}).get('s_per_step')
    plain_s = ranges.get(PLAIN_RANGE, {}).get('s_per_step')
    trainable = [p for p in model.parameters() if p.requires_grad]
    return dict(
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
        step=dict(median_s=median, times_s=wall, cpu_median_s=statistics.median(cpu),
                  cpu_times_s=cpu, images_per_s=args.batch_size / median,
                  cuda_peak_allocated_mib=peak),
        ranges={n: ranges[n] for n in (*STEP_RANGES, *PROFILE_RANGES, PLAIN_RANGE)
                if n in ranges},
        profiled_step_s=profiled_step,
        profiler_overhead=profiled_step / median if median else None,
        forward_in_parts=(sum(r['s_per_step'] for r in parts.values()) / forward
                          if forward else None),
        teacher_targets_over_plain=targets / plain_s if targets and plain_s else None,
        options_ab=options_ab,
        params=dict(student=_count(model.student.parameters()),
                    projectors=_count(model.connectors.parameters()),
                    teacher=_count(model.teacher.parameters()),
                    trainable=_count(trainable)),
        memory=dict(cpu_peak_rss_mib=_peak_rss_mib(), cpu_rss_mib=_rss_mib(),
                    cuda_peak_allocated_mib=peak),
    )


def print_table(out: dict) -> None:
    s = out['step']
    print(f'{out["config"]}  device={out["device"]} threads={out["threads"]} '
          f'B={out["batch_size"]} input={out["input_size"]} amp={out["amp"]} '
          f'channels_last={out["channels_last"]} compiled={out["compiled"]}')
    print(f'step: {s["median_s"]:.4f} s wall, {s["cpu_median_s"]:.4f} s cpu (medians of '
          f'{len(s["times_s"])}), {s["images_per_s"]:.2f} img/s')
    print(f'{"range":<26}{"s/step":>9}{"calls":>7}{"share":>8}')
    for name, r in out['ranges'].items():
        share = r.get('share_of_step')
        print(f'{name:<26}{r["s_per_step"]:>9.4f}{r["calls_per_step"]:>7.1f}'
              f'{"" if share is None else f"{share:>8.1%}"}')
    ratio = out['teacher_targets_over_plain']
    print(f'profiled step / step = {out["profiler_overhead"]:.3f}; forward in named parts = '
          f'{out["forward_in_parts"]:.3f}; teacher targets / plain inference = '
          f'{"n/a" if ratio is None else f"{ratio:.3f}"}')
    print(f'params: {out["params"]}; memory: {out["memory"]}')
    for option, r in (out.get('options_ab') or {}).items():
        print(f'{option} ({r["range"]}): on {r["on_median_s"]:.4f} s, off '
              f'{r["off_median_s"]:.4f} s (medians), on/off = {r["on_over_off"]:.3f}')


def main(argv: Optional[List[str]] = None) -> dict:
    args = parse_args(argv)
    if args.out:  # before the benchmark runs, not after
        try:
            check_output(args.out, args.force, what='--out')
        except OSError as err:
            sys.exit(f'benchmark_distill: error: {err}')
    out = run(args)
    print_table(out)
    if args.out:
        atomic_write_text(args.out, json.dumps(out, indent=2), force=args.force, what='--out')
    return out


if __name__ == '__main__':
    main()
