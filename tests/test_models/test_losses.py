"""Tests of DualViewMimicLoss, SoftTargetKDLoss and SymmetricKLLoss."""
import math

import numpy as np
import pytest
import torch
from torch.testing import assert_close

from mmscalekd.models.losses import DualViewMimicLoss, SoftTargetKDLoss, SymmetricKLLoss
from mmscalekd.registry import MODELS

# --------------------------------------------------------------------------- DualViewMimicLoss


def _dfm(**kwargs) -> DualViewMimicLoss:
    return MODELS.build(dict(type='DualViewMimicLoss', **kwargs))


def _np_dfm(pred: np.ndarray, target: np.ndarray, alpha: float, remove_dc: bool) -> float:
    """Reference: channel-wise L2 normalisation, sum of squares / B (float64)."""
    if remove_dc:
        pred = pred - pred.mean(axis=(2, 3), keepdims=True)
        target = target - target.mean(axis=(2, 3), keepdims=True)
    pred = pred / np.maximum(np.linalg.norm(pred, axis=1, keepdims=True), 1e-12)
    target = target / np.maximum(np.linalg.norm(target, axis=1, keepdims=True), 1e-12)
    return alpha * float(((pred - target)**2).sum()) / pred.shape[0]


def test_dfm_spatial_hand_computed_1x2x1x1() -> None:
    # pred (3, 4) -> (0.6, 0.8); target (1, 0); squared distance 0.4^2 + 0.8^2 = 0.8.
    loss = _dfm(alpha=(0.08, 0.0))
    pred = torch.tensor([3.0, 4.0]).view(1, 2, 1, 1)
    target = torch.tensor([1.0, 0.0]).view(1, 2, 1, 1)
    out = loss(pred, None, target)
    assert set(out) == {'spatial'}
    assert_close(out['spatial'], torch.tensor(0.08 * 0.8))


def test_dfm_both_views_hand_computed_1x2x1x2() -> None:
    # Channels over 2 locations: pred c0=[1, 3], c1=[2, 2]; target c0=[0, 0], c1=[5, 1].
    pred = torch.tensor([[[[1.0, 3.0]], [[2.0, 2.0]]]])
    target = torch.tensor([[[[0.0, 0.0]], [[5.0, 1.0]]]])
    # Spatial: target is (0, 1) at both locations, so each location gives 2 (1 - cos), with
    # cos = 2 / sqrt(5) and 2 / sqrt(13).
    spatial = 0.08 * (2 * (1 - 2 / math.sqrt(5)) + 2 * (1 - 2 / math.sqrt(13)))
    # Frequency: minus the mean, pred c0=[-1, 1], c1=[0, 0] -> (-1, 0), (1, 0); target
    # c1=[2, -2] -> (0, 1), (0, -1). Squared distances 2 + 2.
    freq = 0.06 * 4.0
    for dc_removal in ('mean', 'dct'):
        out = _dfm(alpha=(0.08, 0.06), dc_removal=dc_removal)(pred, pred, target)
        assert_close(out['spatial'], torch.tensor(spatial))
        assert_close(out['freq'], torch.tensor(freq))


def test_dfm_matches_numpy_reference_and_divides_by_batch() -> None:
    pred_sp, pred_fr, target = (torch.randn(3, 5, 4, 3, dtype=torch.float64) for _ in range(3))
    out = _dfm(alpha=(0.08, 0.06))(pred_sp, pred_fr, target)
    ref_sp = _np_dfm(pred_sp.numpy(), target.numpy(), 0.08, remove_dc=False)
    ref_fr = _np_dfm(pred_fr.numpy(), target.numpy(), 0.06, remove_dc=True)
    assert_close(out['spatial'].double(), torch.tensor(ref_sp, dtype=torch.float64), rtol=1e-5,
                 atol=1e-6)
    assert_close(out['freq'].double(), torch.tensor(ref_fr, dtype=torch.float64), rtol=1e-5,
                 atol=1e-6)
    # The same sample twice gives the same value as once (division by B, not by elements).
    one = _dfm(alpha=(0.08, 0.06))(pred_sp[:1], pred_fr[:1], target[:1])
    two = _dfm(alpha=(0.08, 0.06))(pred_sp[:1].repeat(2, 1, 1, 1),
                                   pred_fr[:1].repeat(2, 1, 1, 1), target[:1].repeat(2, 1, 1, 1))
    assert_close(one['spatial'], two['spatial'])
    assert_close(one['freq'], two['freq'])


def test_dfm_mean_and_dct_dc_removal_agree() -> None:
    pred, target = torch.randn(2, 6, 5, 3), torch.randn(2, 6, 5, 3)
    mean = _dfm(dc_removal='mean')(pred, pred, target)
    dct = _dfm(dc_removal='dct')(pred, pred, target)
    assert_close(mean['freq'], dct['freq'], rtol=1e-4, atol=1e-5)
    assert_close(mean['spatial'], dct['spatial'])


