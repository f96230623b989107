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

FLOPs: one more step (fp32, eager) under ``torch.utils.flop_counter.FlopCounterMode`` gives the
model FLOPs per step (forward, backward, forward by part) and, with a peak (``--peak-tflops``
or ``PEAK_BF16_TFLOPS`` for a known CUDA device), the MFU; ``--no-flops`` skips it.

Sweep (``--batch-sizes 32,64,128,256``): every ``--settings`` (fp32 with the step options off,
bf16 AMP with them on, + channels-last, + torch.compile) at every batch size on one model,
visited A B C D A B C D ..., with FLOPs, MFU, peak CUDA memory, OOMs recorded and skipped,
``--time-budget``; JSON and a markdown table rewritten atomically after each batch size
(docs/benchmark.md, "FLOPs, MFU and the batch-size sweep").

The teacher checkpoint is dropped (random weights time the same; no download) unless
``--keep-teacher-checkpoint``; SyncBN is reverted to BN (one process).

Examples:
    python tools/analysis_tools/benchmark_distill.py \\
        configs/scalekd/scalekd_swin-l_resnet50_8xb32_100e_in1k.py --batch-size 4 --out b.json
    python tools/analysis_tools/benchmark_distill.py CONFIG --device cuda --amp --channels-last
    python tools/analysis_tools/benchmark_distill.py CONFIG --device cuda \\
        --batch-sizes 32,64,128,256 --out sweep.json   # + sweep.md
