"""Engine: hooks and train loops."""
from .hooks import ExactResumeHook, NonFiniteLossHook, TeacherCacheHook
from .runner import ResumableEpochBasedTrainLoop, ResumableIterBasedTrainLoop

__all__ = ['ExactResumeHook', 'NonFiniteLossHook', 'ResumableEpochBasedTrainLoop',
           'ResumableIterBasedTrainLoop', 'TeacherCacheHook']
