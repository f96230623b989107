# A tiny ScaleKD distiller for the benchmark-tool test: a 4-stage Swin (embed 16, depth 1,
# window 2) at 64 px teaches a ResNet-18 layout with 8 base channels. Shapes: student taps
# layer3 32 x 4 x 4 and layer4 64 x 2 x 2; teacher TPP space 64 x 4 x 4, final map 128 x 2 x 2
# (the distiller derives the connector shapes from them).
default_scope = 'mmscalekd'

model = dict(
    type='ScaleKDDistiller',
    student=dict(
        type='ImageClassifier',
        backbone=dict(type='ResNet', depth=18, stem_channels=8, base_channels=8,
                      out_indices=(2, 3)),
        neck=dict(type='GlobalAveragePooling'),
        head=dict(type='LinearClsHead', num_classes=10, in_channels=64,
                  loss=dict(type='CrossEntropyLoss', loss_weight=1.0))),
    teacher=dict(
        type='MMPretrainSwinTeacher',
        model=dict(
            type='ImageClassifier',
            backbone=dict(type='SwinTransformer', img_size=64, window_size=2,
                          arch=dict(embed_dims=16, depths=[1, 1, 1, 1],
                                    num_heads=[1, 1, 1, 1])),
            neck=dict(type='GlobalAveragePooling'),
            head=dict(type='LinearClsHead', num_classes=10, in_channels=128)),
        allow_random_teacher=True),  # a benchmark: random weights time the same
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

optim_wrapper = dict(optimizer=dict(type='SGD', lr=0.01, momentum=0.9, weight_decay=1e-4))