"""
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

import argparse  # noqa: E402
import contextlib  # noqa: E402
import copy  # noqa: E402
import gc  # noqa: E402
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

#: The settings of a sweep (--batch-sizes). "optimisations" are the distiller's step options:
#: on = the config's batch_tpp_views (default 'auto': batched on CUDA) and
#: inference_mode_targets=True; off = both False. AMP is bf16 autocast (AmpOptimWrapper on CUDA).
SETTINGS = {
    'fp32_off': dict(amp=False, optimisations=False, channels_last=False, compile=False),
    'bf16_on': dict(amp=True, optimisations=True, channels_last=False, compile=False),
    'bf16_on_cl': dict(amp=True, optimisations=True, channels_last=True, compile=False),
    'bf16_on_compile': dict(amp=True, optimisations=True, channels_last=False, compile=True),
}
SETTINGS_HELP = ('fp32_off (fp32, optimisations off), bf16_on (bf16 AMP, on), bf16_on_cl '
                 '(+ channels-last), bf16_on_compile (+ torch.compile)')

#: Dense (no sparsity) bf16 tensor-core peak in TFLOP/s by ``torch.cuda.get_device_name()``.
#: NVIDIA's datasheets state the bf16 Tensor Core rate with sparsity; dense is half of it:
#: "NVIDIA H200 Tensor Core GPU" datasheet, H200 SXM 1,979 -> 989.5; "NVIDIA H100 Tensor Core
#: GPU" datasheet, H100 SXM 1,979 -> 989.5, H100 PCIe 1,513 -> 756.5; "NVIDIA A100 Tensor Core
#: GPU" datasheet, A100 SXM and PCIe 624 -> 312. Names must match exactly (an H200 NVL or H100
#: NVL has other clocks and is not listed: pass --peak-tflops).
PEAK_BF16_TFLOPS = {
    'NVIDIA H200': 989.5,
    'NVIDIA H100 80GB HBM3': 989.5,
    'NVIDIA H100 PCIe': 756.5,
    'NVIDIA A100-SXM4-80GB': 312.0,
    'NVIDIA A100-SXM4-40GB': 312.0,
    'NVIDIA A100 80GB PCIe': 312.0,
    'NVIDIA A100-PCIE-40GB': 312.0,
}
#: A compiled setting's first warm-up visit is assumed to take this long (later ones, which
#: recompile for the new batch size, half of it) when --time-budget is checked.
COMPILE_ESTIMATE_S = 90.0


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
    p.add_argument('--no-flops', action='store_true',
                   help='skip counting the model FLOPs of one step (torch.utils.flop_counter)')
    p.add_argument('--peak-tflops', type=float, default=None,
                   help='dense peak TFLOP/s for MFU (default: the dense bf16 peak of a known '
                   'CUDA device, see PEAK_BF16_TFLOPS; unknown device: no MFU)')
    sweep = p.add_argument_group(
        'sweep', 'batch sizes x settings, interleaved (on when --batch-sizes is given)')
    sweep.add_argument('--batch-sizes', default=None,
                       help='comma-separated batch sizes, e.g. 32,64,128,256: time every '
                       '--settings at each, interleaved; an OOM is recorded and skipped')
    sweep.add_argument('--settings', default=','.join(SETTINGS),
                       help=f'comma-separated subset of {", ".join(SETTINGS)} (default all)')
    sweep.add_argument('--repeats', type=int, default=3,
                       help='timed visits of each setting per batch size, in the order '
                       'A B C .. A B C .. (default 3); each visit times --iters steps')
    sweep.add_argument('--time-budget', type=float, default=None,
                       help='seconds for the whole sweep: visits that would end past it are '
                       'skipped and listed (default: no limit)')
    sweep.add_argument('--flops-only', action='store_true',
                       help='only count the FLOPs of one step at each batch size (no timing)')
    sweep.add_argument('--md-out', default=None,
                       help='also write a markdown table here (atomically; default for a '
                       'sweep with --out: the same path with .md)')
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
    if args.peak_tflops is not None and not (0 < args.peak_tflops < float('inf')):
        raise SystemExit(f'--peak-tflops must be a positive number of TFLOP/s, got '
                         f'{args.peak_tflops}')
    args.settings = _parse_settings(args.settings)
    args.batch_sizes = (None if args.batch_sizes is None
                        else _parse_batch_sizes(args.batch_sizes))
    if args.batch_sizes is None:
        for flag in ('flops_only', 'time_budget', 'md_out'):
            if getattr(args, flag) not in (None, False):
                raise SystemExit(f'--{flag.replace("_", "-")} needs --batch-sizes '
                                 '(it belongs to the sweep)')
    else:
        clash = [f for f, on in (('--amp', args.amp), ('--channels-last', args.channels_last),
                                 ('--compile', args.compile), ('--ab-options', args.ab_options))
                 if on]
        if clash:
            raise SystemExit(f'{", ".join(clash)}: not with --batch-sizes; the sweep sets '
                             f'precision, layout and compile per --settings ({SETTINGS_HELP})')
        if args.amp_dtype != 'bfloat16':
            raise SystemExit(f'--amp-dtype {args.amp_dtype}: the sweep\'s AMP settings are '
                             'bf16; use a single run with --amp for float16')
    if args.repeats < 1:
        raise SystemExit(f'--repeats must be >= 1, got {args.repeats}')
    if args.time_budget is not None and not args.time_budget > 0:
        raise SystemExit(f'--time-budget must be > 0 seconds, got {args.time_budget}')
    wants_compile = args.compile or (args.batch_sizes is not None and not args.flops_only
                                     and any(SETTINGS[s]['compile'] for s in args.settings))
    if wants_compile and not (hasattr(torch, 'compile')
                              and hasattr(torch.nn.Module, 'compile')):
        raise SystemExit(f'--compile / a compiled setting: torch {torch.__version__} has no '
                         'torch.compile (needs torch >= 2.2); leave bf16_on_compile out of '
                         '--settings')
    return args


def _parse_batch_sizes(text: str) -> List[int]:
    sizes = []
    for item in text.split(','):
        try:
            size = int(item)
        except ValueError:
            size = 0
        if size < 1 or str(size) != item.strip():
            raise SystemExit(f'--batch-sizes must be comma-separated positive integers, e.g. '
                             f'32,64,128; got {text!r} ({item!r} is not one)')
        if size in sizes:
            raise SystemExit(f'--batch-sizes: {size} is given twice in {text!r}')
        sizes.append(size)
    return sizes


def _parse_settings(text: str) -> List[str]:
    names = [n.strip() for n in text.split(',') if n.strip()]
    bad = [n for n in names if n not in SETTINGS]
    if bad or not names:
        raise SystemExit(f'--settings: unknown {", ".join(map(repr, bad)) or "empty list"}; '
                         f'choose from {SETTINGS_HELP}')
    if len(set(names)) != len(names):
        raise SystemExit(f'--settings: a name is given twice in {text!r}')
    return names


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


def compile_targets(model: torch.nn.Module) -> List[torch.nn.Module]:
    """What ``--compile`` compiles: the student backbone and every connector."""
    return [model.student.backbone] + list(model.connectors.values())


def try_compile(model: torch.nn.Module) -> Tuple[bool, Optional[str]]:
    """Compile :func:`compile_targets` in place (``Module.compile``)."""
    try:
        for m in compile_targets(model):
            m.compile()
    except Exception as err:  # noqa: BLE001  (any backend failure means: no compile)
        return False, f'{type(err).__name__}: {err}'
    return True, None


def uncompile(model: torch.nn.Module) -> None:
    for m in compile_targets(model):
        # Module.compile() stores the compiled callable here; None restores eager calls.
        m._compiled_call_impl = None


def input_size(args: argparse.Namespace, model) -> Tuple[int, int]:
    size = args.input_size or model.input_size
    return (size, size) if isinstance(size, int) else tuple(size)


def make_inputs(model, batch_size: int, size: Tuple[int, int], seed: int,
                device: torch.device) -> Tuple[torch.Tensor, list]:
    """Random images ``(B, C, H, W)`` and random labels, the same for a given seed."""
    g = torch.Generator().manual_seed(seed)
    # As many channels as the data preprocessor normalises (1 for the grayscale demo configs).
    mean = getattr(getattr(model, 'data_preprocessor', None), 'mean', None)
    channels = int(mean.numel()) if isinstance(mean, torch.Tensor) else 3
    x = torch.randn(batch_size, channels, *size, generator=g).to(device)
    num_classes = getattr(model.student.head, 'num_classes', 1000)
    samples = [DataSample().set_gt_label(int(i)).to(device)
               for i in torch.randint(0, num_classes, (batch_size, ), generator=g)]
    return x, samples


# ----------------------------------------------------------------------------- the step
def make_step(model, optim_wrapper, x: torch.Tensor, samples: list,
              autocast: Callable[[], contextlib.AbstractContextManager],
              forward_context: Callable[[], contextlib.AbstractContextManager]
              = contextlib.nullcontext,
              backward_context: Callable[[], contextlib.AbstractContextManager]
              = contextlib.nullcontext) -> Callable[[], None]:
    """One training step as MMEngine's ``BaseModel.train_step`` runs it, in three ranges;
    ``forward_context`` wraps the loss forward, ``backward_context`` backward and optimizer
    (the FLOP counters)."""

    def step() -> None:
        with optim_wrapper.optim_context(model), autocast(), forward_context():
            with record_function('step/forward'):
                losses = model(x, samples, mode='loss')
                parsed, _ = model.parse_losses(losses)
        with backward_context():
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


# ----------------------------------------------------------------------------- FLOPs, MFU
def _sdpa_shapes(query, key, value) -> Tuple[int, int, int, int, int]:
    *batch, s_q, d_q = query.shape
    n = 1
    for b in batch:
        n *= int(b)
    return n, int(s_q), int(key.shape[-2]), int(d_q), int(value.shape[-1])


def _cpu_sdpa_forward_flops(query, key, value, *args, out_val=None, **kwargs) -> int:
    """FLOPs of softmax(q k^T) v: two batched matmuls, ``2 n s_q s_k (d_q + d_v)``."""
    n, s_q, s_k, d_q, d_v = _sdpa_shapes(query, key, value)
    return 2 * n * s_q * s_k * (d_q + d_v)


def _cpu_sdpa_backward_flops(grad_out, query, key, value, *args, out_val=None, **kwargs) -> int:
    """Backward: recomputed scores, grad of scores, of v, of q and of k (five matmuls),
    ``2 n s_q s_k (3 d_q + 2 d_v)``: the count torch.utils.flop_counter uses on CUDA."""
    n, s_q, s_k, d_q, d_v = _sdpa_shapes(query, key, value)
    return 2 * n * s_q * s_k * (3 * d_q + 2 * d_v)


def _raw(formula: Callable[..., int]) -> Callable[..., int]:
    formula._get_raw = True  # FlopCounterMode then passes the tensors, not their shapes
    return formula


def cpu_sdpa_formulas() -> dict:
    """FLOP formulas for the CPU attention kernel, which ``torch.utils.flop_counter`` does not
    count (its table has the CUDA flash/efficient/cuDNN kernels only), so that a CPU count
    equals a CUDA count of the same step."""
    aten = torch.ops.aten
    out = {}
    for name, formula in (('_scaled_dot_product_flash_attention_for_cpu',
                           _cpu_sdpa_forward_flops),
                          ('_scaled_dot_product_flash_attention_for_cpu_backward',
                           _cpu_sdpa_backward_flops)):
        if hasattr(aten, name):
            out[getattr(aten, name)] = _raw(formula)
    return out


class _PartTracker:
    """Which top-level part (child of the distiller) the module now running belongs to, by
    module identity (the teacher runs through adapter methods, so module names would not
    tell); a global forward pre-/post-hook pair keeps the stack."""

    def __init__(self, model: torch.nn.Module) -> None:
        self.part_of = {}
        for name, child in model.named_children():
            for m in child.modules():
                self.part_of.setdefault(m, name)
        self.stack: List[str] = []

    def pre(self, module, args) -> None:
        part = self.part_of.get(module)
        if part is not None:
            self.stack.append(part)

    def post(self, module, args, output) -> None:
        if module in self.part_of and self.stack:
            self.stack.pop()

    def current(self) -> str:
        return self.stack[-1] if self.stack else 'other'


def count_step_flops(model, optim_wrapper, x: torch.Tensor, samples: list) -> dict:
    """Model FLOPs of one real training step (fp32, eager), counted by
    ``torch.utils.flop_counter.FlopCounterMode``: the loss forward (teacher targets, TPP,
    projectors, losses) and the backward. The forward is also split by top-level part
    (``student``, ``teacher``, ``connectors``, ...; ``other``: outside any part).

    Returns:
        dict: ``total``, ``forward``, ``backward`` (FLOPs per step), ``forward_by_part`` and
        ``by_op`` (FLOPs per aten op over the whole step).
    """
    from torch.utils import flop_counter
    tracker = _PartTracker(model)
    parts: Dict[str, int] = {}

    def attributed(formula):
        def counted(*args, **kwargs) -> int:
            flops = formula(*args, **kwargs)
            part = tracker.current()
            parts[part] = parts.get(part, 0) + int(flops)
            return flops
        return _raw(counted)

    cpu_sdpa = cpu_sdpa_formulas()
    forward_mapping = {op: attributed(f)
                       for op, f in {**flop_counter.flop_registry, **cpu_sdpa}.items()}
    fwd = flop_counter.FlopCounterMode(display=False, custom_mapping=forward_mapping)
    bwd = flop_counter.FlopCounterMode(display=False, custom_mapping=cpu_sdpa)
    step = make_step(model, optim_wrapper, x, samples, contextlib.nullcontext,
                     lambda: fwd, lambda: bwd)
    handles = [torch.nn.modules.module.register_module_forward_pre_hook(tracker.pre),
               torch.nn.modules.module.register_module_forward_hook(tracker.post)]
    try:
        step()
    finally:
        for h in handles:
            h.remove()
    by_op: Dict[str, int] = {}
    for counter in (fwd, bwd):
        for op, n in counter.get_flop_counts().get('Global', {}).items():
            by_op[str(op)] = by_op.get(str(op), 0) + int(n)
    forward, backward = fwd.get_total_flops(), bwd.get_total_flops()
    return dict(total=int(forward + backward), forward=int(forward), backward=int(backward),
                forward_by_part=dict(sorted(parts.items())), by_op=dict(sorted(by_op.items())))


def resolve_peak(peak_tflops: Optional[float], device: torch.device
                 ) -> Tuple[Optional[float], str]:
    """The peak for MFU and where it comes from (``None`` and the reason when unknown)."""
    if peak_tflops is not None:
        return float(peak_tflops), '--peak-tflops'
    if device.type != 'cuda':
        return None, 'no MFU: no peak known for a CPU (pass --peak-tflops)'
    name = torch.cuda.get_device_name(device)
    if name in PEAK_BF16_TFLOPS:
        return PEAK_BF16_TFLOPS[name], f'dense bf16 peak of {name} (datasheet, halved sparse rate)'
    return None, f'no MFU: {name!r} is not in PEAK_BF16_TFLOPS (pass --peak-tflops)'


def mfu(flops_per_step: Optional[int], step_s: Optional[float],
        peak_tflops: Optional[float]) -> Optional[float]:
    """Model-FLOPs utilisation: FLOPs per step x steps per second / peak FLOP/s."""
    if not flops_per_step or not step_s or not peak_tflops:
        return None
    return flops_per_step / step_s / (peak_tflops * 1e12)


def run(args: argparse.Namespace) -> dict:
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    register_all_modules(init_default_scope=True)
    device = torch.device(args.device)
    model, optim_wrapper, cfg = build(args)

    size = input_size(args, model)
    x, samples = make_inputs(model, args.batch_size, size, args.seed, device)
    if args.channels_last:
        x = x.contiguous(memory_format=torch.channels_last)

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
    flops = None if args.no_flops else count_step_flops(model, optim_wrapper, x, samples)
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
    peak_tflops, peak_source = resolve_peak(args.peak_tflops, device)
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
        flops=flops,
        peak_tflops=peak_tflops,
        peak_source=peak_source,
        mfu=mfu(flops and flops['total'], median, peak_tflops),
        params=dict(student=_count(model.student.parameters()),
                    projectors=_count(model.connectors.parameters()),
                    teacher=_count(model.teacher.parameters()),
                    trainable=_count(trainable)),
        memory=dict(cpu_peak_rss_mib=_peak_rss_mib(), cpu_rss_mib=_rss_mib(),
                    cuda_peak_allocated_mib=peak),
    )


# ----------------------------------------------------------------------------- the sweep
def ab_order(settings: List[str], repeats: int) -> List[str]:
    """The visit order of the timed rounds: A B C .. A B C .. (``repeats`` rounds), so that a
    drift of the machine within a batch size hits every setting alike."""
    return [name for _ in range(repeats) for name in settings]


def _free_memory(device: torch.device) -> None:
    gc.collect()
    if device.type == 'cuda':
        torch.cuda.empty_cache()


class _Sweep:
    """Apply the sweep's settings in turn to one model (shared optimizer, so the optimizer
    state and the peak memory are the same for all)."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.device = torch.device(args.device)
        self.model, self.plain_wrapper, cfg = build(args)
        self.amp_wrapper = self.plain_wrapper
        if self.device.type == 'cuda' and any(SETTINGS[s]['amp'] for s in args.settings):
            from mmengine.optim import AmpOptimWrapper
            optim_cfg = cfg.get('optim_wrapper') or {}
            extra = {k: optim_cfg[k] for k in ('clip_grad', 'accumulative_counts')
                     if k in optim_cfg}
            self.amp_wrapper = AmpOptimWrapper(optimizer=self.plain_wrapper.optimizer,
                                               dtype=args.amp_dtype, **extra)
        self.on_flags = dict(batch_tpp_views=self.model.batch_tpp_views,
                             inference_mode_targets=self.model.inference_mode_targets)
        self.compiled: Optional[dict] = None  # module -> compiled call, once compiled
        self.compile_error: Optional[str] = None

    def flags(self, name: str) -> dict:
        on = SETTINGS[name]['optimisations']
        return dict(self.on_flags) if on else dict(batch_tpp_views=False,
                                                   inference_mode_targets=False)

    def apply(self, name: str) -> None:
        setting, model = SETTINGS[name], self.model
        for key, value in self.flags(name).items():
            setattr(model, key, value)
        fmt = torch.channels_last if setting['channels_last'] else torch.contiguous_format
        model.to(memory_format=fmt)
        # The optimizer's 4-d state (momentum, Adam moments) in the parameters' layout, so the
        # fused multi-tensor update is not replaced by a slower per-tensor one.
        for state in self.plain_wrapper.optimizer.state.values():
            for key, value in state.items():
                if isinstance(value, torch.Tensor) and value.dim() == 4:
                    state[key] = value.contiguous(memory_format=fmt)
        targets = compile_targets(model)
        if setting['compile'] and self.compiled is None:
            ok, self.compile_error = try_compile(model)
            if not ok:
                uncompile(model)
                raise _CompileFailed(self.compile_error)
            self.compiled = {m: m._compiled_call_impl for m in targets}
        for m in targets:  # Module.compile() keeps the compiled callable here
            m._compiled_call_impl = self.compiled[m] if setting['compile'] else None

    def step(self, name: str, x: torch.Tensor, samples: list) -> Callable[[], None]:
        setting = SETTINGS[name]
        if setting['channels_last']:
            x = x.contiguous(memory_format=torch.channels_last)
        if not setting['amp']:
            return make_step(self.model, self.plain_wrapper, x, samples,
                             contextlib.nullcontext)
        if self.device.type == 'cuda':  # AmpOptimWrapper.optim_context enters autocast
            return make_step(self.model, self.amp_wrapper, x, samples, contextlib.nullcontext)
        return make_step(self.model, self.plain_wrapper, x, samples,
                         lambda: torch.autocast('cpu', dtype=torch.bfloat16))


