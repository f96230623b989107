"""Engine: hooks, train loops and a runner."""
from .hooks import ExactResumeHook, NonFiniteLossHook, PretrainedCheckHook, TeacherCacheHook
from .runner import DataRootRunner, ResumableEpochBasedTrainLoop, ResumableIterBasedTrainLoop

__all__ = ['DataRootRunner', 'ExactResumeHook', 'NonFiniteLossHook', 'PretrainedCheckHook',
           'ResumableEpochBasedTrainLoop', 'ResumableIterBasedTrainLoop', 'TeacherCacheHook']
