# CPU demo (d) SSLD, replaying a teacher cache: the same run as
# configs/demo/ssld_resnet18-w8_fashion-mnist-2k.py, but the teacher's predictions are read from
# a cache written once, and the teacher is not built (docs/teacher_cache.md).
#   python tools/write_teacher_cache.py configs/teacher_cache/ssld-cached_resnet18-w8_fashion-mnist-2k.py
#   python tools/train.py configs/teacher_cache/ssld-cached_resnet18-w8_fashion-mnist-2k.py
# The demo pipeline has no random transform, so one epoch of views serves every epoch (cycle).
_base_ = ['../demo/_base_/fashion-mnist_label-scarce.py']

cache_dir = 'work_dirs/teacher_cache/ssld_fashion-mnist-2k'

student = dict(
    type='ImageClassifier',
    backbone=dict(type='ResNet_CIFAR', depth=18, in_channels=1, stem_channels=8, base_channels=8,
                  out_indices=(2, 3)),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(type='LinearClsHead', num_classes={{_base_.num_classes}}, in_channels=64,
              loss=dict(type='CrossEntropyLoss')))

# The teacher config is still needed: the cache is checked against it (config and checkpoint
# SHA-256), and the writer and the check mode build it.
teacher = dict(
    type='MMPretrainViTTeacher',
    model=dict(
        type='ImageClassifier',
        backbone=dict(
            type='VisionTransformer',
            arch=dict(embed_dims=128, num_layers=4, num_heads=4, feedforward_channels=512),
            img_size=28, patch_size=7, in_channels=1, out_type='cls_token', final_norm=True),
        neck=None,
        head=dict(type='VisionTransformerClsHead', num_classes={{_base_.num_classes}},
                  in_channels=128)),
    checkpoint='checkpoints/demo/vit-teacher_fashion-mnist.pth',
    tpp_blocks=1)

model = dict(
    type='ScaleKDDistiller',
    student=student,
    teacher=teacher,
    teacher_cache=dict(cache_dir=cache_dir),
    distill_stages=[],
    logit_loss=dict(type='SymmetricKLLoss', temperature=1.0, loss_weight=1.0),
    label_loss_weight=0.0,
    label_free=True,
    data_preprocessor={{_base_.data_preprocessor}})
train_dataloader = dict(
    batch_size={{_base_.batch_size}}, num_workers=0,
    dataset=dict(type='TeacherCacheDataset', dataset={{_base_.unlabeled_train_set}},
                 cache_dir=cache_dir, seed=0, cycle=True),
    sampler=dict(type='EpochTaggedSampler', shuffle=True))
custom_hooks = [dict(type='TeacherCacheHook')]
