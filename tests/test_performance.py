"""Performance options of the distillation step: same results with each on and off.

No timing assertions: the optimisations must not change what is computed (float tolerance),
AMP must stay finite and close to fp32, and the benchmark tool must write every field.
"""
import copy
import importlib.util
import json
import os.path as osp
from typing import Dict, Tuple

import pytest
import torch
import torch.nn.functional as F

from mmscalekd.registry import MODELS
from tests import _builders as B

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
TPP, FINAL = (64, (4, 4)), (128, (2, 2))  # tiny Swin teacher at 64 px
RESNET = dict(type='ResNet', depth=18, base_channels=8, stem_channels=8, out_indices=(2, 3))


def _distiller(**kwargs) -> torch.nn.Module:
    stages = B.stages((32, (4, 4)), (64, (2, 2)), TPP, FINAL)
    return MODELS.build(B.distiller(B.classifier(RESNET, 64), B.swin_teacher(), stages,
                                    **kwargs))


def _step(model: torch.nn.Module, x: torch.Tensor,
          samples: list) -> Tuple[Dict[str, torch.Tensor], Dict[str, torch.Tensor]]:
    """Losses and gradients of one loss step (no optimizer)."""
    model.zero_grad(set_to_none=True)
    losses = model(x, samples, mode='loss')
    sum(losses.values()).backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    return {k: v.detach() for k, v in losses.items()}, grads


def _assert_same(a, b, rel: float = 1e-4) -> None:
    """Same keys; every loss and gradient equal up to ``rel`` times the tensor's largest
    magnitude (float rounding: other kernels may sum in another order)."""
    (loss_a, grad_a), (loss_b, grad_b) = a, b
    assert loss_a.keys() == loss_b.keys() and grad_a.keys() == grad_b.keys()
    for k in list(loss_a) + list(grad_a):
        x, y = (loss_a[k], loss_b[k]) if k in loss_a else (grad_a[k], grad_b[k])
        err = float((x - y).abs().max())
        assert err <= rel * float(x.abs().max()) + 1e-7, (k, err, float(x.abs().max()))


@pytest.mark.parametrize('flag', ['inference_mode_targets', 'batch_tpp_views'])
def test_option_on_and_off_give_the_same_losses_and_gradients(flag):
    base = _distiller(**{flag: True})
    off = copy.deepcopy(base)
    setattr(off, flag, False)
    x, samples = B.batch(64)
    on_result = _step(base, x, samples)
    off_result = _step(off, x, samples)
    assert len(on_result[1]) == sum(p.requires_grad for p in base.parameters())
    _assert_same(on_result, off_result)


def test_defaults_inference_mode_on_batched_views_auto():
    model = _distiller()
    assert model.inference_mode_targets is True and model.batch_tpp_views == 'auto'
    # 'auto' batches on CUDA only (measured faster on an H200, not on the CPU: benchmark.md)
    assert model.batches_tpp_views_on('cuda') and not model.batches_tpp_views_on('cpu')
    for forced in (True, False):
        model.batch_tpp_views = forced
        assert model.batches_tpp_views_on('cuda') is forced
        assert model.batches_tpp_views_on('cpu') is forced


@pytest.mark.parametrize('bad,error', [('yes', ValueError), ('Auto', ValueError),
                                       (1, TypeError), (None, TypeError)])
def test_batch_tpp_views_rejects_other_values(bad, error):
    with pytest.raises(error, match=f"batch_tpp_views must be True, False or 'auto'.*{bad!r}"):
        _distiller(batch_tpp_views=bad)


def test_channels_last_gives_the_same_losses_and_gradients():
    # float64: in float32 a pre-activation within rounding of a ReLU's zero (BN bias 0 at
    # init) can flip its mask between the two kernel orders and move a whole gradient
    # (seen with one random initialisation), which says nothing about the layout.
    model = _distiller(batch_tpp_views=True).double()
    cl = copy.deepcopy(model).to(memory_format=torch.channels_last)
    assert cl.connectors['s4_spatial'].stem[0].weight.is_contiguous(
        memory_format=torch.channels_last)
    x, samples = B.batch(64)
    x = x.double()
    _assert_same(_step(model, x, samples),
                 _step(cl, x.contiguous(memory_format=torch.channels_last), samples))


def test_batched_views_make_one_last_stage_call_unbatched_two():
    model = _distiller(logit_loss=None, batch_tpp_views=True)
    calls = []
    original = model.teacher.forward_last_stage

    def counting(tokens):
        calls.append(tokens.shape[0])
        return original(tokens)

    model.teacher.forward_last_stage = counting
    x, samples = B.batch(64)
    model.loss(x, samples)
    assert calls == [4]  # both views of s3, B=2 each, in one call
    calls.clear()
    model.batch_tpp_views = False
    model.loss(x, samples)
    assert calls == [2, 2]
    calls.clear()
    model.batch_tpp_views = 'auto'
    model.loss(x, samples)
    assert calls == [2, 2]  # 'auto' on CPU: one call per view of s3 (B=2)