class _CompileFailed(RuntimeError):
    pass


def _summary(times: List[float], batch_size: int, flops: Optional[int],
             peak_tflops: Optional[float]) -> dict:
    if not times:
        return dict(median_s=None, images_per_s=None, mfu=None)
    med = statistics.median(times)
    q = statistics.quantiles(times, n=4) if len(times) > 1 else [med, med, med]
    return dict(median_s=med, min_s=min(times), max_s=max(times), iqr_s=q[2] - q[0],
                spread=(max(times) - min(times)) / med, images_per_s=batch_size / med,
                mfu=mfu(flops, med, peak_tflops))


def sweep(args: argparse.Namespace, on_batch_done: Optional[Callable[[dict], None]] = None
          ) -> dict:
    """Every setting at every batch size: one FLOP count (fp32, eager), one warm-up visit per
    setting, then ``--repeats`` timed visits per setting in :func:`ab_order`; each visit times
    ``--iters`` steps one by one. An out-of-memory error ends that setting at that batch size
    (``oom: true``), frees the memory and the sweep goes on; ``--time-budget`` skips the visits
    that would end past it (listed in ``skipped``)."""
    start = time.monotonic()
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    register_all_modules(init_default_scope=True)
    sw = _Sweep(args)
    model, device = sw.model, sw.device
    size = input_size(args, model)
    peak_tflops, peak_source = resolve_peak(args.peak_tflops, device)
    out = dict(config=args.config, cfg_options={k: repr(v) for k, v in args.cfg_options.items()},
               mode='flops_only' if args.flops_only else 'sweep', **environment(device),
               input_size=list(size), iters=args.iters, warmup=args.warmup,
               repeats=args.repeats, time_budget_s=args.time_budget,
               settings={n: dict(SETTINGS[n], **sw.flags(n)) for n in args.settings},
               order='A B C .. repeated --repeats times per batch size',
               peak_tflops=peak_tflops, peak_source=peak_source,
               params=dict(student=_count(model.student.parameters()),
                           projectors=_count(model.connectors.parameters()),
                           teacher=_count(model.teacher.parameters())),
               batches=[], skipped=[])
    last_visit: Dict[str, float] = {}  # setting -> seconds per image of its last visit
    dead: Dict[str, str] = {}  # setting -> its error (compile or other), for good

    def over_budget(name: str, batch: int, what: str) -> bool:
        if args.time_budget is None:
            return False
        estimate = last_visit.get(name, 0.0) * batch
        if SETTINGS[name]['compile'] and what == 'warmup':  # (re)compiles at a new batch size
            estimate += COMPILE_ESTIMATE_S if sw.compiled is None else COMPILE_ESTIMATE_S / 2
        if time.monotonic() - start + estimate <= args.time_budget:
            return False
        out['skipped'].append(f'B={batch} {name} {what}: time budget ({args.time_budget:g} s)')
        return True

    for batch in args.batch_sizes:
        x, samples = make_inputs(model, batch, size, args.seed, device)
        entry = dict(batch_size=batch, flops=None, oom=False, visits=[],
                     settings={n: dict(times_s=[], oom=False, peak_allocated_mib=None,
                                       compile_error=None, error=None)
                               for n in args.settings})
        out['batches'].append(entry)
        # FLOPs: eager, fp32, default layout (the options change no FLOP count).
        model.to(memory_format=torch.contiguous_format)
        uncompile(model)
        try:
            entry['flops'] = count_step_flops(model, sw.plain_wrapper, x, samples)
        except torch.cuda.OutOfMemoryError as err:
            entry['oom'], entry['oom_error'] = True, str(err).splitlines()[0][:200]
        if entry['oom']:  # freed outside the handler: the error's frames hold the tensors
            sw.plain_wrapper.zero_grad()
            _free_memory(device)
            if on_batch_done:
                on_batch_done(out)
            continue
        if args.flops_only:
            if on_batch_done:
                on_batch_done(out)
            continue
        flops = entry['flops']['total']
        alive = [n for n in args.settings if n not in dead]
        for name in args.settings:
            if name in dead:  # failed at an earlier batch size: not tried again
                key = 'compile_error' if SETTINGS[name]['compile'] else 'error'
                entry['settings'][name][key] = f'(at an earlier batch size) {dead[name]}'
        plan = [('warmup', n) for n in args.settings] + [('timed', n) for n in
                                                          ab_order(args.settings, args.repeats)]
        for kind, name in plan:
            rec = entry['settings'][name]
            if name not in alive:
                continue
            if over_budget(name, batch, kind):
                alive.remove(name)
                continue
            t0 = time.monotonic()
            try:
                sw.apply(name)
                step = sw.step(name, x, samples)
                if kind == 'warmup':
                    for _ in range(max(args.warmup, 1 if SETTINGS[name]['compile'] else 0)):
                        step()
                    _sync(device)
                else:
                    wall, _, peak = time_steps(step, 0, args.iters, device)
                    rec['times_s'] += wall
                    if peak is not None:
                        rec['peak_allocated_mib'] = max(rec['peak_allocated_mib'] or 0.0, peak)
                    last_visit[name] = (time.monotonic() - t0) / batch
                entry['visits'].append(name if kind == 'timed' else f'warmup:{name}')
            except torch.cuda.OutOfMemoryError as err:
                rec['oom'], rec['oom_error'] = True, str(err).splitlines()[0][:200]
                alive.remove(name)
            except Exception as err:  # noqa: BLE001  (a one-shot run records and goes on)
                message = (str(err) if isinstance(err, _CompileFailed)
                           else f'{type(err).__name__}: {err}'[:500])
                alive.remove(name)
                sw.plain_wrapper.zero_grad()
                if SETTINGS[name]['compile']:
                    # Compiling fails at Module.compile() or, lazily, in the first compiled step.
                    rec['compile_error'] = dead[name] = message
                    uncompile(model)
                    warnings.warn(f'{name}: torch.compile is not usable here ({message}); '
                                  'setting left out')
                else:
                    rec['error'] = dead[name] = message
                    warnings.warn(f'{name} failed at batch {batch} ({message}); setting left out')
            if rec['oom']:  # freed outside the handler: the error's frames hold the tensors
                step = None
                sw.plain_wrapper.zero_grad()
                _free_memory(device)
        for name, rec in entry['settings'].items():
            rec.update(_summary(rec['times_s'], batch, flops, peak_tflops))
        if on_batch_done:
            on_batch_done(out)
    for key, value in sw.on_flags.items():  # leave the model as built
        setattr(model, key, value)
    out['wall_s'] = time.monotonic() - start
    return out


