"""Teacher adapters: the contract (targets; TPP) and one class per family.

Leaves of ``mmscalekd.models``: they import nothing from the rest of the models. Each
timm family lives in its own ``timm_*_teacher.py``; importing it registers the family.
"""
from ._weights import TeacherDownloadError
from .base_teacher import (
                           BaseTeacher,
                           RandomTeacherWarning,
                           TeacherTargets,
                           student_input_convention,
)
from .mmpretrain_convnext_teacher import MMPretrainConvNeXtTeacher
from .mmpretrain_swin_teacher import MMPretrainSwinTeacher
from .mmpretrain_vit_teacher import MMPretrainViTTeacher
from .timm_beit_teacher import TimmBeitTeacher
from .timm_cnn_teacher import TimmCNNTeacher
from .timm_convnext_teacher import TimmConvNeXtTeacher
from .timm_eva_teacher import TimmEvaTeacher
from .timm_swin_teacher import TimmSwinTeacher
from .timm_teacher import TimmTeacher, register_timm_family, timm_families, timm_family_for
from .timm_vit_teacher import TimmViTTeacher
from .tpp_teacher import TPPTeacher

__all__ = [
    'BaseTeacher', 'TPPTeacher', 'TeacherTargets', 'RandomTeacherWarning',
    'student_input_convention',
    'TeacherDownloadError', 'MMPretrainSwinTeacher', 'MMPretrainViTTeacher',
    'MMPretrainConvNeXtTeacher', 'TimmTeacher', 'TimmViTTeacher', 'TimmBeitTeacher',
    'TimmEvaTeacher', 'TimmSwinTeacher', 'TimmConvNeXtTeacher', 'TimmCNNTeacher',
    'register_timm_family', 'timm_families', 'timm_family_for'
]
