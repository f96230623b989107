"""Distillers: the MMEngine models users configure, and their typed stage records."""
from .distill_stage import DistillStage, FrozenConfig, StageGeometry
from .scalekd_distiller import PROFILE_RANGES, ScaleKDDistiller
from .teacher_record import TeacherMismatchError

__all__ = ['ScaleKDDistiller', 'DistillStage', 'StageGeometry', 'FrozenConfig',
           'PROFILE_RANGES', 'TeacherMismatchError']
