# Teacher-cache tests (tests/test_teacher_cache/): logit KD of a tiny ResNet_CIFAR (GroupNorm, so
# that DDP equals one process) from a tiny ViT (embed 16, 2 blocks, patch 7) on fake 28 px
# Fashion-MNIST, with random crops and flips and per-sample Mixup / CutMix. Tests pass data_root,
# cache_dir and the random-init teacher checkpoint via --cfg-options; the live-teacher twin swaps
# the TeacherCacheDataset for a SeededViewDataset and drops teacher_cache.
_base_ = ['../../../configs/_base_/default_runtime.py']

data_root = 'PLACEHOLDER'
cache_dir = 'PLACEHOLDER'

data_preprocessor = dict(type='ClsDataPreprocessor', num_classes=10, mean=[72.93], std=[90.02],
                         to_rgb=False)

model = dict(
    type='ScaleKDDistiller',
    student=dict(
        type='ImageClassifier',
        backbone=dict(type='ResNet_CIFAR', depth=18, in_channels=1, stem_channels=8,
                      base_channels=4, norm_cfg=dict(type='GN', num_groups=2)),
        neck=dict(type='GlobalAveragePooling'),
        head=dict(type='LinearClsHead', num_classes=10, in_channels=32,
                  loss=dict(type='CrossEntropyLoss', use_soft=True))),
    teacher=dict(
        type='MMPretrainViTTeacher',
        model=dict(
            type='ImageClassifier',
            backbone=dict(type='VisionTransformer',
                          arch=dict(embed_dims=16, num_layers=2, num_heads=2,
                                    feedforward_channels=32),
                          img_size=28, patch_size=7, in_channels=1, out_type='cls_token',
                          final_norm=True),
            neck=None,
            head=dict(type='VisionTransformerClsHead', num_classes=10, in_channels=16)),
        checkpoint='PLACEHOLDER',
        tpp_blocks=1),
    teacher_cache=dict(cache_dir=cache_dir),
    distill_stages=[],
    logit_loss=dict(type='SoftTargetKDLoss', temperature=1.0, loss_weight=0.5),
    label_loss_weight=0.5,
    data_preprocessor=data_preprocessor,
)

train_pipeline = [
    dict(type='RandomResizedCrop', scale=28, crop_ratio_range=(0.5, 1.0)),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='PackInputs'),
]
train_dataloader = dict(
    batch_size=8,
    num_workers=0,
    dataset=dict(
        type='TeacherCacheDataset',
        dataset=dict(type='ArrayFashionMNIST', data_root=data_root, split='train',
                     download=False, serialize_data=False, pipeline=train_pipeline),
        cache_dir=cache_dir,
        seed=0,
        mix=dict(augments=[dict(type='Mixup', alpha=0.8), dict(type='CutMix', alpha=1.0)],
                 probs=[0.4, 0.4])),
    sampler=dict(type='EpochTaggedSampler', shuffle=True),
)

optim_wrapper = dict(optimizer=dict(type='SGD', lr=0.05, momentum=0.9, weight_decay=1e-4))
param_scheduler = dict(type='MultiStepLR', by_epoch=False, milestones=[5], gamma=0.1)
train_cfg = dict(type='ResumableEpochBasedTrainLoop', max_epochs=2)

default_hooks = dict(
    logger=dict(type='LoggerHook', interval=1),
    checkpoint=dict(type='SafeCheckpointHook', by_epoch=False, interval=3, max_keep_ckpts=3),
)
custom_hooks = [dict(type='TeacherCacheHook')]
log_processor = dict(window_size=1)
randomness = dict(seed=0, deterministic=True)
log_level = 'WARNING'
