"""Train loops that resume mid-epoch exactly; a runner whose datasets follow `data_root`."""
from .data_root_runner import DataRootRunner
from .resumable_epoch_based_train_loop import ResumableEpochBasedTrainLoop
from .resumable_iter_based_train_loop import ResumableIterBasedTrainLoop

__all__ = ['DataRootRunner', 'ResumableEpochBasedTrainLoop', 'ResumableIterBasedTrainLoop']
