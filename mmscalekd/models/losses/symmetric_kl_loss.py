"""Symmetric KL / Jensen-Shannon logit loss of SSLD (PaddleClas).

Beyond Self-Supervision: A Simple Yet Effective Network Distillation Alternative to Improve
Backbones (Cui et al., https://arxiv.org/abs/2103.05959); PaddleClas SSLD.
"""
import math
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mmscalekd.registry import MODELS

from ._validation import check_logits, check_positive_float

_MODES = ('skl', 'js')


@MODELS.register_module()
class SymmetricKLLoss(nn.Module):
    r"""Label-free logit distillation with a symmetric divergence (SSLD).

    With ``q = softmax(target / T)`` (teacher) and ``p = softmax(pred / T)`` (student):

    - ``mode='skl'``: ``L = w * T^2 * mean_b (KL(q || p) + KL(p || q)) / 2``. This is what
      PaddleClas computes for SSLD (``JSDivLoss`` in 1.x, ``DMLLoss`` in 2.x) although its docs
      call it a "JS divergence"; it is unbounded.
    - ``mode='js'``: the true Jensen-Shannon divergence with the mixture ``m = (p + q) / 2``,
      ``L = w * T^2 * mean_b (KL(q || m) + KL(p || m)) / 2``, bounded by ``w * T^2 * ln 2``.

    Both are 0 when the distributions match and symmetric in ``p`` and ``q``. The sum runs over
    classes, the mean over the batch (PaddleClas's ``batchmean``), in float32; the target is
    detached, so the gradient flows through ``p`` only (in both KL directions). PaddleClas has no
    temperature (``T = 1``); for ``T != 1`` the ``T^2`` factor follows :class:`SoftTargetKDLoss`.

    Args:
        temperature (float): Softmax temperature ``T`` > 0. Defaults to 1.0 (SSLD).
        loss_weight (float): Weight ``w`` >= 0. Defaults to 1.0.
        mode (str): ``'skl'`` (PaddleClas) or ``'js'`` (mixture JS). Defaults to ``'skl'``.

    Shapes:
        - pred: ``(B, K)`` student logits.
        - target: ``(B, K)`` teacher logits.
        - output: scalar.

    Examples:
        >>> import torch
        >>> loss = SymmetricKLLoss(mode='js')
        >>> bool(loss(torch.randn(2, 10), torch.randn(2, 10)) <= math.log(2))
        True
    """

    def __init__(self,
                 temperature: float = 1.0,
                 loss_weight: float = 1.0,
                 mode: Literal['skl', 'js'] = 'skl') -> None:
        super().__init__()
        self.temperature = check_positive_float(temperature, 'temperature')
        self.loss_weight = check_positive_float(loss_weight, 'loss_weight', allow_zero=True)
        if mode not in _MODES:
            raise ValueError(f'mode must be one of {_MODES}, got {mode!r}')
        self.mode = mode

    def forward(self, pred: Tensor, target: Tensor) -> Tensor:
        """Compute the loss.

        Args:
            pred (Tensor): Student logits ``(B, K)``.
            target (Tensor): Teacher logits ``(B, K)``; detached here.

        Returns:
            Tensor: Scalar loss.
        """
        check_logits(pred, target)
        t = self.temperature
        log_p = F.log_softmax(pred.float() / t, dim=1)
        log_q = F.log_softmax(target.detach().float() / t, dim=1)
        p, q = log_p.exp(), log_q.exp()
        if self.mode == 'skl':
            # KL(q||p) + KL(p||q) = sum (q - p) (log q - log p)
            per_sample = 0.5 * ((q - p) * (log_q - log_p)).sum(dim=1)
        else:
            # log m computed in log space: log((p + q) / 2) = logaddexp(log p, log q) - ln 2
            log_m = torch.logaddexp(log_p, log_q) - math.log(2.0)
            per_sample = 0.5 * ((q * (log_q - log_m)).sum(dim=1)
                                + (p * (log_p - log_m)).sum(dim=1))
        return self.loss_weight * t * t * per_sample.mean()
