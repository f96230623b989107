# A tiny ScaleKD distillation for the end-to-end test (tests/test_e2e.py): a 4-stage Swin (embed 16,
# depth 1, window 2) at 64 px teaches the ResNet-18-D layout of tiny_e2e_base.py. Student taps
# layer3 32 x 4 x 4 and layer4 64 x 2 x 2; teacher TPP space 64 x 4 x 4, final map 128 x 2 x 2
# (the distiller derives the connector shapes from them).
# The teacher checkpoint is a random-init state dict the test writes and passes with
# --cfg-options model.teacher.checkpoint=<file>.
_base_ = ['./tiny_e2e_base.py']

model = dict(
    type='ScaleKDDistiller',
    student={{_base_.student}},
    teacher=dict(
        type='MMPretrainSwinTeacher',
        model=dict(
            type='ImageClassifier',
            backbone=dict(type='SwinTransformer', img_size=64, window_size=2,
                          arch=dict(embed_dims=16, depths=[1, 1, 1, 1],
                                    num_heads=[1, 1, 1, 1])),
            neck=dict(type='GlobalAveragePooling'),
            head=dict(type='LinearClsHead', num_classes={{_base_.num_classes}},
                      in_channels=128)),
        checkpoint='work_dirs/tiny_e2e_teacher.pth'),  # tests override
    distill_stages=[
        dict(name='s3', student_index=0, tpp=True,
             connector=dict(type='CrossAttentionProjector', num_heads=2, softmax_scale=5.0),
             loss=dict(type='DualViewMimicLoss', alpha=(0.08, 0.06))),
        dict(name='s4', student_index=1, query_from='s3',
             connector=dict(type='CrossAttentionProjector', num_heads=2, softmax_scale=5.0),
             loss=dict(type='DualViewMimicLoss', alpha=(0.08, 0.06))),
    ],
    logit_loss=dict(type='SoftTargetKDLoss', temperature=1.0, loss_weight=0.5),
    label_loss_weight=0.5,
)
