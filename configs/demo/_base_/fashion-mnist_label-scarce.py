# Data, schedule and runtime of the CPU demo (tools/demo.py): a small image set with few labels.
# Every dataset below follows the one top-level `data_root` (DataRootRunner), so
# `--cfg-options data_root=DIR` moves them all. DIR holds IDX files (MNIST / Fashion-MNIST
# format) or one sub-folder of images per class (optionally inside train/ and test/); see
# mmscalekd/datasets/image_set.py. For another image set, also give the class count and the
# pixel mean/std that tools/demo.py prints (`model.data_preprocessor.mean=[...]`, ...), or run
# the whole comparison with `python tools/demo.py --data-root DIR`, which sets them.
default_scope = 'mmscalekd'
runner_type = 'DataRootRunner'

data_root = 'data/fashion_mnist'  # tools/setup.sh gunzips the Debian package's IDX files here
num_classes = 10
img_size = 28  # every image is resized to img_size x img_size ...
in_channels = 1  # ... and converted to this many channels (1: grayscale, 3: RGB)
# Label-scarce setting: `num_labeled` labeled training images, drawn per class (stratified,
# seed `subset_seed`) from a pool of `num_pool` training images (None: all) that the
# distillation methods see without labels.
num_labeled = 2000
num_pool = None
subset_seed = 0
batch_size = 64
# Every method runs the same number of optimizer steps with the same batch size; the learning
# rate schedule follows `train_cfg.max_iters` (OneCycleLR takes its length from the train loop).
# 250 steps of 64: the full demo (2 students x 4 methods x 2 seeds) is meant to fit in 10 min on
# 2 idle CPU cores; the wall time is in the README (300 steps took 641 s there, 150 steps x 3
# seeds 449 s). The budget goes to steps before seeds: at 150 steps every method was far from
# done (labels-only ResNet 70.9 % vs 79.8 % at 300 steps, measured by us with tools/demo.py).
max_iters = 250
val_interval = 25
lr = 2e-3

# SmallImageDataset: the split decoded once per process and kept in memory; serialize_data=False:
# single-process loading (num_workers=0) needs no pickled copy of the data list.
image_set = dict(type='SmallImageDataset', img_size=img_size, channels=in_channels,
                 subset_seed=subset_seed, serialize_data=False,
                 pipeline=[dict(type='PackInputs')])

# (a) labels only: the labeled images.
labeled_train_set = dict(image_set, split='train', subset=(num_pool, num_labeled))
# (b, c) KD and ScaleKD: labeled images (label term) + the pool without labels (teacher terms).
# The labeled set is repeated len(pool) // len(labeled) times (labeled_repeat='balanced', resolved
# from the built subsets) so that about half of every batch is labeled: shuffled uniformly, a
# batch of 64 would hold ~2 labeled images (2k in 62k), and the label term, averaged over those,
# was so noisy that logit KD ended below labels-only (first full demo run: ResNet 72.66 vs 81.07,
# Mixer 76.11 vs 79.29 top-1).
mixed_train_set = dict(type='LabeledUnlabeledDataset', labeled=labeled_train_set,
                       unlabeled=dict(image_set, split='train', subset=(num_pool, )),
                       keep_labels=True, labeled_repeat='balanced')
# (d) SSLD: the same images once each (labels dropped), no label anywhere.
unlabeled_train_set = dict(mixed_train_set, keep_labels=False, labeled_repeat=1)

val_dataloader = dict(
    batch_size=500,
    num_workers=0,
    dataset=dict(image_set, split='test', test_mode=True),
    sampler=dict(type='DefaultSampler', shuffle=False),
)
val_evaluator = dict(type='Accuracy', topk=(1, ))
test_dataloader = val_dataloader
test_evaluator = val_evaluator

# Pixel mean/std of the 60,000 Fashion-MNIST training images in 0-255 units, computed by
# mmscalekd.datasets.ImageSet.pixel_stats (tools/demo.py computes them for any --data-root).
data_preprocessor = dict(type='MixedLabelClsDataPreprocessor', num_classes=num_classes,
                         mean=[72.94], std=[90.02], to_rgb=False)

optim_wrapper = dict(optimizer=dict(type='AdamW', lr=lr, weight_decay=0.05))
# Warm-up over the first 10 % of the steps from lr / 100, then cosine decay to lr / 200 = 1e-5.
param_scheduler = [
    dict(type='OneCycleLR', eta_max=lr, pct_start=0.1, anneal_strategy='cos', div_factor=100.0,
         final_div_factor=2.0, by_epoch=False),
]
train_cfg = dict(by_epoch=False, max_iters=max_iters, val_interval=val_interval)
val_cfg = dict()
test_cfg = dict()

default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=100, log_metric_by_epoch=False),
    param_scheduler=dict(type='ParamSchedulerHook'),
    # interval=-1: no periodic checkpoint; the last one is saved (save_last) whatever max_iters.
    checkpoint=dict(type='SafeCheckpointHook', by_epoch=False, interval=-1, save_last=True,
                    max_keep_ckpts=1),
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
