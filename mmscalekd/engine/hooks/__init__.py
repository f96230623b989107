"""Hooks: exact resume (RNG states, data position), the non-finite loss guard, the teacher
cache start-up checks and the downstream pretrained-checkpoint check."""
from .exact_resume_hook import ExactResumeHook
from .non_finite_loss_hook import NonFiniteLossHook
from .pretrained_check_hook import PretrainedCheckHook
from .teacher_cache_hook import TeacherCacheHook

__all__ = ['ExactResumeHook', 'NonFiniteLossHook', 'PretrainedCheckHook', 'TeacherCacheHook']
