"""Distillers: the MMEngine models users configure."""
from .scalekd_distiller import ScaleKDDistiller

__all__ = ['ScaleKDDistiller']
