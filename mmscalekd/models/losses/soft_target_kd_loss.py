"""Soft-target logit distillation loss (Hinton et al.) as used by ScaleKD.

Distilling the Knowledge in a Neural Network (https://arxiv.org/abs/1503.02531);
ScaleKD: Strong Vision Transformers Could Be Excellent Teachers
(https://arxiv.org/abs/2411.06786).
"""
from typing import Literal

import torch.nn.functional as F
from torch import Tensor, nn

from mmscalekd.registry import MODELS

from ._validation import check_logits, check_positive_float

_MODES = ('ce', 'kl')


@MODELS.register_module()
class SoftTargetKDLoss(nn.Module):
    r"""Soft-target KD between student and teacher logits, scaled by ``T^2``.

    With ``p_t = softmax(target / T)`` and ``log p_s = log_softmax(pred / T)``:

    - ``mode='ce'`` (official ScaleKD ``KDLoss``): cross-entropy with soft targets,
      ``L = -w * T^2 * mean_b sum_k p_t log p_s``.
    - ``mode='kl'``: ``L = w * T^2 * mean_b KL(p_t || p_s)``.

    The two differ by ``w * T^2 * mean_b H(p_t)``, the teacher's entropy, which does not depend
    on the student, so both give the same gradients; ``'kl'`` is 0 when the distributions match,
    ``'ce'`` is not. The ``T^2`` factor keeps the gradient magnitude independent of ``T``.
    The reduction is a mean over the batch of the per-sample sum over classes, in float32; the
    target is detached. The label-loss weight ``1 - w`` of the official code is the distiller's
    ``label_loss_weight``, not returned here.

    Args:
        temperature (float): Softmax temperature ``T`` > 0. Defaults to 1.0 (every ScaleKD
            config).
        loss_weight (float): Weight ``w`` >= 0 (the official ``alpha_kd``). Defaults to 0.5.
        mode (str): ``'ce'`` or ``'kl'``, see above. Defaults to ``'ce'``.

    Shapes:
        - pred: ``(B, K)`` student logits.
        - target: ``(B, K)`` teacher logits.
        - output: scalar.

    Examples:
        >>> import torch
        >>> loss = SoftTargetKDLoss(temperature=1.0, loss_weight=0.5)
        >>> loss(torch.randn(2, 10), torch.randn(2, 10)).shape
        torch.Size([])
    """

    def __init__(self,
                 temperature: float = 1.0,
                 loss_weight: float = 0.5,
                 mode: Literal['ce', 'kl'] = 'ce') -> None:
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
        log_p_s = F.log_softmax(pred.float() / t, dim=1)
        log_p_t = F.log_softmax(target.detach().float() / t, dim=1)
        p_t = log_p_t.exp()
        if self.mode == 'ce':
            per_sample = -(p_t * log_p_s).sum(dim=1)
        else:
            per_sample = (p_t * (log_p_t - log_p_s)).sum(dim=1)
        return self.loss_weight * t * t * per_sample.mean()
