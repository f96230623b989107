# Vanilla KD (logit KD only): Swin-L teacher -> ViT-B/16 (DeiT-B) student,
# advanced training strategy (32 GPUs x 16 images, 300 epochs), ImageNet-1K.
# The twin of configs/scalekd/scalekd_swin-l_vit-b16_32xb16_300e_in1k.py:
# the same teacher, student, data, augmentation, schedule and label loss; `distill_stages=[]`
# (no CAP, DFM or TPP), only the logit KD term. How to read the pair: configs/kd/README.md.
# Official recipe (deep-optimization/ScaleKD@5ba1f04):
#   distiller config: configs/distillers/advanced_training_strategy/swin-l_distill_deit-b_img_s3_s4.py
#   student config: configs/deit/deit-base_pt-4xb256_in1k.py (data, schedule, hooks)
# Every setting against the official one, with file:line: docs/recipe_audit.md.
# Train: bash tools/dist_train.sh configs/kd/kd_swin-l_vit-b16_32xb16_300e_in1k.py 8
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

KD_TEMPERATURE = 1.0  # distiller config:55
KD_WEIGHT = 0.5  # distiller config:56; the label loss gets 1 - KD_WEIGHT (distiller.py:211-214)

model = dict(
    type='ScaleKDDistiller',
    student=dict(
        type='ImageClassifier',
        backbone=dict(
            type='VisionTransformer',
            arch='deit-b',
            img_size=224,
            patch_size=16,
            with_cls_token=False,  # as the official student
            out_type='featmap',
            drop_path_rate=0.0,  # not set officially (the DeiT default 0.1 is not used)
            # s3 = block 9, s4 = block 12 after the final LN, 768 x 14 x 14
            out_indices=(8, 11)),
        neck=dict(type='GlobalAveragePooling'),
        head=dict(
            type='LinearClsHead',
            num_classes=1000,
            in_channels=768,
            loss=dict(type='LabelSmoothLoss', label_smooth_val=0.1, mode='original'),
            topk=(1, 5)),
        init_cfg=[
            dict(type='TruncNormal', layer='Linear', std=0.02),
            dict(type='Constant', layer='LayerNorm', val=1.0, bias=0.0),
        ]),
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

# 16 per GPU. The student config counts 16 x 8 GPUs x 8 nodes = 1024 (its line 8); the README runs
# the advanced strategy on 32 GPUs (512): docs/recipe_audit.md, batch.gpus.
train_dataloader = dict(batch_size=16)  # student config:39
optim_wrapper = dict(
    clip_grad=dict(max_norm=5.0),  # student config:57
    # No decay on the cls token and the position embeddings (student config:53-56);
    # MMEngine merges these keys with the schedule's. '.pos_embed' also matches the
    # connectors' position embeddings, as officially.
    paramwise_cfg=dict(custom_keys={
        '.cls_token': dict(decay_mult=0.0),
        '.pos_embed': dict(decay_mult=0.0),
    }))
custom_hooks = [dict(type='EMAHook', momentum=1e-4, priority='ABOVE_NORMAL')]  # student config:42;
# evaluated on the EMA weights (mmpretrain's EMAHook default, as the official mmcls hook)
# Test: resize the short side to 224, centre-crop 224 (the official student data config,
# imagenet_bs32_swin_224.py:43-53).
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='ResizeEdge', scale=224, edge='short', backend='pillow', interpolation='bicubic'),
    dict(type='CenterCrop', crop_size=224),
    dict(type='PackInputs'),
]
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
