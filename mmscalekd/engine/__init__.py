"""Engine: hooks, train loops and a runner."""
from .hooks import ExactResumeHook, NonFiniteLossHook
from .runner import DataRootRunner, ResumableEpochBasedTrainLoop, ResumableIterBasedTrainLoop

__all__ = ['DataRootRunner', 'ExactResumeHook', 'NonFiniteLossHook',
           'ResumableEpochBasedTrainLoop', 'ResumableIterBasedTrainLoop']
