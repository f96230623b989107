# Shared by the end-to-end test configs (tests/test_e2e.py): data, schedule and the tiny student.
# The student is a ResNet-18-D layout (mmpretrain ResNetV1d, as the downstream ResNet-50 configs'
# backbone) with 8 base channels; at 64 px its taps are layer3 32 x 4 x 4 and layer4 64 x 2 x 2.
# Data: a 2-class CustomDataset folder of 64x64 images (tests pass data_root with --cfg-options).
_base_ = ['../../../configs/_base_/default_runtime.py']

num_classes = 2
data_root = 'PLACEHOLDER'  # tests override {train,val,test}_dataloader.dataset.data_root

data_preprocessor = dict(
    type='ClsDataPreprocessor',
    num_classes=num_classes,
    mean=[123.675, 116.28, 103.53],
    std=[58.395, 57.12, 57.375],
    to_rgb=True,
)

student = dict(
    type='ImageClassifier',
    backbone=dict(type='ResNetV1d', depth=18, stem_channels=8, base_channels=8,
                  out_indices=(2, 3)),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(type='LinearClsHead', num_classes=num_classes, in_channels=64,
              loss=dict(type='CrossEntropyLoss', loss_weight=1.0), topk=(1, )),
)

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='PackInputs'),
]
test_pipeline = [dict(type='LoadImageFromFile'), dict(type='PackInputs')]

train_dataloader = dict(
    batch_size=4,
    num_workers=0,
    dataset=dict(type='CustomDataset', data_root=data_root, pipeline=train_pipeline),
    sampler=dict(type='DefaultSampler', shuffle=True),
)
val_dataloader = dict(
    batch_size=8,
    num_workers=0,
    dataset=dict(type='CustomDataset', data_root=data_root, pipeline=test_pipeline),
    sampler=dict(type='DefaultSampler', shuffle=False),
)
val_evaluator = dict(type='Accuracy', topk=(1, ))
test_dataloader = val_dataloader
test_evaluator = val_evaluator

optim_wrapper = dict(optimizer=dict(type='SGD', lr=0.01, momentum=0.9, weight_decay=1e-4))
param_scheduler = dict(type='ConstantLR', factor=1.0, by_epoch=False)

# 3 iterations, one validation and one checkpoint at the end.
train_cfg = dict(type='IterBasedTrainLoop', max_iters=3, val_interval=3)
val_cfg = dict()
test_cfg = dict()

default_hooks = dict(
    logger=dict(type='LoggerHook', interval=1, log_metric_by_epoch=False),
    checkpoint=dict(type='SafeCheckpointHook', by_epoch=False, interval=3, max_keep_ckpts=1),
)
log_processor = dict(by_epoch=False, window_size=1)
randomness = dict(seed=0)