def test_dfm_tokens_equal_maps_and_zero_when_equal() -> None:
    target = torch.randn(2, 8, 3, 2)
    pred = torch.randn(2, 8, 3, 2)
    tokens = pred.flatten(2).transpose(1, 2)  # (B, H*W, C), raster order
    loss = _dfm()
    a, b = loss(pred, pred, target), loss(tokens, tokens, target)
    assert_close(a['spatial'], b['spatial'])
    assert_close(a['freq'], b['freq'])
    assert a['spatial'] > 0 and a['freq'] > 0
    same = loss(target.clone(), target.clone(), target)
    assert_close(same['spatial'], torch.tensor(0.0))
    assert_close(same['freq'], torch.tensor(0.0))


def test_dfm_target_gets_no_gradient() -> None:
    pred = torch.randn(2, 4, 3, 3, requires_grad=True)
    target = torch.randn(2, 4, 3, 3, requires_grad=True)
    out = _dfm()(pred, pred, target)
    (out['spatial'] + out['freq']).backward()
    assert target.grad is None
    assert pred.grad is not None and pred.grad.abs().sum() > 0


def test_dfm_zero_alpha_view_is_absent() -> None:
    pred, target = torch.randn(2, 4, 2, 2), torch.randn(2, 4, 2, 2)
    assert set(_dfm(alpha=(0.0, 0.06))(None, pred, target)) == {'freq'}
    assert set(_dfm(alpha=(0.08, 0))(pred, None, target)) == {'spatial'}


def test_dfm_errors() -> None:
    pred, target = torch.randn(2, 4, 3, 3), torch.randn(2, 4, 3, 2)
    with pytest.raises(ValueError) as err:
        _dfm()(pred, pred, target)
    assert '(2, 4, 3, 3)' in str(err.value) and '(2, 4, 3, 2)' in str(err.value)
    with pytest.raises(ValueError, match='None'):
        _dfm()(None, target, target)
    with pytest.raises(ValueError, match='alpha'):
        _dfm(alpha=(0.1, ))
    with pytest.raises(ValueError, match='>= 0'):
        _dfm(alpha=(-0.1, 0.1))
    with pytest.raises(ValueError, match='at least one'):
        _dfm(alpha=(0, 0.0))
    with pytest.raises(ValueError, match='alpha'):
        _dfm(alpha=(True, 0.1))
    with pytest.raises(TypeError, match='alpha'):
        _dfm(alpha=0.08)
    with pytest.raises(ValueError, match="'mean', 'dct'"):
        _dfm(dc_removal='fft')


# ---------------------------------------------------------------------------- SoftTargetKDLoss


def _kd(**kwargs) -> SoftTargetKDLoss:
    return MODELS.build(dict(type='SoftTargetKDLoss', **kwargs))


def test_kd_hand_computed() -> None:
    # Student uniform (0.5, 0.5); teacher (0.25, 0.75) at T=2 from logits (0, 2 ln 3).
    pred = torch.zeros(1, 2)
    target = torch.tensor([[0.0, 2 * math.log(3.0)]])
    ce = -(0.25 * math.log(0.5) + 0.75 * math.log(0.5))  # = ln 2
    kl = 0.25 * math.log(0.25 / 0.5) + 0.75 * math.log(0.75 / 0.5)
    assert_close(_kd(temperature=2.0, loss_weight=0.5)(pred, target),
                 torch.tensor(0.5 * 4 * ce))
    assert_close(_kd(temperature=2.0, loss_weight=0.5, mode='kl')(pred, target),
                 torch.tensor(0.5 * 4 * kl))


def test_kd_matches_numpy_reference() -> None:
    pred, target = torch.randn(4, 7, dtype=torch.float64), torch.randn(4, 7, dtype=torch.float64)
    t, w = 3.0, 0.7

    def softmax(z: np.ndarray) -> np.ndarray:
        e = np.exp(z - z.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)

    p_s, p_t = softmax(pred.numpy() / t), softmax(target.numpy() / t)
    ce = -w * t * t * (p_t * np.log(p_s)).sum(axis=1).mean()
    kl = w * t * t * (p_t * np.log(p_t / p_s)).sum(axis=1).mean()
    got_ce = _kd(temperature=t, loss_weight=w)(pred, target)
    got_kl = _kd(temperature=t, loss_weight=w, mode='kl')(pred, target)
    assert_close(got_ce.double(), torch.tensor(ce, dtype=torch.float64), rtol=1e-5, atol=1e-6)
    assert_close(got_kl.double(), torch.tensor(kl, dtype=torch.float64), rtol=1e-5, atol=1e-6)


