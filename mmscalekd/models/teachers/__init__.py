"""Teacher adapters: one per teacher family (import nothing from the rest of models)."""
from .base_teacher import BaseTeacher, TeacherTargets
from .mmpretrain_convnext_teacher import MMPretrainConvNeXtTeacher
from .mmpretrain_swin_teacher import MMPretrainSwinTeacher
from .mmpretrain_vit_teacher import MMPretrainViTTeacher
from .timm_teacher import TimmTeacher

__all__ = [
    'BaseTeacher', 'TeacherTargets', 'MMPretrainSwinTeacher', 'MMPretrainViTTeacher',
    'MMPretrainConvNeXtTeacher', 'TimmTeacher'
]
