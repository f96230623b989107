# A tiny classifier for tool tests: 2 classes of 32x32 images in a CustomDataset folder
# (tests pass data_root with --cfg-options), a ResNet-18 layout with 8 base channels,
# iteration-based training. Inherits only the runtime, as real configs do.
_base_ = ['../../../configs/_base_/default_runtime.py']

data_root = 'PLACEHOLDER'  # tests override train/val/test dataloader.dataset.data_root

data_preprocessor = dict(
    type='ClsDataPreprocessor',
    num_classes=2,
    mean=[127.5, 127.5, 127.5],
    std=[64.0, 64.0, 64.0],
    to_rgb=True,
)

model = dict(
    type='ImageClassifier',
    backbone=dict(type='ResNet', depth=18, stem_channels=8, base_channels=8,
                  out_indices=(3, )),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(type='LinearClsHead', num_classes=2, in_channels=64,
              loss=dict(type='CrossEntropyLoss', loss_weight=1.0), topk=(1, )),
)

pipeline = [dict(type='LoadImageFromFile'), dict(type='PackInputs')]

train_dataloader = dict(
    batch_size=4,
    num_workers=0,
    dataset=dict(type='CustomDataset', data_root=data_root, pipeline=pipeline),
    sampler=dict(type='DefaultSampler', shuffle=True),
)
val_dataloader = dict(
    batch_size=4,
    num_workers=0,
    dataset=dict(type='CustomDataset', data_root=data_root, pipeline=pipeline),
    sampler=dict(type='DefaultSampler', shuffle=False),
)
val_evaluator = dict(type='Accuracy', topk=(1, ))
test_dataloader = val_dataloader
test_evaluator = val_evaluator

optim_wrapper = dict(optimizer=dict(type='SGD', lr=0.01, momentum=0.9, weight_decay=1e-4))
param_scheduler = dict(type='MultiStepLR', by_epoch=False, milestones=[3], gamma=0.1)

train_cfg = dict(type='IterBasedTrainLoop', max_iters=4, val_interval=1000)
val_cfg = dict()
test_cfg = dict()

default_hooks = dict(
    # Validation metrics are logged at their iteration (the default logs them by epoch).
    logger=dict(type='LoggerHook', interval=1, log_metric_by_epoch=False),
    checkpoint=dict(type='SafeCheckpointHook', by_epoch=False, interval=2, max_keep_ckpts=3),
)
log_processor = dict(by_epoch=False, window_size=1)
randomness = dict(seed=0)
