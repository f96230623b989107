# Mask R-CNN, ResNet-50-FPN, 1x schedule, COCO 2017, with the ScaleKD ResNet-50 student
# (Swin-L teacher, advanced strategy) as the backbone.
# Paper Table 5 (as in the official README figure, deep-optimization/ScaleKD@becc118
# imgs/MS-COCO.png): box AP 42.3,
# mask AP 39.1 (paper numbers; the paper's detection schedule is not retrieved, 1x is inferred
# from the Swin-T baseline matching mmdet's 1x result).
#
# This is an MMDetection config: it runs in mmdet's scope with MMDetection's tools/train.py
# (or `mim train mmdet <this file>`). The backbone class comes from mmpretrain (cross-scope
# `mmpretrain.` type), because the distilled student *is* an mmpretrain backbone and its
# parameter names are mmpretrain's; mmdet's own ResNetV1d names its deep stem differently.
_base_ = 'mmdet::mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py'
# mmscalekd (its import changes nothing in MMEngine or mmdet/mmseg) and mmpretrain's backbones.
# The extracted student holds tensors and plain metadata: MMEngine's own loader reads it.
custom_imports = dict(imports=['mmscalekd', 'mmpretrain.models'], allow_failed_imports=False)

# Student backbone checkpoint produced by
#   python tools/model_converters/extract_student.py <distiller ckpt> <out> --backbone-only
# (keys keep the `backbone.` prefix, which `prefix` below strips). No released file of ours:
# replace the path with your own.
STUDENT_CKPT = 'work_dirs/scalekd_swin-l_resnet50_32xb64_300e_in1k/student_backbone.pth'

model = dict(
    backbone=dict(
        # The advanced-strategy ResNet-50 student is ResNet-50-D (ResNetV1d), as in the official
        # config; the paper's 25.56 M params suggest plain ResNet-50 (docs/recipe_audit.md).
        type='mmpretrain.ResNetV1d',
        depth=50,
        num_stages=4,
        out_indices=(0, 1, 2, 3),
        frozen_stages=1,  # mmdet default for ImageNet-pretrained ResNets
        norm_cfg=dict(type='BN', requires_grad=True),
        norm_eval=True,
        style='pytorch',
        init_cfg=dict(type='Pretrained', checkpoint=STUDENT_CKPT, prefix='backbone.')))

# Before the weights are initialised, PretrainedCheckHook checks that STUDENT_CKPT exists and
# holds `backbone.*` weights: a missing file, or a distiller checkpoint that was not run through
# extract_student.py, stops the run with the command that makes the right file (instead of
# MMEngine's "backbone. is not in the pretrained model"). `_scope_` is MMEngine's way to build a
# hook of another package (mmscalekd) from an mmdet/mmseg-scoped config.
custom_hooks = [dict(type='PretrainedCheckHook', _scope_='mmscalekd')]
