"""Distillation losses."""
from .dual_view_mimic_loss import DualViewMimicLoss
from .soft_target_kd_loss import SoftTargetKDLoss
from .symmetric_kl_loss import SymmetricKLLoss

__all__ = ['DualViewMimicLoss', 'SoftTargetKDLoss', 'SymmetricKLLoss']