def test_batched_views_are_not_used_while_the_teacher_trains():
    # A train-mode teacher draws stochastic depth per call: batching would change the draws.
    model = _distiller(teacher_train_mode=True, batch_tpp_views=True)
    model.train()
    assert model.teacher.training
    calls = []
    original = model.teacher.forward_last_stage
    model.teacher.forward_last_stage = lambda t: calls.append(t.shape[0]) or original(t)
    x, samples = B.batch(64)
    model.loss(x, samples)
    assert calls == [2, 2]


def test_inference_mode_targets_are_normal_tensors_a_loss_may_save():
    model = _distiller()
    x, _ = B.batch(64)
    targets = model._teacher_targets(x)
    assert not targets.feature.is_inference() and not targets.logits.is_inference()
    assert not targets.feature.requires_grad
    # mse_loss saves its target for backward: an inference tensor would raise here.
    pred = torch.randn_like(targets.feature, requires_grad=True)
    F.mse_loss(pred, targets.feature).backward()
    F.mse_loss(torch.randn_like(targets.logits, requires_grad=True),
               targets.logits).backward()
    with torch.no_grad():
        plain = model.teacher.forward_targets(x)
    torch.testing.assert_close(targets.feature, plain.feature)
    torch.testing.assert_close(targets.logits, plain.logits)


def test_teacher_head_runs_only_when_a_logit_loss_exists():
    calls = []
    for logit_loss in (None, dict(type='SoftTargetKDLoss')):
        model = _distiller(logit_loss=logit_loss)
        model.teacher.model.head.register_forward_hook(lambda *a: calls.append(1))
        x, samples = B.batch(64)
        targets = model._teacher_targets(x)
        assert (targets.logits is None) == (logit_loss is None)
        model.loss(x, samples)
    assert len(calls) == 2  # the two passes of the model with a logit loss only


def test_option_flags_are_validated():
    # batch_tpp_views also takes 'auto': test_batch_tpp_views_rejects_other_values
    stages = B.stages((32, (4, 4)), (64, (2, 2)), TPP, FINAL)
    cfg = B.distiller(B.classifier(RESNET, 64), B.swin_teacher(), stages,
                      inference_mode_targets='yes')
    with pytest.raises(TypeError, match='inference_mode_targets'):
        MODELS.build(cfg)


# ------------------------------------------------------------------------ mixed precision
def _connector(learnable: bool = False) -> torch.nn.Module:
    return MODELS.build(dict(type='CrossAttentionProjector', in_channels=16, embed_dims=32,
                             student_hw=(4, 4), query_hw=(2, 2), num_heads=4,
                             learnable_query=learnable))


def test_connector_casts_inputs_to_its_weights_outside_autocast():
    cap = _connector()
    x = torch.randn(2, 16, 4, 4)
    q = torch.randn(2, 4, 32)
    ref = cap(x, query=q)
    # bf16 student map and queries (e.g. produced under autocast) into an fp32 connector.
    out = cap(x.bfloat16(), query=q.bfloat16())
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, ref, rtol=0.05, atol=0.05)
    # A bf16 connector with fp32 inputs: runs in bf16 throughout.
    out16 = copy.deepcopy(cap).bfloat16()(x, query=q)
    assert out16.dtype == torch.bfloat16
    torch.testing.assert_close(out16.float(), ref, rtol=0.1, atol=0.1)


def test_connector_under_autocast_keeps_tokens_in_the_autocast_dtype():
    cap = _connector(learnable=True)
    seen = {}
    cap.k.register_forward_hook(lambda m, i, o: seen.update(k_in=i[0].dtype))
    with torch.autocast('cpu', dtype=torch.bfloat16):
        out = cap(torch.randn(2, 16, 4, 4))
    assert seen['k_in'] == torch.bfloat16  # pos_embed does not promote the tokens to fp32
    assert torch.isfinite(out.float()).all()


def test_dfm_loss_is_float32_under_autocast():
    loss = MODELS.build(dict(type='DualViewMimicLoss'))
    t = torch.randn(2, 8, 3, 3)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        out = loss(torch.randn(2, 9, 8).bfloat16(), torch.randn(2, 8, 3, 3).bfloat16(),
                   t.bfloat16())
    assert all(v.dtype == torch.float32 for v in out.values())


# Documented in docs/benchmark.md: over 3 SGD steps of the tiny distiller, the bf16-autocast
# total loss stays within 3 % of fp32 and every term within 10 % (measured, seeds 0-2: total
# <= 1.4 %, worst term 7.7 %, a frequency view: DC removal on a 2x2 / 4x4 map is the most
# rounding-sensitive part at these tiny widths).
AMP_TOTAL_RTOL = 0.03
AMP_TERM_RTOL = 0.10


