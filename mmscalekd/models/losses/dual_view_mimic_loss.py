"""Dual-view feature mimicking (DFM) loss of ScaleKD.

ScaleKD: Strong Vision Transformers Could Be Excellent Teachers
(https://arxiv.org/abs/2411.06786).
"""
import numbers
from typing import Dict, Literal, Optional, Sequence

import torch.nn.functional as F
from torch import Tensor, nn

from mmscalekd.registry import MODELS

from ..utils.dct import remove_dc_dct, remove_dc_mean

_DC_REMOVAL = ('mean', 'dct')


@MODELS.register_module()
class DualViewMimicLoss(nn.Module):
    r"""Spatial plus DC-removed ("alternative") feature mimicking against one teacher map.

    Both views compare a student prediction with the same teacher map ``T`` after channel-wise
    L2 normalisation at every location (``x / max(||x||_2, 1e-12)`` over ``C``):

    .. math::

        L_{sp} = \frac{\alpha_0}{B} \sum_{b,c,h,w} (\hat S_{sp} - \hat T)^2, \qquad
        L_{fr} = \frac{\alpha_1}{B} \sum_{b,c,h,w}
                 (\widehat{D(S_{fr})} - \widehat{D(T)})^2

    where ``D`` removes the DC component of every channel. The sum runs over every element and
    is divided by the batch size only (the official ``MSELoss(reduction='sum') / B``), so the
    value grows with ``H * W``; since both sides are unit vectors per location, each location
    contributes ``2 * (1 - cos)`` and the loss is at most ``4 * alpha * H * W``.
    Zeroing the (0, 0) DCT-II coefficient and inverting (``dc_removal='dct'``, the official code)
    is exactly the per-channel spatial-mean subtraction (``dc_removal='mean'``, the default; it
    is cheaper), up to rounding. The loss is computed in float32 and the target is detached.

    Args:
        alpha (Sequence[float]): Weights ``(alpha_spatial, alpha_freq)``, both >= 0 and not both
            0. A view whose weight is 0 is skipped: its key is absent from the output and its
            prediction may be None. Defaults to (0.08, 0.06), the official Swin-L configs.
        dc_removal (str): How the frequency view removes the DC component: ``'mean'``
            (spatial-mean subtraction) or ``'dct'`` (explicit DCT-II round trip). Defaults to
            ``'mean'``.
        loss_weight (float): Extra factor on both views, for the project-wide ``loss_weight``
            convention; the view weights are ``alpha``. Defaults to 1.0.

    Shapes:
        - pred_spatial, pred_freq: ``(B, C, H, W)``, or tokens ``(B, H*W, C)`` in raster order
          (a connector's output), which are laid out as ``target``.
        - target: ``(B, C, H, W)``.
        - output: dict with scalar tensors under ``'spatial'`` and/or ``'freq'``.

    Examples:
        >>> import torch
        >>> loss = DualViewMimicLoss(alpha=(0.08, 0.06))
        >>> t = torch.randn(2, 16, 7, 7)
        >>> out = loss(torch.randn(2, 49, 16), torch.randn(2, 16, 7, 7), t)
        >>> sorted(out), out['spatial'].shape
        (['freq', 'spatial'], torch.Size([]))
    """

    def __init__(self,
                 alpha: Sequence[float] = (0.08, 0.06),
                 dc_removal: Literal['mean', 'dct'] = 'mean',
                 loss_weight: float = 1.0) -> None:
        super().__init__()
        if isinstance(alpha, (str, bytes)) or not isinstance(alpha, Sequence):
            raise TypeError('alpha must be a sequence of two non-negative floats '
                            f'(alpha_spatial, alpha_freq), got {alpha!r}')
        if len(alpha) != 2 or not all(
                isinstance(a, numbers.Real) and not isinstance(a, bool) for a in alpha):
            raise ValueError('alpha must hold exactly two non-negative floats '
                             f'(alpha_spatial, alpha_freq), got {alpha!r}')
        if any(a < 0 for a in alpha):
            raise ValueError(f'alpha values must be >= 0, got {alpha!r}')
        if all(a == 0 for a in alpha):
            raise ValueError(f'at least one alpha must be > 0, got {alpha!r}')
        if dc_removal not in _DC_REMOVAL:
            raise ValueError(f'dc_removal must be one of {_DC_REMOVAL}, got {dc_removal!r}')
        if (not isinstance(loss_weight, numbers.Real) or isinstance(loss_weight, bool)
                or loss_weight < 0):
            raise ValueError(f'loss_weight must be a float >= 0, got {loss_weight!r}')
        self.alpha = (float(alpha[0]), float(alpha[1]))
        self.dc_removal = dc_removal
        self.loss_weight = float(loss_weight)

    @property
    def views(self) -> tuple:
        """Names of the active views (weight > 0), in the order ``('spatial', 'freq')``."""
        return tuple(name for name, a in zip(('spatial', 'freq'), self.alpha) if a > 0)

    @staticmethod
    def _as_map(pred: Tensor, target: Tensor, name: str) -> Tensor:
        """Check ``pred`` against ``target`` and lay tokens out as ``(B, C, H, W)``."""
        if not isinstance(pred, Tensor):
            raise TypeError(f'{name} must be a Tensor, got {type(pred).__name__}')
        b, c, h, w = target.shape
        if pred.dim() == 3 and tuple(pred.shape) == (b, h * w, c):
            return pred.transpose(1, 2).reshape(b, c, h, w)
        if tuple(pred.shape) != tuple(target.shape):
            raise ValueError(f'{name} of shape {tuple(pred.shape)} does not match target of '
                             f'shape {tuple(target.shape)}; expected {(b, c, h, w)} or tokens '
                             f'{(b, h * w, c)}')
        return pred

    @staticmethod
    def _mimic(pred: Tensor, target: Tensor) -> Tensor:
        pred = F.normalize(pred, p=2, dim=1, eps=1e-12)
        target = F.normalize(target, p=2, dim=1, eps=1e-12)
        return (pred - target).pow(2).sum() / pred.shape[0]

    def forward(self, pred_spatial: Optional[Tensor], pred_freq: Optional[Tensor],
                target: Tensor) -> Dict[str, Tensor]:
        """Compute the active views.

        Args:
            pred_spatial (Tensor | None): Student prediction for the spatial view,
                ``(B, C, H, W)`` or ``(B, H*W, C)``; may be None when ``alpha[0] == 0``.
            pred_freq (Tensor | None): Student prediction for the frequency view, same shapes;
                may be None when ``alpha[1] == 0``.
            target (Tensor): Teacher map ``(B, C, H, W)``; detached here.

        Returns:
            dict[str, Tensor]: Scalar losses under ``'spatial'`` and/or ``'freq'``.
        """
        if not isinstance(target, Tensor) or target.dim() != 4:
            shape = tuple(target.shape) if isinstance(target, Tensor) else type(target).__name__
            raise ValueError(f'target must be a (B, C, H, W) tensor, got {shape}')
        target = target.detach().float()
        losses = {}
        for name, alpha, pred in (('spatial', self.alpha[0], pred_spatial),
                                  ('freq', self.alpha[1], pred_freq)):
            if alpha == 0:
                continue
            if pred is None:
                raise ValueError(f'the {name} view has alpha {alpha} > 0 but its prediction '
                                 'is None')
            pred = self._as_map(pred, target, f'pred_{name}').float()
            tgt = target
            if name == 'freq':
                remove_dc = remove_dc_mean if self.dc_removal == 'mean' else remove_dc_dct
                pred, tgt = remove_dc(pred), remove_dc(tgt)
            losses[name] = self.loss_weight * alpha * self._mimic(pred, tgt)
        return losses
