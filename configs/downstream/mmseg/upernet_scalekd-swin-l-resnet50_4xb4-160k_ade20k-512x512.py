# UperNet, ResNet-50, 512x512 crops, 160k iterations, ADE20K, with the ScaleKD ResNet-50 student
# (Swin-L teacher, advanced strategy) as the backbone.
# Paper Table 6 (as in the official README figure, deep-optimization/ScaleKD@becc118
# imgs/ADE-20K.png): 44.50 mIoU (paper number). The paper's iterations and crop size are
# not retrieved; 512x512/160k is inferred from its Swin-T baseline (44.41) matching mmseg's
# UperNet Swin-T 512x512 160k result. Recipe: mmseg's UperNet R-50 160k (SGD 0.01, poly).
#
# An MMSegmentation config: it runs in mmseg's scope with MMSegmentation's tools/train.py (or
# `mim train mmseg <this file>`). The backbone is mmpretrain's ResNetV1d (cross-scope type): the
# student's parameter names are mmpretrain's. mmseg's base uses ResNetV1c with mmseg-only
# arguments (contract_dilation), so the backbone is replaced with `_delete_` (an mmseg convention,
# allowed in these downstream configs only) and `pretrained` is cleared.
_base_ = 'mmseg::upernet/upernet_r50_4xb4-160k_ade20k-512x512.py'
# mmscalekd (its import changes nothing in MMEngine or mmdet/mmseg) and mmpretrain's backbones.
# The extracted student holds tensors and plain metadata: MMEngine's own loader reads it.
custom_imports = dict(imports=['mmscalekd', 'mmpretrain.models'], allow_failed_imports=False)

# From tools/model_converters/extract_student.py --backbone-only; no released file of ours.
STUDENT_CKPT = 'work_dirs/scalekd_swin-l_resnet50_32xb64_300e_in1k/student_backbone.pth'

model = dict(
    pretrained=None,
    backbone=dict(
        _delete_=True,
        type='mmpretrain.ResNetV1d',  # the advanced ResNet-50 student is ResNet-50-D (docs/recipe_audit.md)
        depth=50,
        num_stages=4,
        out_indices=(0, 1, 2, 3),
        # mmseg's UperNet R-50 keeps full stride (no dilation): strides 1,2,2,2, dilations 1.
        strides=(1, 2, 2, 2),
        dilations=(1, 1, 1, 1),
        norm_cfg=dict(type='SyncBN', requires_grad=True),
        norm_eval=False,
        style='pytorch',
        init_cfg=dict(type='Pretrained', checkpoint=STUDENT_CKPT, prefix='backbone.')))

# Option: SSLD's per-stage learning-rate multipliers for distilled backbones
# (PaddlePaddle/PaddleClas@0e6b47b docs/en/advanced_tutorials/distillation/distillation_en.md Sec. 4.1). PaddleClas published values for ResNet50_vd classification fine-tuning
# ([0.1, 0.1, 0.2, 0.2, 0.3]) and detection ([0.05, 0.05, 0.05, 0.1, 0.15]); segmentation values
# were not retrieved. To try them, uncomment and pick a row:
# optim_wrapper = dict(
#     paramwise_cfg=dict(custom_keys={
#         'backbone.stem': dict(lr_mult=0.1),
#         'backbone.layer1': dict(lr_mult=0.1),
#         'backbone.layer2': dict(lr_mult=0.2),
#         'backbone.layer3': dict(lr_mult=0.2),
#         'backbone.layer4': dict(lr_mult=0.3),
#     }))

# Before the weights are initialised, PretrainedCheckHook checks that STUDENT_CKPT exists and
# holds `backbone.*` weights: a missing file, or a distiller checkpoint that was not run through
# extract_student.py, stops the run with the command that makes the right file (instead of
# MMEngine's "backbone. is not in the pretrained model"). `_scope_` is MMEngine's way to build a
# hook of another package (mmscalekd) from an mmdet/mmseg-scoped config.
custom_hooks = [dict(type='PretrainedCheckHook', _scope_='mmscalekd')]
