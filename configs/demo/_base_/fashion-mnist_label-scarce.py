# Data, schedule and runtime of the CPU demo (tools/demo.py): Fashion-MNIST with few labels.
# Label-scarce setting (issue: "e.g. 2k labels; the teacher sees all images"): the labeled set is
# the first `num_labeled` training images (Fashion-MNIST's training order is shuffled, ~200 per
# class); the teacher sees the first `num_pool` training images, labels dropped.
# Every method runs the same number of optimizer steps (`max_iters`) with the same batch size.
default_scope = 'mmscalekd'

data_root = 'data/fashion_mnist'  # tools/setup.sh gunzips the Debian package's IDX files here
num_classes = 10
num_labeled = 2000
num_pool = 60000
batch_size = 64
# 300 steps of 64 = 19.2k images per run: sized so that the whole demo (8 runs) stays under 10 min
# on 2 CPU cores (measured: README, "The main job").
max_iters = 300
val_interval = 60

# ArrayFashionMNIST: mmpretrain's FashionMNIST (same files and samples) with the IDX files decoded
# once per process; the parent builds its 60k samples one tensor at a time, ~1.1 s per dataset and
# 4 datasets per run. serialize_data=False: single-process loading (num_workers=0) needs no pickled
# copy of the data list, and making one (plus MMEngine's gc.collect) cost ~0.6 s per dataset.
fmnist_train = dict(type='ArrayFashionMNIST', data_root=data_root, split='train', download=False,
                    serialize_data=False,
                    pipeline=[dict(type='PackInputs')])

# (a) labels only: the labeled images.
labeled_train_set = dict(fmnist_train, indices=num_labeled)
# (b, c) KD and ScaleKD: labeled images (label term) + the pool without labels (teacher terms).
# The labeled set is repeated len(pool) // len(labeled) times (labeled_repeat='balanced', resolved
# from the built subsets) so that about half of every batch is labeled: shuffled uniformly, a
# batch of 64 would hold ~2 labeled images (2k in 62k), and the
# label term, averaged over those, was so noisy that logit KD ended below labels-only (first full
# demo run: ResNet 72.66 vs 81.07, Mixer 76.11 vs 79.29 top-1).
mixed_train_set = dict(type='LabeledUnlabeledDataset', labeled=labeled_train_set,
                       unlabeled=dict(fmnist_train, indices=num_pool), keep_labels=True,
                       labeled_repeat='balanced')
# (d) SSLD: the same images once each (labels dropped), no label anywhere.
unlabeled_train_set = dict(mixed_train_set, keep_labels=False, labeled_repeat=1)

val_dataloader = dict(
    batch_size=500,
    num_workers=0,
    dataset=dict(type='ArrayFashionMNIST', data_root=data_root, split='test', test_mode=True,
                 serialize_data=False,
                 download=False, pipeline=[dict(type='PackInputs')]),
    sampler=dict(type='DefaultSampler', shuffle=False),
)
val_evaluator = dict(type='Accuracy', topk=(1, ))
test_dataloader = val_dataloader
test_evaluator = val_evaluator

# Fashion-MNIST pixel mean/std 0.2860/0.3530 (../shared/spec/data.md), in 0-255 units.
data_preprocessor = dict(type='MixedLabelClsDataPreprocessor', num_classes=num_classes,
                         mean=[72.93], std=[90.02], to_rgb=False)

optim_wrapper = dict(optimizer=dict(type='AdamW', lr=2e-3, weight_decay=0.05))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=30),
    dict(type='CosineAnnealingLR', by_epoch=False, begin=30, T_max=max_iters - 30,
         eta_min=1e-5),
]
train_cfg = dict(by_epoch=False, max_iters=max_iters, val_interval=val_interval)
val_cfg = dict()
test_cfg = dict()

default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=100, log_metric_by_epoch=False),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='SafeCheckpointHook', by_epoch=False, interval=max_iters, max_keep_ckpts=1),
    non_finite=dict(type='NonFiniteLossHook'),  # stop at a NaN/inf loss (default_runtime.py)
    sampler_seed=dict(type='DistSamplerSeedHook'),
)
log_processor = dict(by_epoch=False)
env_cfg = dict(cudnn_benchmark=False, dist_cfg=dict(backend='nccl'))
vis_backends = [dict(type='LocalVisBackend')]
visualizer = dict(type='UniversalVisualizer', vis_backends=vis_backends)
log_level = 'INFO'
load_from = None
resume = False
randomness = dict(seed=0, deterministic=False)
