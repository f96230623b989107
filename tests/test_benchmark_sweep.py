"""The benchmark tool's FLOP count, MFU, option checks and batch-size sweep (CPU, tiny).

FLOPs are checked against hand counts of models whose FLOPs are known in closed form; the sweep
runs the tiny distiller of tests/data/configs/tiny_scalekd_bench.py. No timing assertions.
"""
import importlib.util
import json
import os.path as osp

import pytest
import torch
import torch.nn.functional as F
from mmengine.model import BaseModel
from mmengine.optim import OptimWrapper

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
TINY = osp.join(ROOT, 'tests', 'data', 'configs', 'tiny_scalekd_bench.py')


@pytest.fixture(scope='module')
def tool():
    spec = importlib.util.spec_from_file_location(
        'benchmark_distill', osp.join(ROOT, 'tools', 'analysis_tools', 'benchmark_distill.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class ConvLinear(BaseModel):
    """conv 3->4 (3x3, no bias) on 8x8 -> 4x6x6, flattened, linear 144->5; loss = mean square."""

    def __init__(self) -> None:
        super().__init__()
        self.student = torch.nn.Conv2d(3, 4, 3, bias=False)
        self.head = torch.nn.Linear(4 * 6 * 6, 5)

    def forward(self, x, samples=None, mode='loss'):
        return dict(loss=self.head(self.student(x).flatten(1)).square().mean())


class Attention(BaseModel):
    """q, k, v projections (linear 8->8 each) and one SDPA over 2 heads of 4 channels."""

    def __init__(self) -> None:
        super().__init__()
        self.qkv = torch.nn.Linear(8, 24, bias=False)

    def forward(self, x, samples=None, mode='loss'):
        b, n, _ = x.shape
        q, k, v = self.qkv(x).reshape(b, n, 3, 2, 4).permute(2, 0, 3, 1, 4)
        return dict(loss=F.scaled_dot_product_attention(q, k, v).square().mean())


def _wrapper(model):
    return OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.1))


def test_flops_of_conv_and_linear_are_the_hand_count(tool):
    model, b = ConvLinear(), 3
    flops = tool.count_step_flops(model, _wrapper(model), torch.randn(b, 3, 8, 8), [])
    conv = 2 * b * 4 * 6 * 6 * (3 * 3 * 3)  # 2 x output elements x (C_in k k) multiply-adds
    linear = 2 * b * 144 * 5
    assert flops['forward'] == conv + linear
    assert flops['forward_by_part'] == {'student': conv, 'head': linear}
    # Backward: the input needs no gradient, so the conv computes its weight gradient only
    # (one conv's worth); the linear computes input and weight gradients (two).
    assert flops['backward'] == conv + 2 * linear
    assert flops['total'] == 2 * conv + 3 * linear
    assert sum(flops['by_op'].values()) == flops['total']


def test_cpu_attention_is_counted_like_cuda_attention(tool):
    model, b, n = Attention(), 2, 5
    flops = tool.count_step_flops(model, _wrapper(model), torch.randn(b, n, 8), [])
    heads, d = 2, 4
    proj = 2 * b * n * 8 * 24
    attn = 2 * (2 * b * heads * n * n * d)  # q k^T and (scores) v
    attn_bwd = 2 * b * heads * n * n * (3 * d + 2 * d)  # five matmuls
    assert flops['forward'] == proj + attn
    assert flops['backward'] == attn_bwd + 2 * b * n * 8 * 24  # qkv: weight gradient only
    assert flops['by_op']['aten._scaled_dot_product_flash_attention_for_cpu'] == attn


def test_mfu_and_peak(tool):
    # 200 GFLOP per image x 333 images/s on a 989.5 TFLOP/s part (the estimate).
    step_s = 32 / 333.0
    assert tool.mfu(32 * 200e9, step_s, 989.5) == pytest.approx(200e9 * 333 / 989.5e12)
    assert tool.mfu(None, step_s, 989.5) is None and tool.mfu(10, step_s, None) is None
    assert tool.resolve_peak(None, torch.device('cpu'))[0] is None
    assert tool.resolve_peak(123.0, torch.device('cpu')) == (123.0, '--peak-tflops')
    assert tool.PEAK_BF16_TFLOPS['NVIDIA H200'] == 989.5
    assert 'NVIDIA H200 NVL' not in tool.PEAK_BF16_TFLOPS  # exact names, no prefix guess


def test_ab_order_interleaves_every_setting(tool):
    assert tool.ab_order(['a', 'b', 'c'], 2) == ['a', 'b', 'c', 'a', 'b', 'c']
    assert tool.ab_order(['a'], 3) == ['a', 'a', 'a']


