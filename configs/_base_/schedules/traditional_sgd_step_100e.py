# ScaleKD traditional strategy, ResNet-50 students: SGD, 100 epochs, step decay. The official
# traditional ResNet-50 student config inherits mmcls' imagenet_bs256.py
# (deep-optimization/ScaleKD@5ba1f04 configs/resnet/resnet50_8xb32_in1k.py:1-5); that file is not
# in the stored copy of the official repository, so the values are those of the stock
# open-mmlab/mmpretrain@v1.2.0 configs/_base_/schedules/imagenet_bs256.py:1-16.
optim_wrapper = dict(
    optimizer=dict(
        type='SGD',
        lr=0.1,  # for 8 GPUs x 32 = 256 images per step
        momentum=0.9,
        weight_decay=1e-4,
    ))

# x0.1 at epochs 30, 60 and 90
param_scheduler = dict(type='MultiStepLR', by_epoch=True, milestones=[30, 60, 90], gamma=0.1)

train_cfg = dict(by_epoch=True, max_epochs=100, val_interval=1)
val_cfg = dict()
test_cfg = dict()

# lr 0.1 belongs to a total batch of 256; used only with --auto-scale-lr.
auto_scale_lr = dict(base_batch_size=256)
