"""Hooks: crash-safe checkpoints, exact resume (RNG states, data position), the non-finite loss
guard, the teacher cache start-up checks and the downstream pretrained-checkpoint check."""
from .exact_resume_hook import ExactResumeHook
from .non_finite_loss_hook import NonFiniteLossError, NonFiniteLossHook
from .pretrained_check_hook import PretrainedCheckHook
from .safe_checkpoint_hook import SafeCheckpointHook
from .teacher_cache_hook import TeacherCacheHook

__all__ = ['ExactResumeHook', 'NonFiniteLossError', 'NonFiniteLossHook', 'PretrainedCheckHook',
           'SafeCheckpointHook', 'TeacherCacheHook']
