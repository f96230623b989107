# ScaleKD traditional strategy, MobileNet-V1 student (spec §8.2): the ResNet-50 data and batch,
# SGD lr 0.1 with a cosine schedule over 100 epochs.
optim_wrapper = dict(
    optimizer=dict(
        type='SGD',
        lr=0.1,  # spec §8.2
        momentum=0.9,  # as the ResNet-50 recipe (spec §8.2 "the same ... SGD")
        weight_decay=1e-4,  # as the ResNet-50 recipe (mmpretrain imagenet_bs256_coslr.py)
    ))

# Cosine from lr to 0 over the 100 epochs (spec §8.2).
param_scheduler = dict(type='CosineAnnealingLR', T_max=100, by_epoch=True, begin=0, end=100)

train_cfg = dict(by_epoch=True, max_epochs=100, val_interval=1)
val_cfg = dict()
test_cfg = dict()

auto_scale_lr = dict(base_batch_size=256)  # 8 GPUs x 32 (spec §8.2)
