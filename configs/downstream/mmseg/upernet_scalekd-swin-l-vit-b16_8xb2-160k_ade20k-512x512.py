# UperNet, ViT-B/16 + multi-level neck, 512x512, 160k, ADE20K, with the ScaleKD ViT-B/16 student
# (Swin-L teacher, advanced strategy; a DeiT-B recipe) as the backbone.
# Paper Table 6 (as in the official README figure, deep-optimization/ScaleKD@becc118
# imgs/ADE-20K.png): 50.84 mIoU (paper number). The paper's ViT segmentation setting is
# not retrieved; this uses mmseg's ViT-B/16 + MLN UperNet 160k recipe (AdamW 6e-5, wd 0.01,
# no decay on pos_embed/cls_token/norm) with DeiT's drop-path 0.1 (mmseg's vit_deit-b16 config).
#
# An MMSegmentation config (mmseg scope; MMSegmentation's tools). The backbone is mmpretrain's
# VisionTransformer (cross-scope type): the student's parameter names are mmpretrain's. mmseg's
# ViT takes other arguments, hence `_delete_` (downstream configs only).
_base_ = 'mmseg::vit/vit_vit-b16_mln_upernet_8xb2-160k_ade20k-512x512.py'
# mmscalekd (its import changes nothing in MMEngine or mmdet/mmseg) and mmpretrain's backbones.
# The extracted student holds tensors and plain metadata: MMEngine's own loader reads it.
custom_imports = dict(imports=['mmscalekd', 'mmpretrain.models'], allow_failed_imports=False)

# From tools/model_converters/extract_student.py --backbone-only; no released file of ours.
STUDENT_CKPT = 'work_dirs/scalekd_swin-l_vit-b16_32xb16_300e_in1k/student_backbone.pth'

model = dict(
    pretrained=None,
    backbone=dict(
        _delete_=True,
        type='mmpretrain.VisionTransformer',
        arch='deit-b',
        img_size=512,  # the 14x14 position table is resized on load and per input size
        patch_size=16,
        out_indices=(2, 5, 8, 11),  # the four levels mmseg's ViT UperNet uses
        out_type='featmap',
        # The ScaleKD ViT students drop the class token (with_cls_token=False, docs/recipe_audit.md); a checkpoint that has one
        # still loads (mmpretrain drops its position entry).
        with_cls_token=False,
        final_norm=False,  # mmseg's ViT UperNet takes un-normalised block outputs
        drop_path_rate=0.1,
        interpolate_mode='bicubic',
        init_cfg=dict(type='Pretrained', checkpoint=STUDENT_CKPT, prefix='backbone.')))

# Before the weights are initialised, PretrainedCheckHook checks that STUDENT_CKPT exists and
# holds `backbone.*` weights: a missing file, or a distiller checkpoint that was not run through
# extract_student.py, stops the run with the command that makes the right file (instead of
# MMEngine's "backbone. is not in the pretrained model"). `_scope_` is MMEngine's way to build a
# hook of another package (mmscalekd) from an mmdet/mmseg-scoped config.
custom_hooks = [dict(type='PretrainedCheckHook', _scope_='mmscalekd')]
