"""Hooks: crash-safe checkpoints, exact resume (RNG states, data position), non-finite losses."""
from .exact_resume_hook import ExactResumeHook
from .non_finite_loss_hook import NonFiniteLossError, NonFiniteLossHook
from .safe_checkpoint_hook import SafeCheckpointHook

__all__ = ['ExactResumeHook', 'NonFiniteLossError', 'NonFiniteLossHook', 'SafeCheckpointHook']
