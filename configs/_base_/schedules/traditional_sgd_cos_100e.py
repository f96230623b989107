# ScaleKD traditional strategy, MobileNet-V1 student: SGD lr 0.1 with a cosine schedule over 100
# epochs. The official traditional MobileNet-V1 config takes its recipe from mmcls'
# imagenet_bs256_coslr.py (deep-optimization/ScaleKD@5ba1f04
# configs/mobilenet_v1/mobilenet_v1.py:1-6); that file is not in the stored copy of the official
# repository, so the values are those of the stock open-mmlab/mmpretrain@v1.2.0
# configs/_base_/schedules/imagenet_bs256_coslr.py:1-16.
optim_wrapper = dict(
    optimizer=dict(
        type='SGD',
        lr=0.1,
        momentum=0.9,
        weight_decay=1e-4,
    ))

# Cosine from lr to 0 over the 100 epochs.
param_scheduler = dict(type='CosineAnnealingLR', T_max=100, by_epoch=True, begin=0, end=100)

train_cfg = dict(by_epoch=True, max_epochs=100, val_interval=1)
val_cfg = dict()
test_cfg = dict()

auto_scale_lr = dict(base_batch_size=256)  # 8 GPUs x 32
