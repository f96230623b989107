"""Data preprocessors."""
from .mixed_label_cls_data_preprocessor import MixedLabelClsDataPreprocessor

__all__ = ['MixedLabelClsDataPreprocessor']
