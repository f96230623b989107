# UperNet, Swin-T, 512x512, 160k, ADE20K, with the ScaleKD Swin-T student (Swin-L teacher,
# advanced strategy) as the backbone.
# Paper Table 6 (as in the official README figure, deep-optimization/ScaleKD@becc118
# imgs/ADE-20K.png): 46.33 mIoU (paper number). Recipe: mmseg's UperNet Swin-T 160k
# (AdamW 6e-5, wd 0.01, poly), inferred from the paper's baseline matching it (44.41).
#
# An MMSegmentation config (mmseg scope; MMSegmentation's tools). The backbone is mmpretrain's
# SwinTransformer (cross-scope type) because the student's parameter names are mmpretrain's;
# mmseg's SwinTransformer takes other arguments, hence `_delete_` (downstream configs only).
_base_ = 'mmseg::swin/swin-tiny-patch4-window7-in1k-pre_upernet_8xb2-160k_ade20k-512x512.py'
# mmscalekd (its import changes nothing in MMEngine or mmdet/mmseg) and mmpretrain's backbones.
# The extracted student holds tensors and plain metadata: MMEngine's own loader reads it.
custom_imports = dict(imports=['mmscalekd', 'mmpretrain.models'], allow_failed_imports=False)

# From tools/model_converters/extract_student.py --backbone-only; no released file of ours.
STUDENT_CKPT = 'work_dirs/scalekd_swin-l_swin-t_32xb16_300e_in1k/student_backbone.pth'

model = dict(
    pretrained=None,
    backbone=dict(
        _delete_=True,
        type='mmpretrain.SwinTransformer',
        arch='tiny',
        img_size=224,
        drop_path_rate=0.3,  # mmseg's UperNet Swin-T value
        out_indices=(0, 1, 2, 3),
        # The student normalises only its last stage (SwinTransformerTaps, norm_last_only): norm0-norm2 start from their
        # default init (non-strict loading reports them as missing keys).
        init_cfg=dict(type='Pretrained', checkpoint=STUDENT_CKPT, prefix='backbone.')))

# Before the weights are initialised, PretrainedCheckHook checks that STUDENT_CKPT exists and
# holds `backbone.*` weights: a missing file, or a distiller checkpoint that was not run through
# extract_student.py, stops the run with the command that makes the right file (instead of
# MMEngine's "backbone. is not in the pretrained model"). `_scope_` is MMEngine's way to build a
# hook of another package (mmscalekd) from an mmdet/mmseg-scoped config.
custom_hooks = [dict(type='PretrainedCheckHook', _scope_='mmscalekd')]