def environment(device: torch.device) -> dict:
    """Device and versions, for the record."""
    versions = {}
    for name in ('mmengine', 'mmpretrain', 'mmcv', 'timm'):
        try:
            versions[name] = __import__(name).__version__
        except Exception:  # noqa: BLE001  (not installed: recorded as None)
            versions[name] = None
    return dict(device=str(device),
                device_name=(torch.cuda.get_device_name(device) if device.type == 'cuda'
                             else platform.processor() or platform.machine()),
                torch=torch.__version__, cuda=torch.version.cuda, versions=versions,
                threads=torch.get_num_threads())


def sweep_markdown(out: dict) -> str:
    """The sweep as a markdown table (one row per batch size and setting)."""
    lines = [f'`{out["config"]}` on {out["device_name"]} (torch {out["torch"]}, CUDA '
             f'{out["cuda"]}), input {out["input_size"][0]}x{out["input_size"][1]}, '
             f'{out["repeats"]} visits x {out["iters"]} steps per setting; MFU: '
             f'{out["peak_source"]}' + (f' = {out["peak_tflops"]:g} TFLOP/s'
                                         if out['peak_tflops'] else ''), '',
             '| batch | setting | img/s | step s (median) | min-max s | GFLOP/step | MFU | '
             'peak MiB | note |', '|---|---|---|---|---|---|---|---|---|']
    for entry in out['batches']:
        f = entry['flops']
        gflop = f'{f["total"] / 1e9:.1f}' if f else '-'
        if entry['oom'] or out['mode'] == 'flops_only':
            note = 'OOM while counting FLOPs' if entry['oom'] else 'FLOPs only'
            lines.append(f'| {entry["batch_size"]} | - | - | - | - | {gflop} | - | - | {note} |')
            continue
        for name, r in entry['settings'].items():
            note = ('OOM' if r['oom'] else f'compile failed: {r["compile_error"][:60]}'
                    if r['compile_error'] else f'failed: {r["error"][:60]}' if r['error']
                    else 'skipped (time budget)' if not r['times_s']
                    else f'{len(r["times_s"])} steps')
            note = note.replace('|', '/').replace('\n', ' ')
            if r['median_s'] is None:
                lines.append(f'| {entry["batch_size"]} | {name} | - | - | - | {gflop} | - | '
                             f'- | {note} |')
                continue
            util = '-' if r['mfu'] is None else f'{r["mfu"]:.1%}'
            mem = '-' if r['peak_allocated_mib'] is None else f'{r["peak_allocated_mib"]:.0f}'
            lines.append(f'| {entry["batch_size"]} | {name} | {r["images_per_s"]:.1f} | '
                         f'{r["median_s"]:.4f} | {r["min_s"]:.4f}-{r["max_s"]:.4f} | {gflop} | '
                         f'{util} | {mem} | {note} |')
    if out['skipped']:
        lines += ['', 'Skipped: ' + '; '.join(out['skipped'])]
    return '\n'.join(lines) + '\n'


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
    if args.md_out is None and args.batch_sizes is not None and args.out:
        args.md_out = osp.splitext(args.out)[0] + '.md'
    outputs = [(flag, path) for flag, path in (('--out', args.out), ('--md-out', args.md_out))
               if path]
    for flag, path in outputs:  # before the benchmark runs, not after
        try:
            check_output(path, args.force, what=flag)
        except OSError as err:
            sys.exit(f'benchmark_distill: error: {err}')
    if args.batch_sizes is None:
        out = run(args)
        print_table(out)
        texts = {'--out': json.dumps(out, indent=2)}
        if args.md_out:
            texts['--md-out'] = single_markdown(out)
        for flag, path in outputs:
            atomic_write_text(path, texts[flag], force=args.force, what=flag)
        return out

    def write(partial: dict) -> None:  # after every batch size: a cut-off run keeps its rows
        texts = {'--out': json.dumps(partial, indent=2), '--md-out': sweep_markdown(partial)}
        for flag, path in outputs:
            atomic_write_text(path, texts[flag], force=True, what=flag)

    def progress(partial: dict) -> None:
        write(partial)
        batch = partial['batches'][-1]['batch_size']
        print(f'benchmark_distill: batch {batch} done at {time.monotonic() - started:.0f} s',
              flush=True)

    started = time.monotonic()
    out = sweep(args, on_batch_done=progress)
    write(out)
    print(sweep_markdown(out))
    return out


def single_markdown(out: dict) -> str:
    """A single run as a one-row markdown table."""
    s, f = out['step'], out['flops']
    util = '-' if out['mfu'] is None else f'{out["mfu"]:.1%}'
    gflop = '-' if f is None else f'{f["total"] / 1e9:.1f}'
    return ('| batch | img/s | step s | GFLOP/step | MFU |\n|---|---|---|---|---|\n'
            f'| {out["batch_size"]} | {s["images_per_s"]:.1f} | {s["median_s"]:.4f} | {gflop} '
            f'| {util} |\n')


if __name__ == '__main__':
    main()
