# Runtime shared by every mmscalekd experiment (OpenMMLab text-style config). Hook choices follow
# mmpretrain 1.2's configs/_base_/default_runtime.py, which the official ScaleKD configs inherit
# through their student configs (docs/recipe_audit.md); deviations are marked.
default_scope = 'mmscalekd'  # our registries; their parents resolve bare mmpretrain types

default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=100),  # mmpretrain default: a line every 100 iters
    param_scheduler=dict(type='ParamSchedulerHook'),
    # One checkpoint per epoch (mmpretrain default). Ours: SafeCheckpointHook (MMEngine's
    # CheckpointHook, written atomically, stale temporary files removed, rotation never deletes
    # the newest checkpoint with finite weights; docs/reliability.md) and max_keep_ckpts=3: 300
    # epochs of checkpoints would fill a disk, the last 3 are enough to resume.
    checkpoint=dict(type='SafeCheckpointHook', interval=1, max_keep_ckpts=3),
    sampler_seed=dict(type='DistSamplerSeedHook'),  # reshuffle per epoch in DDP
    visualization=dict(type='VisualizationHook', enable=False),
    # Ours: stop at the first NaN/inf loss, naming the term and the last finite checkpoint
    # (tools/train.py exits with status 1). Off: --cfg-options default_hooks.non_finite=None.
    non_finite=dict(type='NonFiniteLossHook'),
)

env_cfg = dict(
    cudnn_benchmark=False,  # mmpretrain default
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),  # mmpretrain default
    # nccl for GPUs; tools/train.py switches it to gloo on machines without CUDA
    # (mmscalekd.utils.adapt_cfg_to_device).
    dist_cfg=dict(backend='nccl'),
)

# Log values smoothed over the last 10 iterations (MMEngine's default window).
log_processor = dict(window_size=10)

# Scalars land in WORK_DIR/<timestamp>/vis_data/scalars.json (one JSON per line), which
# tools/analysis_tools/plot_curves.py reads.
vis_backends = [dict(type='LocalVisBackend')]
visualizer = dict(type='UniversalVisualizer', vis_backends=vis_backends)

log_level = 'INFO'
load_from = None
resume = False

# mmpretrain default: a random seed per run, non-deterministic cuDNN. Set seed=0 (or use
# --cfg-options randomness.seed=0) to repeat a run.
randomness = dict(seed=None, deterministic=False)
