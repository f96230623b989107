"""2-D DCT-II, its inverse and DC removal for the frequency view of ScaleKD's DFM.

ScaleKD: Strong Vision Transformers Could Be Excellent Teachers
(https://arxiv.org/abs/2411.06786).

All functions are pure and act on the last two axes ``(..., H, W)``; ``H != W`` is supported.
The transform follows scipy's unnormalised ``norm=None`` DCT-II convention::

    X[k] = 2 * sum_n x[n] * cos(pi * k * (2n + 1) / (2N))

and ``idct_2d`` is its exact inverse (scipy's ``idct(type=2)``, i.e. a scaled DCT-III).
The matrices are built from closed-form cosines (in float64, then cast) and cached per
``(n, dtype, device)``.
"""
import math
from functools import lru_cache
from typing import Tuple

import torch
from torch import Tensor

__all__ = ['dct_2d', 'idct_2d', 'remove_dc_dct', 'remove_dc_mean']


@lru_cache(maxsize=64)
def _dct_matrices(n: int, dtype: torch.dtype, device: torch.device) -> Tuple[Tensor, Tensor]:
    """Forward and inverse 1-D DCT-II matrices of size ``n``.

    Args:
        n (int): Transform length.
        dtype (torch.dtype): dtype of the returned matrices.
        device (torch.device): device of the returned matrices.

    Returns:
        tuple[Tensor, Tensor]: ``(D, D_inv)``, both ``(n, n)``, with ``y = D @ x`` the DCT-II
        of ``x`` and ``D_inv @ y == x``.
    """
    k = torch.arange(n, dtype=torch.float64).unsqueeze(1)
    i = torch.arange(n, dtype=torch.float64).unsqueeze(0)
    cos = torch.cos(math.pi * k * (2 * i + 1) / (2 * n))  # (k, i)
    forward = 2.0 * cos
    # Inverse: x[i] = (1 / n) * (y[0] / 2 + sum_{k>=1} y[k] cos(...)), i.e. the DCT-III
    # scaled by 1 / (2n); the cosine basis is orthogonal with norms n (k=0) and n/2 (k>0).
    weight = torch.ones(n, dtype=torch.float64)
    weight[0] = 0.5
    inverse = (cos * weight.unsqueeze(1)).t() / n  # (i, k)
    return (forward.to(device=device, dtype=dtype), inverse.to(device=device, dtype=dtype))


def _check_input(x: Tensor, name: str) -> None:
    if not isinstance(x, Tensor):
        raise TypeError(f'{name} expects a torch.Tensor, got {type(x).__name__}')
    if x.dim() < 2:
        raise ValueError(f'{name} expects a tensor of shape (..., H, W), got shape '
                         f'{tuple(x.shape)}')
    if not x.is_floating_point():
        raise TypeError(f'{name} expects a floating-point tensor, got dtype {x.dtype}')


def dct_2d(x: Tensor) -> Tensor:
    """2-D DCT-II over the last two axes (scipy ``dctn(x, type=2, axes=(-2, -1))``).

    Args:
        x (Tensor): Input of shape ``(..., H, W)``.

    Returns:
        Tensor: Coefficients of shape ``(..., H, W)``; ``[..., 0, 0]`` is ``4 * H * W`` times
        the spatial mean.
    """
    _check_input(x, 'dct_2d')
    h, w = x.shape[-2:]
    d_h, _ = _dct_matrices(h, x.dtype, x.device)
    d_w, _ = _dct_matrices(w, x.dtype, x.device)
    # Along W (x @ D_w^T), then along H (D_h @ .).
    return torch.matmul(d_h, torch.matmul(x, d_w.t()))


def idct_2d(x: Tensor) -> Tensor:
    """Exact inverse of :func:`dct_2d` over the last two axes.

    Args:
        x (Tensor): DCT-II coefficients of shape ``(..., H, W)``.

    Returns:
        Tensor: Signal of shape ``(..., H, W)`` with ``idct_2d(dct_2d(s)) == s``.
    """
    _check_input(x, 'idct_2d')
    h, w = x.shape[-2:]
    _, i_h = _dct_matrices(h, x.dtype, x.device)
    _, i_w = _dct_matrices(w, x.dtype, x.device)
    return torch.matmul(i_h, torch.matmul(x, i_w.t()))


def remove_dc_dct(x: Tensor) -> Tensor:
    """Zero the DC coefficient ``(0, 0)`` of every map and transform back.

    This is the official ScaleKD frequency-view filter. It equals :func:`remove_dc_mean` up to
    rounding, because the DC basis function is constant.

    Args:
        x (Tensor): Maps of shape ``(..., H, W)``, e.g. ``(B, C, H, W)``.

    Returns:
        Tensor: Filtered maps of shape ``(..., H, W)``.
    """
    coeffs = dct_2d(x)
    mask = torch.ones(coeffs.shape[-2:], dtype=coeffs.dtype, device=coeffs.device)
    mask[0, 0] = 0
    return idct_2d(coeffs * mask)


def remove_dc_mean(x: Tensor) -> Tensor:
    """Subtract each map's spatial mean (the closed form of :func:`remove_dc_dct`).

    Args:
        x (Tensor): Maps of shape ``(..., H, W)``, e.g. ``(B, C, H, W)``.

    Returns:
        Tensor: Zero-mean maps of shape ``(..., H, W)``.
    """
    _check_input(x, 'remove_dc_mean')
    return x - x.mean(dim=(-2, -1), keepdim=True)
