"""Engine: hooks, train loops and a runner."""
from .hooks import (
                    ExactResumeHook,
                    NonFiniteLossError,
                    NonFiniteLossHook,
                    PretrainedCheckHook,
                    SafeCheckpointHook,
                    TeacherCacheHook,
)
from .runner import DataRootRunner, ResumableEpochBasedTrainLoop, ResumableIterBasedTrainLoop

__all__ = ['DataRootRunner', 'ExactResumeHook', 'NonFiniteLossError', 'NonFiniteLossHook',
           'PretrainedCheckHook', 'ResumableEpochBasedTrainLoop', 'ResumableIterBasedTrainLoop',
           'SafeCheckpointHook', 'TeacherCacheHook']
