# ScaleKD advanced strategy, ResNet-50 and MobileNet-V1 students: LAMB, 5-epoch warm-up, cosine
# to 0 at epoch 300. Official: deep-optimization/ScaleKD@ee56c7e
# configs/_base_/schedules/imagenet_bs2048_coslr_Lamb.py:2-37. The ResNet-50 leaves add
# gradient clipping 5.0; the MobileNet-V1 leaf sets lr 2e-3 and weight decay 0.004.
optim_wrapper = dict(
    optimizer=dict(type='Lamb', lr=5e-3, weight_decay=0.02))  # same file:5-6, total batch 2048

param_scheduler = [
    # Linear warm-up from 0.25 x lr over the first 5 epochs, per iteration (same file:11-19).
    dict(type='LinearLR', start_factor=0.25, by_epoch=True, begin=0, end=5,
         convert_to_iter_based=True),
    # Cosine from epoch 5 to 300 (same file:21-27); no eta_min: MMEngine's default floor 0.
    dict(type='CosineAnnealingLR', T_max=295, by_epoch=True, begin=5, end=300),
]

# 300 epochs (same file:31); validation every epoch is ours (official val_interval=301).
train_cfg = dict(by_epoch=True, max_epochs=300, val_interval=1)
val_cfg = dict()
test_cfg = dict()

auto_scale_lr = dict(base_batch_size=2048)  # same file:37; used only with --auto-scale-lr
