# Vanilla KD (logit KD only): Swin-L teacher -> ConvNeXt-T student,
# advanced training strategy (32 GPUs x 32 images, 300 epochs), ImageNet-1K.
# The twin of configs/scalekd/scalekd_swin-l_convnext-t_32xb32_300e_in1k.py:
# the same teacher, student, data, augmentation, schedule and label loss; `distill_stages=[]`
# (no CAP, DFM or TPP), only the logit KD term. How to read the pair: configs/kd/README.md.
# Official recipe (deep-optimization/ScaleKD@5ba1f04):
#   distiller config: configs/distillers/advanced_training_strategy/swin-l_distill_convnext-t_img_s3_s4.py
#   student config: configs/convnext/convnext-tiny_32xb128_in1k.py (data, schedule, hooks)
# Every setting against the official one, with file:line: docs/recipe_audit.md.
# Train: bash tools/dist_train.sh configs/kd/kd_swin-l_convnext-t_32xb32_300e_in1k.py 8
#   (on each of 4 nodes: configs/scalekd/README.md, How to use)
_base_ = [
    '../_base_/datasets/imagenet_bs64_advanced.py',
    '../_base_/schedules/advanced_adamw_300e.py',
    '../_base_/default_runtime.py',
]
default_scope = 'mmscalekd'  # our registries; bare mmpretrain types resolve through them

# The official teacher_pretrained (distiller config:21). Downloaded where a network
# is available; otherwise --cfg-options model.teacher.checkpoint=/path/to/file.pth.
TEACHER_CKPT = (
    'https://download.openmmlab.com/mmclassification/v0/swin-transformer/convert/'
    'swin_large_patch4_window7_224_22kto1k-5f0996db.pth')

KD_TEMPERATURE = 1.0  # distiller config:57
KD_WEIGHT = 0.5  # distiller config:58; the label loss gets 1 - KD_WEIGHT (distiller.py:211-214)

model = dict(
    type='ScaleKDDistiller',
    student=dict(
        type='ImageClassifier',
        backbone=dict(
            type='ConvNeXtTaps',  # maps out; the norm only on the last tap, as officially
            arch='tiny',
            drop_path_rate=0.1,
            out_indices=(2, 3)),  # s3 = stage 3 (384 x 14 x 14), s4 = stage 4 (768 x 7 x 7)
        neck=dict(type='GlobalAveragePooling'),
        head=dict(
            type='LinearClsHead',
            num_classes=1000,
            in_channels=768,
            loss=dict(type='LabelSmoothLoss', label_smooth_val=0.1, mode='original'),
            init_cfg=None,  # the head takes the classifier's TruncNormal, as officially
            topk=(1, 5)),
        init_cfg=dict(type='TruncNormal', layer=['Conv2d', 'Linear'], std=0.02, bias=0.0)),
    teacher=dict(
        type='MMPretrainSwinTeacher',
        model=dict(
            type='ImageClassifier',
            backbone=dict(
                type='SwinTransformer',
                arch='large',
                img_size=224,
                # the class default (none set officially); active only in train mode
                drop_path_rate=0.1),
            neck=dict(type='GlobalAveragePooling'),
            head=dict(type='LinearClsHead', num_classes=1000, in_channels=1536)),
        checkpoint=TEACHER_CKPT),
    distill_stages=[],  # logit KD only: no CAP, DFM or TPP
    logit_loss=dict(type='SoftTargetKDLoss', temperature=KD_TEMPERATURE, loss_weight=KD_WEIGHT),
    label_loss_weight=1.0 - KD_WEIGHT,
    label_free=False,
    # Officially the teacher runs in train mode after construction (stochastic depth active); we
    # keep it in eval. True reproduces the official behaviour (docs/recipe_audit.md, teacher.mode).
    teacher_train_mode=False,
)

train_dataloader = dict(batch_size=32)  # student config:9
custom_hooks = [dict(type='EMAHook', momentum=1e-4, priority='ABOVE_NORMAL')]  # student config:22;
# evaluated on the EMA weights (mmpretrain's EMAHook default, as the official mmcls hook)
# No gradient clipping: the clip lines of the student config are commented out.
