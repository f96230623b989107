"""Engine: hooks and train loops."""
from .hooks import ExactResumeHook, NonFiniteLossHook
from .runner import ResumableEpochBasedTrainLoop, ResumableIterBasedTrainLoop

__all__ = ['ExactResumeHook', 'NonFiniteLossHook', 'ResumableEpochBasedTrainLoop',
           'ResumableIterBasedTrainLoop']
