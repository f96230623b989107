# ScaleKD advanced strategy, ConvNeXt-T / Swin-T / DeiT students (spec §8.2): AdamW,
# 20-epoch warm-up, cosine to epoch 300. Per-student additions go in the leaf config:
#   Swin-T, DeiT: optim_wrapper.clip_grad=dict(max_norm=5.0);
#   DeiT: paramwise_cfg.custom_keys for '.cls_token' and '.pos_embed' (decay_mult=0.0; the
#     '.pos_embed' key also matches the CAP connectors' pos_embed, as in the official configs);
#   EMA (custom_hooks EMAHook, momentum 1e-4) for ConvNeXt-T / Swin-T / DeiT.
#   Mixer-S/B use AdamW 7e-4 / 0.067, warm-up from 1e-6 x and clip 1.0 (spec §8.2).
optim_wrapper = dict(
    optimizer=dict(
        type='AdamW',
        lr=5e-4 * 1024 / 512,  # 1e-3 for a total batch of 1024 (spec §8.2)
        weight_decay=0.05,  # spec §8.2
        eps=1e-8,  # mmpretrain imagenet_bs1024_adamw_swin.py
        betas=(0.9, 0.999),  # mmpretrain imagenet_bs1024_adamw_swin.py
    ),
    # No weight decay on norms, biases and other 1-D ("flat") parameters (spec §8.2).
    paramwise_cfg=dict(norm_decay_mult=0.0, bias_decay_mult=0.0, flat_decay_mult=0.0),
)

param_scheduler = [
    # Linear warm-up from 1e-3 x lr over 20 epochs, per iteration (spec §8.2).
    dict(type='LinearLR', start_factor=1e-3, by_epoch=True, begin=0, end=20,
         convert_to_iter_based=True),
    # Cosine to eta_min 1e-5 at epoch 300 (spec §8.2).
    dict(type='CosineAnnealingLR', eta_min=1e-5, by_epoch=True, begin=20),
]

train_cfg = dict(by_epoch=True, max_epochs=300, val_interval=1)  # 300 epochs (spec §8.2)
val_cfg = dict()
test_cfg = dict()

auto_scale_lr = dict(base_batch_size=1024)  # spec §8.2 (5e-4 x 1024 / 512)
