"""Hooks: exact resume (RNG states, data position), the non-finite loss guard and the teacher
cache start-up checks."""
from .exact_resume_hook import ExactResumeHook
from .non_finite_loss_hook import NonFiniteLossHook
from .teacher_cache_hook import TeacherCacheHook

__all__ = ['ExactResumeHook', 'NonFiniteLossHook', 'TeacherCacheHook']
