"""Hooks: exact resume (RNG states, data position) and the non-finite loss guard."""
from .exact_resume_hook import ExactResumeHook
from .non_finite_loss_hook import NonFiniteLossHook
from .pretrained_check_hook import PretrainedCheckHook

__all__ = ['ExactResumeHook', 'NonFiniteLossHook', 'PretrainedCheckHook']
