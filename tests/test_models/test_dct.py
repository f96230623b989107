"""Tests of mmscalekd.models.utils.dct (DCT-II, inverse, DC removal)."""
import math

import numpy as np
import pytest
import torch
from torch.testing import assert_close

from mmscalekd.models.utils import dct_2d, idct_2d, remove_dc_dct, remove_dc_mean

GRIDS = [(4, 4), (6, 4), (3, 7), (1, 5)]


def test_dct_2d_hand_computed_2x1() -> None:
    # N=2 along H, 1 along W: X[0] = 2 (a + b), X[1] = 2 (a cos(pi/4) - b cos(pi/4)); the W
    # axis of length 1 multiplies by 2 cos(0) = 2.
    x = torch.tensor([[3.0], [1.0]], dtype=torch.float64)
    expected = torch.tensor([[2 * 2 * 4.0], [2 * 2 * 2 * math.cos(math.pi / 4)]],
                            dtype=torch.float64)
    assert_close(dct_2d(x), expected)


@pytest.mark.parametrize('hw', GRIDS)
def test_dct_2d_matches_scipy(hw: tuple) -> None:
    scipy_fft = pytest.importorskip('scipy.fft')
    x = torch.randn(2, 3, *hw, dtype=torch.float64)
    expected = scipy_fft.dctn(x.numpy(), type=2, axes=(-2, -1), norm=None)
    assert_close(dct_2d(x), torch.from_numpy(np.ascontiguousarray(expected)))
    assert_close(idct_2d(torch.from_numpy(np.ascontiguousarray(expected))), x)


@pytest.mark.parametrize('hw', GRIDS)
def test_idct_inverts_dct(hw: tuple) -> None:
    x = torch.randn(2, 3, *hw, dtype=torch.float64)
    assert_close(idct_2d(dct_2d(x)), x)
    assert_close(dct_2d(idct_2d(x)), x)
    x32 = x.float()
    assert_close(idct_2d(dct_2d(x32)), x32, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize('hw', GRIDS + [(7, 7)])
def test_remove_dc_dct_equals_mean_subtraction(hw: tuple) -> None:
    x = torch.randn(2, 5, *hw, dtype=torch.float64) + 3.0
    out = remove_dc_dct(x)
    assert_close(out, remove_dc_mean(x))
    assert_close(out.mean(dim=(-2, -1)), torch.zeros(2, 5, dtype=torch.float64))
    # Only the DC coefficient is touched.
    coeffs, filtered = dct_2d(x), dct_2d(out)
    assert coeffs[..., 0, 0].abs().min() > 1.0
    assert_close(filtered[..., 0, 0], torch.zeros(2, 5, dtype=torch.float64))
    keep = torch.ones(hw, dtype=torch.bool)
    keep[0, 0] = False
    assert_close(filtered[..., keep], coeffs[..., keep])


def test_dc_coefficient_is_scaled_mean() -> None:
    x = torch.randn(3, 6, 4, dtype=torch.float64)
    assert_close(dct_2d(x)[:, 0, 0], 4 * 6 * 4 * x.mean(dim=(-2, -1)))


def test_remove_dc_mean_hand_computed() -> None:
    x = torch.tensor([[[1.0, 3.0], [5.0, 7.0]]])
    assert_close(remove_dc_mean(x), torch.tensor([[[-3.0, -1.0], [1.0, 3.0]]]))


def test_dct_gradients_flow() -> None:
    x = torch.randn(2, 3, 6, 4, requires_grad=True)
    remove_dc_dct(x).pow(2).sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()


def test_dct_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match=r'\(5,\)'):
        dct_2d(torch.randn(5))
    with pytest.raises(TypeError, match='floating'):
        dct_2d(torch.ones(2, 2, dtype=torch.long))
