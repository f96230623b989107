# ScaleKD advanced strategy, MLP-Mixer students: AdamW 7e-4 / 0.067, 20-epoch warm-up from
# 1e-6 x lr, cosine over the remaining 280 epochs to 0. Official: deep-optimization/ScaleKD@5ba1f04
# configs/_base_/schedules/imagenet_bs1024_AdamW_mlp.py:2-40 (the stored copy's text; see the
# Sources of docs/recipe_audit.md). Gradient clipping (1.0) is in the leaf configs.
optim_wrapper = dict(
    optimizer=dict(type='AdamW', lr=7e-4, weight_decay=0.067, eps=1e-8, betas=(0.9, 0.999)),
    # Decay on every parameter (norms and biases included) except these two names (same
    # file:6-9); '.pos_embed' also matches the connectors' position embeddings.
    paramwise_cfg=dict(custom_keys={
        '.cls_token': dict(decay_mult=0.0),
        '.pos_embed': dict(decay_mult=0.0),
    }),
)

param_scheduler = [
    # same file:15-22
    dict(type='LinearLR', start_factor=1e-6, by_epoch=True, begin=0, end=20,
         convert_to_iter_based=True),
    # same file:24-30; no eta_min: MMEngine's default floor 0
    dict(type='CosineAnnealingLR', T_max=280, by_epoch=True, begin=20, end=300),
]

# 300 epochs (same file:34); validation every epoch is ours (official val_interval=301).
train_cfg = dict(by_epoch=True, max_epochs=300, val_interval=1)
val_cfg = dict()
test_cfg = dict()

auto_scale_lr = dict(base_batch_size=1536)  # same file:40; used only with --auto-scale-lr
