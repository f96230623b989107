"""Argument checks shared by the logit losses (internal)."""
import numbers

from torch import Tensor


def check_positive_float(value: object, name: str, allow_zero: bool = False) -> float:
    """Return ``value`` as a float, or raise if it is not a real number > 0 (>= 0 if allowed)."""
    bound = '>= 0' if allow_zero else '> 0'
    if not isinstance(value, numbers.Real) or isinstance(value, bool):
        raise TypeError(f'{name} must be a float {bound}, got {value!r}')
    if value < 0 or (value == 0 and not allow_zero):
        raise ValueError(f'{name} must be a float {bound}, got {value!r}')
    return float(value)


def check_logits(pred: Tensor, target: Tensor) -> None:
    """Raise unless ``pred`` and ``target`` are logits of the same ``(B, K)`` shape."""
    for name, x in (('pred', pred), ('target', target)):
        if not isinstance(x, Tensor):
            raise TypeError(f'{name} must be a Tensor, got {type(x).__name__}')
    if pred.dim() != 2 or tuple(pred.shape) != tuple(target.shape):
        raise ValueError(f'pred and target must be logits of the same shape (B, K); got pred '
                         f'{tuple(pred.shape)} and target {tuple(target.shape)}')
