"""Data transforms: image loading that skips corrupt files."""
from .load_image_from_file_or_skip import LoadImageFromFileOrSkip, truncation_problem

__all__ = ['LoadImageFromFileOrSkip', 'truncation_problem']
