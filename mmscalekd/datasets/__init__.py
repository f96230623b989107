"""Datasets: unlabeled image folders and labeled+unlabeled concatenation (SSLD)."""
from .labeled_unlabeled_dataset import LabeledUnlabeledDataset
from .samplers import ResumableSampler
from .unlabeled_image_folder import UnlabeledImageFolder

__all__ = ['LabeledUnlabeledDataset', 'UnlabeledImageFolder', 'ResumableSampler']
