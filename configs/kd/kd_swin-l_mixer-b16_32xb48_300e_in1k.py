# Vanilla KD (logit KD only): Swin-L teacher -> MLP-Mixer-B/16 student,
# advanced training strategy (32 GPUs x 48 images, 300 epochs), ImageNet-1K.
# The twin of configs/scalekd/scalekd_swin-l_mixer-b16_32xb48_300e_in1k.py:
# the same teacher, student, data, augmentation, schedule and label loss; `distill_stages=[]`
# (no CAP, DFM or TPP), only the logit KD term. How to read the pair: configs/kd/README.md.
# Official recipe (deep-optimization/ScaleKD@5ba1f04):
#   distiller config: configs/distillers/advanced_training_strategy/swin-l_distill_mlp_b_img_s3_s4.py
#   student config: configs/mlp_mixer/mlp-mixer-base-p16_64xb64_in1k.py (data, schedule, hooks)
# Every setting against the official one, with file:line: docs/recipe_audit.md.
# Train: bash tools/dist_train.sh configs/kd/kd_swin-l_mixer-b16_32xb48_300e_in1k.py 8
#   (on each of 4 nodes: configs/scalekd/README.md, How to use)
_base_ = [
    '../_base_/datasets/imagenet_bs48_advanced_mixer.py',
    '../_base_/schedules/advanced_adamw_mixer_300e.py',
    '../_base_/default_runtime.py',
]
default_scope = 'mmscalekd'  # our registries; bare mmpretrain types resolve through them

# The official teacher_pretrained (distiller config:21). Downloaded where a network
# is available; otherwise --cfg-options model.teacher.checkpoint=/path/to/file.pth.
TEACHER_CKPT = (
    'https://download.openmmlab.com/mmclassification/v0/swin-transformer/convert/'
    'swin_large_patch4_window7_224_22kto1k-5f0996db.pth')

KD_TEMPERATURE = 1.0  # distiller config:55
KD_WEIGHT = 0.5  # distiller config:56; the label loss gets 1 - KD_WEIGHT (distiller.py:211-214)

model = dict(
    type='ScaleKDDistiller',
    student=dict(
        type='ImageClassifier',
        backbone=dict(
            type='MlpMixerTaps',  # taps before the final LN, plus the normed map for the head
            arch='b',
            img_size=224,
            patch_size=16,
            drop_path_rate=0.1,
            out_indices=(9, 11),  # s3, s4 = blocks 10 and 12, 768 x 14 x 14
            init_cfg=[dict(type='Kaiming', layer='Conv2d', mode='fan_in',
                           nonlinearity='linear')]),
        neck=dict(type='GlobalAveragePooling'),
        head=dict(
            type='LinearClsHead',
            num_classes=1000,
            in_channels=768,
            loss=dict(type='CrossEntropyLoss', loss_weight=1.0),
            topk=(1, 5))),
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

# The official sync_bn=True (distiller config:20) converts nothing: a Mixer has no BatchNorm.
# No EMA (the student config has none).
optim_wrapper = dict(clip_grad=dict(max_norm=1.0))  # student config:10
