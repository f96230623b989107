# Exact-resume test config for a ScaleKD distiller (test_reliability/test_resume_distiller.py):
# a tiny ResNet-18 layout (8 base channels, stochastic depth: torch RNG) learns from a 4-stage
# Swin (embed 16, depth 1, window 2) at 64 px through two TPP stages, with random crops and flips
# (NumPy RNG), EMA, SGD with momentum (student *and* connectors) and a step LR; 2 epochs of 4
# batches, a checkpoint every 3 iterations (mid-epoch). Student taps: layer3 32 x 4 x 4, layer4
# 64 x 2 x 2; teacher TPP space 64 x 4 x 4, final map 128 x 2 x 2 (connector shapes derived from
# them). Tests pass data_root and the random-init teacher checkpoint via --cfg-options and set
# MMSCALEKD_KILL_AT to kill the run.
# Everything but the model and the 64 px crop repeats tiny_resume_classifier.py.
_base_ = ['../../../configs/_base_/default_runtime.py']

custom_imports = dict(imports=['tests.test_reliability._kill_hook'], allow_failed_imports=False)
data_root = 'PLACEHOLDER'

data_preprocessor = dict(type='ClsDataPreprocessor', num_classes=2, mean=[127.5, 127.5, 127.5],
                         std=[64.0, 64.0, 64.0], to_rgb=True)

model = dict(
    type='ScaleKDDistiller',
    student=dict(
        type='ImageClassifier',
        backbone=dict(type='ResNet', depth=18, stem_channels=8, base_channels=8,
                      out_indices=(2, 3), drop_path_rate=0.2),
        neck=dict(type='GlobalAveragePooling'),
        head=dict(type='LinearClsHead', num_classes=2, in_channels=64,
                  loss=dict(type='CrossEntropyLoss', loss_weight=1.0), topk=(1, ))),
    teacher=dict(
        type='MMPretrainSwinTeacher',
        model=dict(
            type='ImageClassifier',
            backbone=dict(type='SwinTransformer', img_size=64, window_size=2,
                          arch=dict(embed_dims=16, depths=[1, 1, 1, 1],
                                    num_heads=[1, 1, 1, 1])),
            neck=dict(type='GlobalAveragePooling'),
            head=dict(type='LinearClsHead', num_classes=2, in_channels=128)),
        checkpoint='PLACEHOLDER'),  # tests write a random-init teacher and pass its path
    distill_stages=[
        dict(name='s3', student_index=0, tpp=True,
             connector=dict(type='CrossAttentionProjector', num_heads=2, softmax_scale=5.0),
             loss=dict(type='DualViewMimicLoss', alpha=(0.08, 0.06))),
        dict(name='s4', student_index=1, query_from='s3',
             connector=dict(type='CrossAttentionProjector', num_heads=2, softmax_scale=5.0),
             loss=dict(type='DualViewMimicLoss', alpha=(0.08, 0.06))),
    ],
    logit_loss=dict(type='SoftTargetKDLoss', temperature=1.0, loss_weight=0.5),
    label_loss_weight=0.5,
)

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='RandomResizedCrop', scale=64),
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
