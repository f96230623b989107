"""Model helpers (pure functions)."""
from .dct import dct_2d, idct_2d, remove_dc_dct, remove_dc_mean

__all__ = ['dct_2d', 'idct_2d', 'remove_dc_dct', 'remove_dc_mean']