def test_amp_bf16_three_steps_stay_finite_and_close_to_fp32():
    torch.manual_seed(0)
    fp32 = _distiller()
    amp = copy.deepcopy(fp32)
    x, samples = B.batch(64)
    history = {}
    for name, model in (('fp32', fp32), ('amp', amp)):
        opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.01,
                              momentum=0.9)
        steps = []
        for _ in range(3):
            opt.zero_grad(set_to_none=True)
            with torch.autocast('cpu', dtype=torch.bfloat16, enabled=name == 'amp'):
                losses = model(x, samples, mode='loss')
            assert all(v.dtype == torch.float32 for v in losses.values())
            sum(losses.values()).backward()
            opt.step()
            steps.append({k: float(v.detach()) for k, v in losses.items()})
        history[name] = steps
    for ref, got in zip(history['fp32'], history['amp']):
        for key, value in ref.items():
            assert torch.isfinite(torch.tensor(got[key])), key
            assert abs(got[key] - value) <= AMP_TERM_RTOL * abs(value), (key, value, got[key])
        total_ref, total_got = sum(ref.values()), sum(got.values())
        assert abs(total_got - total_ref) <= AMP_TOTAL_RTOL * total_ref, (total_ref, total_got)
    assert history['amp'][0] != history['amp'][2]  # the steps did update the model


# ------------------------------------------------------------------------ benchmark tool
@pytest.mark.slow
def test_benchmark_tool_writes_every_field(tmp_path, monkeypatch):
    # A torch.compile that fails must fall back to eager timing with a warning.
    def broken_compile(self, *args, **kwargs):
        raise RuntimeError('no compiler backend here')

    monkeypatch.setattr(torch.nn.Module, 'compile', broken_compile)
    spec = importlib.util.spec_from_file_location(
        'benchmark_distill', osp.join(ROOT, 'tools', 'analysis_tools', 'benchmark_distill.py'))
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    out_file = tmp_path / 'bench.json'
    with pytest.warns(UserWarning, match='torch.compile is not usable here'):
        tool.main([osp.join(ROOT, 'tests', 'data', 'configs', 'tiny_scalekd_bench.py'),
                   '--batch-size', '2', '--iters', '2', '--warmup', '1', '--amp',
                   '--ab-options', '--compile', '--out', str(out_file),
                   '--cfg-options', 'model.batch_tpp_views=False'])
    out = json.loads(out_file.read_text())
    for key in ('config', 'device', 'threads', 'batch_size', 'input_size', 'amp',
                'channels_last', 'compiled', 'batch_tpp_views', 'inference_mode_targets',
                'step', 'ranges', 'profiled_step_s', 'profiler_overhead', 'forward_in_parts',
                'teacher_targets_over_plain', 'params', 'memory'):
        assert key in out, key
    step = out['step']
    assert len(step['times_s']) == len(step['cpu_times_s']) == 2 and step['median_s'] > 0
    assert step['images_per_s'] == pytest.approx(2 / step['median_s'])
    # Every range of the real step was read back from the profiler, as often as it runs:
    # one TPP stage (s3) and one projector stage (s4), a DFM loss each, one label and KD loss.
    from mmscalekd.models.distillers import PROFILE_RANGES
    ranges = out['ranges']
    assert set(ranges) == set(PROFILE_RANGES) | set(tool.STEP_RANGES) | {tool.PLAIN_RANGE}
    calls = {name: r['calls_per_step'] for name, r in ranges.items()}
    assert calls == {**{n: 1.0 for n in ranges}, 'scalekd/dfm_loss': 2.0}
    assert all(r['s_per_step'] > 0 for r in ranges.values())
    assert sum(ranges[n]['share_of_step'] for n in tool.STEP_RANGES) == pytest.approx(1.0)
    assert out['profiled_step_s'] == pytest.approx(
        sum(ranges[n]['s_per_step'] for n in tool.STEP_RANGES))
    # The named parts lie inside the forward range and cover most of it.
    assert 0.5 < out['forward_in_parts'] <= 1.0
    assert out['teacher_targets_over_plain'] == pytest.approx(
        ranges['scalekd/teacher_targets']['s_per_step'] / ranges[tool.PLAIN_RANGE]['s_per_step'])
    assert out['batch_tpp_views'] is False and out['amp'] is True
    assert out['compile_requested'] is True and out['compiled'] is False
    assert 'no compiler backend here' in out['compile_error']
    assert set(out['options_ab']) == {'batch_tpp_views', 'inference_mode_targets'}
    for r in out['options_ab'].values():
        assert len(r['on_times_s']) == len(r['off_times_s']) == 2
        assert all(t > 0 for t in r['on_times_s'] + r['off_times_s'])
        assert r['on_over_off'] == pytest.approx(r['on_median_s'] / r['off_median_s'])
    # A thin tool: no private method of the distiller or its parts is called.
    source = open(osp.join(ROOT, 'tools', 'analysis_tools', 'benchmark_distill.py')).read()
    import re
    assert not re.search(r'model\.(\w+\.)*_[a-z]\w*\(', source)
    assert out['input_size'] == [64, 64]
    # Student ResNet-18/8 + head, four connectors, the tiny Swin: exact, build-determined.
    assert out['params']['projectors'] == sum(
        p.numel() for p in _distiller().connectors.parameters())
    assert out['params']['trainable'] == out['params']['student'] + out['params']['projectors']
    assert out['memory']['cpu_peak_rss_mib'] > 0
