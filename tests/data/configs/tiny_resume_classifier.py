# Exact-resume test config: a tiny ResNet (stochastic depth: torch RNG) trained on 16 images with
# random crops and flips (NumPy RNG), EMA, SGD with momentum and a step LR, 2 epochs of 4 batches,
# a checkpoint every 3 iterations (so they fall mid-epoch). Tests pass data_root via --cfg-options
# and set MMSCALEKD_KILL_AT to kill the run (tests/test_reliability/_kill_hook.py).
_base_ = ['../../../configs/_base_/default_runtime.py']

custom_imports = dict(imports=['tests.test_reliability._kill_hook'], allow_failed_imports=False)
data_root = 'PLACEHOLDER'

data_preprocessor = dict(type='ClsDataPreprocessor', num_classes=2, mean=[127.5, 127.5, 127.5],
                         std=[64.0, 64.0, 64.0], to_rgb=True)
model = dict(
    type='ImageClassifier',
    backbone=dict(type='ResNet', depth=18, stem_channels=8, base_channels=8, out_indices=(3, ),
                  drop_path_rate=0.2),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(type='LinearClsHead', num_classes=2, in_channels=64,
              loss=dict(type='CrossEntropyLoss', loss_weight=1.0), topk=(1, )),
)

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='RandomResizedCrop', scale=24),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='PackInputs'),
]
train_dataloader = dict(
    batch_size=4,
    num_workers=0,
    dataset=dict(type='CustomDataset', data_root=data_root, pipeline=train_pipeline),
    sampler=dict(type='ResumableSampler', shuffle=True),
)

optim_wrapper = dict(optimizer=dict(type='SGD', lr=0.05, momentum=0.9, weight_decay=1e-4))
param_scheduler = dict(type='MultiStepLR', by_epoch=False, milestones=[5], gamma=0.1)
train_cfg = dict(type='ResumableEpochBasedTrainLoop', max_epochs=2)

default_hooks = dict(
    logger=dict(type='LoggerHook', interval=1),
    checkpoint=dict(type='SafeCheckpointHook', by_epoch=False, interval=3, max_keep_ckpts=2),
)
custom_hooks = [dict(type='EMAHook', momentum=0.1), dict(type='ExactResumeHook'),
                dict(type='SigkillAtIterHook')]
log_processor = dict(window_size=1)
randomness = dict(seed=0, deterministic=True)
log_level = 'WARNING'