def test_kd_ce_minus_kl_is_teacher_entropy_and_same_gradients() -> None:
    t, w = 2.0, 0.5
    target = torch.randn(3, 6)
    grads = {}
    values = {}
    for mode in ('ce', 'kl'):
        pred = torch.randn(3, 6, generator=torch.Generator().manual_seed(1), requires_grad=True)
        values[mode] = _kd(temperature=t, loss_weight=w, mode=mode)(pred, target)
        values[mode].backward()
        grads[mode] = pred.grad
    p_t = torch.softmax(target / t, dim=1)
    entropy = -(p_t * p_t.log()).sum(dim=1).mean()
    assert_close(values['ce'] - values['kl'], w * t * t * entropy)
    assert_close(grads['ce'], grads['kl'])


def test_kd_equal_logits_and_target_gradient() -> None:
    logits = torch.randn(2, 5)
    assert_close(_kd(mode='kl')(logits, logits), torch.tensor(0.0))
    assert _kd(mode='ce')(logits, logits) > 0  # the teacher entropy remains
    pred = torch.randn(2, 5, requires_grad=True)
    target = torch.randn(2, 5, requires_grad=True)
    _kd()(pred, target).backward()
    assert target.grad is None and pred.grad is not None


def test_kd_errors() -> None:
    with pytest.raises(ValueError, match='temperature'):
        _kd(temperature=0.0)
    with pytest.raises(TypeError, match='temperature'):
        _kd(temperature='1')
    with pytest.raises(ValueError, match='loss_weight'):
        _kd(loss_weight=-0.5)
    with pytest.raises(ValueError, match="'ce', 'kl'"):
        _kd(mode='mse')
    with pytest.raises(ValueError) as err:
        _kd()(torch.randn(2, 5), torch.randn(2, 6))
    assert '(2, 5)' in str(err.value) and '(2, 6)' in str(err.value)
    with pytest.raises(ValueError, match='B, K'):
        _kd()(torch.randn(2, 5, 1), torch.randn(2, 5, 1))


# ----------------------------------------------------------------------------- SymmetricKLLoss


def _skl(**kwargs) -> SymmetricKLLoss:
    return MODELS.build(dict(type='SymmetricKLLoss', **kwargs))


def test_symmetric_kl_and_js_hand_computed() -> None:
    pred = torch.zeros(1, 2)  # p = (0.5, 0.5)
    target = torch.tensor([[0.0, math.log(3.0)]])  # q = (0.25, 0.75)
    kl_qp = 0.25 * math.log(0.25 / 0.5) + 0.75 * math.log(0.75 / 0.5)
    kl_pq = 0.5 * math.log(0.5 / 0.25) + 0.5 * math.log(0.5 / 0.75)
    m = (0.375, 0.625)
    kl_qm = 0.25 * math.log(0.25 / m[0]) + 0.75 * math.log(0.75 / m[1])
    kl_pm = 0.5 * math.log(0.5 / m[0]) + 0.5 * math.log(0.5 / m[1])
    assert_close(_skl()(pred, target), torch.tensor((kl_qp + kl_pq) / 2))
    assert_close(_skl(mode='js')(pred, target), torch.tensor((kl_qm + kl_pm) / 2))
    assert_close(_skl(loss_weight=2.0, mode='js')(pred, target), torch.tensor(kl_qm + kl_pm))
    # Temperature: logits scaled by T at temperature T give the same distributions, times T^2.
    assert_close(_skl(temperature=2.0)(2 * pred, 2 * target),
                 torch.tensor(4 * (kl_qp + kl_pq) / 2))


def test_symmetric_kl_zero_when_equal_symmetric_and_bounded() -> None:
    logits = torch.randn(3, 8)
    other = torch.randn(3, 8)
    for mode in ('skl', 'js'):
        assert_close(_skl(mode=mode)(logits, logits.clone()), torch.tensor(0.0))
        assert_close(_skl(mode=mode)(logits, other), _skl(mode=mode)(other, logits))
        assert _skl(mode=mode)(logits, other) > 0
    # Nearly disjoint distributions: JS approaches ln 2 from below, symmetric KL is unbounded.
    a = torch.tensor([[30.0, -30.0]])
    js = _skl(mode='js')(a, -a)
    assert js <= math.log(2.0) + 1e-6
    assert_close(js, torch.tensor(math.log(2.0)), rtol=1e-4, atol=1e-4)
    assert _skl(mode='skl')(a, -a) > 10


def test_symmetric_kl_target_gets_no_gradient() -> None:
    for mode in ('skl', 'js'):
        pred = torch.randn(2, 5, requires_grad=True)
        target = torch.randn(2, 5, requires_grad=True)
        _skl(mode=mode)(pred, target).backward()
        assert target.grad is None
        assert pred.grad is not None and torch.isfinite(pred.grad).all()


def test_symmetric_kl_errors() -> None:
    with pytest.raises(ValueError, match="'skl', 'js'"):
        _skl(mode='jsd')
    with pytest.raises(ValueError, match='temperature'):
        _skl(temperature=-1.0)
    with pytest.raises(ValueError) as err:
        _skl()(torch.randn(2, 5), torch.randn(3, 5))
    assert '(2, 5)' in str(err.value) and '(3, 5)' in str(err.value)
