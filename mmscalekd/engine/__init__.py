"""Engine: hooks and train loops."""
from .hooks import ExactResumeHook, NonFiniteLossError, NonFiniteLossHook, SafeCheckpointHook
from .runner import ResumableEpochBasedTrainLoop, ResumableIterBasedTrainLoop

__all__ = ['ExactResumeHook', 'NonFiniteLossError', 'NonFiniteLossHook', 'SafeCheckpointHook',
           'ResumableEpochBasedTrainLoop', 'ResumableIterBasedTrainLoop']
