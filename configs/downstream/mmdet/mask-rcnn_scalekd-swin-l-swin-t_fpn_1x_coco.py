# Mask R-CNN, Swin-T-FPN, 1x schedule, COCO 2017, with the ScaleKD Swin-T student (Swin-L teacher,
# advanced strategy) as the backbone.
# Paper Table 5 (as in the official README figure, deep-optimization/ScaleKD@becc118
# imgs/MS-COCO.png): box AP 44.4, mask AP 40.8 (paper numbers). Schedule and optimizer
# are MMDetection's Swin-T 1x recipe (AdamW 1e-4, wd 0.05, steps at 8/11); the paper's own
# schedule is not retrieved (the baseline 42.7/39.3 equals mmdet's 1x Swin-T result).
#
# MMDetection config (mmdet scope; MMDetection's tools/train.py or `mim train mmdet`). The backbone
# is mmpretrain's SwinTransformer (cross-scope type), whose parameter names are those of the
# distilled student; mmdet's own SwinTransformer uses another layout, so the base backbone is
# replaced with `_delete_` (an mmdet convention, allowed in these downstream configs only).
_base_ = 'mmdet::swin/mask-rcnn_swin-t-p4-w7_fpn_1x_coco.py'
# mmscalekd (its import changes nothing in MMEngine or mmdet/mmseg) and mmpretrain's backbones.
# The extracted student holds tensors and plain metadata: MMEngine's own loader reads it.
custom_imports = dict(imports=['mmscalekd', 'mmpretrain.models'], allow_failed_imports=False)

# From tools/model_converters/extract_student.py --backbone-only; no released file of ours.
STUDENT_CKPT = 'work_dirs/scalekd_swin-l_swin-t_32xb16_300e_in1k/student_backbone.pth'

model = dict(
    backbone=dict(
        _delete_=True,
        type='mmpretrain.SwinTransformer',
        arch='tiny',
        img_size=224,
        drop_path_rate=0.2,  # mmdet's Swin-T detection value
        out_indices=(0, 1, 2, 3),
        # The student normalises only its last stage (SwinTransformerTaps, norm_last_only); norm0-norm2 start from their
        # default init here (non-strict loading reports them as missing keys).
        init_cfg=dict(type='Pretrained', checkpoint=STUDENT_CKPT, prefix='backbone.')),
    neck=dict(in_channels=[96, 192, 384, 768]))

# Before the weights are initialised, PretrainedCheckHook checks that STUDENT_CKPT exists and
# holds `backbone.*` weights: a missing file, or a distiller checkpoint that was not run through
# extract_student.py, stops the run with the command that makes the right file (instead of
# MMEngine's "backbone. is not in the pretrained model"). `_scope_` is MMEngine's way to build a
# hook of another package (mmscalekd) from an mmdet/mmseg-scoped config.
custom_hooks = [dict(type='PretrainedCheckHook', _scope_='mmscalekd')]