@pytest.mark.parametrize('argv, message', [
    (['--batch-sizes', '32,x'], "'x' is not one"),
    (['--batch-sizes', '0,2'], "'0' is not one"),
    (['--batch-sizes', '-4'], "'-4' is not one"),
    (['--batch-sizes', '2,2'], '2 is given twice'),
    (['--peak-tflops', '0'], 'got 0.0'),
    (['--peak-tflops', '-5'], 'got -5.0'),
    (['--batch-sizes', '2', '--settings', 'fp16_fast'], "unknown 'fp16_fast'"),
    (['--batch-sizes', '2', '--settings', 'bf16_on,bf16_on'], 'given twice'),
    (['--batch-sizes', '2', '--amp'], '--amp: not with --batch-sizes'),
    (['--batch-sizes', '2', '--repeats', '0'], 'got 0'),
    (['--batch-sizes', '2', '--time-budget', '0'], 'got 0.0'),
    (['--flops-only'], 'needs --batch-sizes'),
])
def test_options_are_validated(tool, argv, message):
    with pytest.raises(SystemExit, match=message):
        tool.parse_args([TINY] + argv)


def test_compile_needs_a_torch_with_compile(tool, monkeypatch):
    monkeypatch.delattr(torch, 'compile')
    with pytest.raises(SystemExit, match='has no torch.compile'):
        tool.parse_args([TINY, '--batch-sizes', '2', '--settings', 'bf16_on_compile'])
    with pytest.raises(SystemExit, match='has no torch.compile'):
        tool.parse_args([TINY, '--compile'])
    # Without a compiled setting the sweep needs none.
    assert tool.parse_args([TINY, '--batch-sizes', '2', '--settings', 'fp32_off'])


def test_sweep_records_an_oom_and_goes_on(tool, tmp_path, monkeypatch):
    real_make_step = tool.make_step

    def make_step(model, optim_wrapper, x, samples, *args, **kwargs):
        step = real_make_step(model, optim_wrapper, x, samples, *args, **kwargs)
        if x.shape[0] == 3 and optim_wrapper is not None and not kwargs and len(args) == 1:
            def oom():  # the timed steps at batch 3 (the FLOP count passes its contexts)
                raise torch.cuda.OutOfMemoryError('CUDA out of memory (simulated)')
            return oom
        return step

    def broken_compile(self, *args, **kwargs):
        raise RuntimeError('no compiler backend here')

    monkeypatch.setattr(tool, 'make_step', make_step)
    monkeypatch.setattr(torch.nn.Module, 'compile', broken_compile)
    out_file = tmp_path / 'sweep.json'
    with pytest.warns(UserWarning, match='bf16_on_compile: torch.compile is not usable'):
        out = tool.main([TINY, '--batch-sizes', '2,3,4', '--iters', '2', '--repeats', '2',
                         '--warmup', '1', '--settings', 'fp32_off,bf16_on,bf16_on_compile',
                         '--peak-tflops', '0.5', '--out', str(out_file)])
    assert json.loads(out_file.read_text()) == json.loads(json.dumps(out))
    table = (tmp_path / 'sweep.md').read_text()
    by_batch = {e['batch_size']: e for e in out['batches']}
    assert list(by_batch) == [2, 3, 4]
    for batch in (2, 4):
        entry = by_batch[batch]
        # Warm-up of each setting, then A B A B: the compiled setting dropped after its failure.
        assert entry['visits'] == ['warmup:fp32_off', 'warmup:bf16_on', 'fp32_off', 'bf16_on',
                                   'fp32_off', 'bf16_on']
        for name in ('fp32_off', 'bf16_on'):
            r = entry['settings'][name]
            assert len(r['times_s']) == 4 and r['oom'] is False
            assert r['images_per_s'] == pytest.approx(batch / r['median_s'])
            assert r['mfu'] == pytest.approx(entry['flops']['total'] / r['median_s'] / 0.5e12)
            assert r['peak_allocated_mib'] is None  # CPU: no CUDA memory figure
        assert 'no compiler backend here' in entry['settings']['bf16_on_compile'][
            'compile_error']
    # FLOPs are linear in the batch size (same model, same input size).
    assert by_batch[4]['flops']['total'] == 2 * by_batch[2]['flops']['total']
    oom = by_batch[3]
    assert oom['flops']['total'] * 2 == by_batch[2]['flops']['total'] * 3
    for name in ('fp32_off', 'bf16_on'):
        assert oom['settings'][name]['oom'] is True
        assert oom['settings'][name]['times_s'] == [] and oom['settings'][name]['mfu'] is None
        assert 'simulated' in oom['settings'][name]['oom_error']
    assert '| 3 | fp32_off | - |' in table and 'OOM' in table
    assert out['skipped'] == []


