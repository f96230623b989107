"""Distillers: the MMEngine models users configure, and their typed stage records."""
from .distill_stage import DistillStage, FrozenConfig, StageGeometry
from .scalekd_distiller import ScaleKDDistiller

__all__ = ['ScaleKDDistiller', 'DistillStage', 'StageGeometry', 'FrozenConfig']
