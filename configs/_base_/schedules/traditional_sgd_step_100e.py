# ScaleKD traditional strategy, ResNet-50 students (spec §8.2): SGD, 100 epochs, step decay.
optim_wrapper = dict(
    optimizer=dict(
        type='SGD',
        lr=0.1,  # spec §8.2, for 8 GPUs x 32 = 256 images per step
        momentum=0.9,  # spec §8.2
        weight_decay=1e-4,  # spec §8.2
    ))

# x0.1 at epochs 30, 60 and 90 (spec §8.2)
param_scheduler = dict(type='MultiStepLR', by_epoch=True, milestones=[30, 60, 90], gamma=0.1)

train_cfg = dict(by_epoch=True, max_epochs=100, val_interval=1)  # 100 epochs (spec §8.2)
val_cfg = dict()
test_cfg = dict()

# lr 0.1 belongs to a total batch of 256 (spec §8.2); used only with --auto-scale-lr.
auto_scale_lr = dict(base_batch_size=256)
