# ScaleKD advanced strategy, ConvNeXt-T / Swin-T / ViT students: AdamW, 20-epoch warm-up,
# cosine to epoch 300. Official: deep-optimization/ScaleKD@5ba1f04
# configs/_base_/schedules/imagenet_bs1024_adamw_swin.py:3-41 (the stored copy's text; see the
# Sources of docs/recipe_audit.md). Per-student additions are in the leaf configs (clipping,
# the ViTs' '.cls_token' / '.pos_embed' rules, EMA).
optim_wrapper = dict(
    optimizer=dict(
        type='AdamW',
        lr=5e-4 * 1024 / 512,  # 1e-3, written for a total batch of 1024 (same file:1-2, 6)
        weight_decay=0.05,
        eps=1e-8,
        betas=(0.9, 0.999),
    ),
    # No weight decay on norms, biases, other 1-D parameters and the Swin position tables
    # (same file:10-17). The connectors' norms and biases follow the same rules.
    paramwise_cfg=dict(
        norm_decay_mult=0.0,
        bias_decay_mult=0.0,
        flat_decay_mult=0.0,
        custom_keys={
            '.absolute_pos_embed': dict(decay_mult=0.0),
            '.relative_position_bias_table': dict(decay_mult=0.0),
        }),
)

param_scheduler = [
    # Linear warm-up from 1e-3 x lr over 20 epochs, per iteration (same file:23-29).
    dict(type='LinearLR', start_factor=1e-3, by_epoch=True, begin=0, end=20,
         convert_to_iter_based=True),
    # Cosine to eta_min 1e-5 from epoch 20 to the end (same file:31).
    dict(type='CosineAnnealingLR', eta_min=1e-5, by_epoch=True, begin=20),
]

# 300 epochs (same file:35). The official val_interval=301 never validates during training;
# ours validates every epoch (no effect on training; --cfg-options train_cfg.val_interval=301).
train_cfg = dict(by_epoch=True, max_epochs=300, val_interval=1)
val_cfg = dict()
test_cfg = dict()

auto_scale_lr = dict(base_batch_size=1024)  # same file:41; used only with --auto-scale-lr