def test_sweep_time_budget_skips_and_says_so(tool, monkeypatch):
    clock = iter(range(0, 10**6, 50))  # every reading 50 s later: the budget runs out at once
    monkeypatch.setattr(tool.time, 'monotonic', lambda: next(clock))
    out = tool.sweep(tool.parse_args([TINY, '--batch-sizes', '2,4', '--iters', '1',
                                      '--repeats', '1', '--settings', 'fp32_off,bf16_on',
                                      '--time-budget', '60']))
    assert out['skipped'] and all('time budget (60 s)' in s for s in out['skipped'])
    skipped_settings = {s.split()[1] for s in out['skipped']}
    assert skipped_settings <= {'fp32_off', 'bf16_on'}
    assert not by_batch_times(out, 4)  # nothing ran at the second batch size


def by_batch_times(out: dict, batch: int) -> list:
    entry = next(e for e in out['batches'] if e['batch_size'] == batch)
    return [t for r in entry['settings'].values() for t in r['times_s']]


def test_flops_only_counts_without_timing(tool):
    out = tool.sweep(tool.parse_args([TINY, '--batch-sizes', '1', '--flops-only']))
    entry = out['batches'][0]
    assert out['mode'] == 'flops_only' and entry['visits'] == []
    f = entry['flops']
    assert f['total'] == f['forward'] + f['backward'] > 0
    assert set(f['forward_by_part']) >= {'student', 'teacher', 'connectors'}
    assert sum(f['forward_by_part'].values()) == f['forward']


def test_a_compile_that_fails_at_its_first_step_drops_the_setting(tool, monkeypatch):
    calls = []

    def lazily_broken(self, *args, **kwargs):  # Module.compile() succeeds, the first call fails
        def fail(*a, **k):
            calls.append(1)
            raise RuntimeError('backend failed at the first call')
        self._compiled_call_impl = fail

    monkeypatch.setattr(torch.nn.Module, 'compile', lazily_broken)
    with pytest.warns(UserWarning, match='backend failed at the first call'):
        out = tool.sweep(tool.parse_args([TINY, '--batch-sizes', '2,4', '--iters', '1',
                                          '--repeats', '2',
                                          '--settings', 'bf16_on_compile,fp32_off']))
    first, second = out['batches']
    assert 'RuntimeError: backend failed' in first['settings']['bf16_on_compile']['compile_error']
    for entry in (first, second):
        assert entry['settings']['bf16_on_compile']['times_s'] == []
        assert entry['visits'] == ['warmup:fp32_off', 'fp32_off', 'fp32_off']
        assert len(entry['settings']['fp32_off']['times_s']) == 2  # eager after the failure
    # Not compiled again at the next batch size: one failing call in all.
    assert len(calls) == 1
    assert second['settings']['bf16_on_compile']['compile_error'].startswith(
        '(at an earlier batch size) RuntimeError')


def test_a_setting_that_fails_is_recorded_and_the_others_go_on(tool, monkeypatch):
    import contextlib
    real_make_step = tool.make_step

    def make_step(model, optim_wrapper, x, samples, autocast, *args, **kwargs):
        if autocast is not contextlib.nullcontext:  # the CPU bf16 settings
            raise ValueError('a bf16 kernel | is missing')
        return real_make_step(model, optim_wrapper, x, samples, autocast, *args, **kwargs)

    monkeypatch.setattr(tool, 'make_step', make_step)
    with pytest.warns(UserWarning, match='bf16_on failed at batch 2'):
        out = tool.sweep(tool.parse_args([TINY, '--batch-sizes', '2,3', '--iters', '1',
                                          '--repeats', '1', '--settings', 'bf16_on,fp32_off']))
    first, second = out['batches']
    assert first['settings']['bf16_on']['error'] == 'ValueError: a bf16 kernel | is missing'
    assert second['settings']['bf16_on']['error'].startswith('(at an earlier batch size)')
    assert second['visits'] == ['warmup:fp32_off', 'fp32_off']
    table = tool.sweep_markdown(out)
    assert '| 2 | bf16_on | - |' in table and 'kernel / is missing' in table


def test_channels_last_setting_moves_params_and_optimizer_state(tool):
    tool.register_all_modules(init_default_scope=True)
    sw = tool._Sweep(tool.parse_args([TINY, '--batch-sizes', '2']))
    x, samples = tool.make_inputs(sw.model, 2, (64, 64), 0, torch.device('cpu'))
    sw.step('fp32_off', x, samples)()  # creates the momentum buffers (contiguous)
    convs = [p for p in sw.model.parameters() if p.dim() == 4 and p.requires_grad]
    state = sw.plain_wrapper.optimizer.state
    assert convs and all('momentum_buffer' in state[p] for p in convs)
    for name, fmt in (('bf16_on_cl', torch.channels_last), ('fp32_off', torch.contiguous_format)):
        sw.apply(name)
        assert all(p.is_contiguous(memory_format=fmt) for p in convs), name
        assert all(state[p]['momentum_buffer'].is_contiguous(memory_format=fmt)
                   for p in convs), name
        assert sw.model.batch_tpp_views == ('auto' if name == 'bf16_on_cl' else False)
