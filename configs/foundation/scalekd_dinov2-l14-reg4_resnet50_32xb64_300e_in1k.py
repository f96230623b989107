# ScaleKD (CAP + DFM + TPP): DINOv2-L/14 with 4 registers teacher -> ResNet-50 (ResNet-50-D,
# advanced recipe) student, advanced training strategy (32 GPUs x 64 images, 300 epochs),
# ImageNet-1K. A foundation-model teacher by timm name; not in the ScaleKD paper and not trained
# by us (no result).
# Recipe: configs/scalekd/scalekd_beit-l14_resnet50_32xb64_300e_in1k.py, the plain-ViT teacher ->
# ResNet-50 advanced recipe: same dataset and pipeline, schedule, student, connector and loss
# choices; the teacher differs.
# Train: bash tools/dist_train.sh <this config> 8  (x4 nodes; configs/foundation/README.md)
_base_ = [
    '../_base_/datasets/imagenet_bs64_advanced_resnet.py',
    '../_base_/schedules/advanced_lamb_300e.py',
    '../_base_/default_runtime.py',
]
default_scope = 'mmscalekd'  # our registries; bare mmpretrain types resolve through them

# ---- teacher -------------------------------------------------------------------------------------
# timm vit_large_patch14_reg4_dinov2.lvd142m: DINOv2 ViT-L/14 with 4 register tokens
# (self-supervised on LVD-142M), an image tower without a classifier (num_classes=0): feature
# distillation only. timm builds it for 518 px; img_size=224 resamples its position embedding when
# the weights load.
# No ImageNet top-1 of its own (no classifier). 304.37 M params, 508.9 GMACs per image at its
# native 518 px (timm results/benchmark-infer-amp-nchw-pt240-cu124-rtx4090.csv@5c33776); built
# here at 224.
# pretrained=True: timm fetches the weights from the Hugging Face hub. Without a network, download
# them elsewhere and pass the file (docs/teachers.md, "Weights"). Normalisation: timm's
# pretrained_cfg, applied by the teacher to the student's batch. Last stage for TPP: the last two
# blocks, 1024 x 16 x 16 (224 / 14), a class token and 4 registers (docs/teachers.md, "Stage taps").
TEACHER = 'vit_large_patch14_reg4_dinov2.lvd142m'

# ---- choices of the recipe -----------------------------------------------------------------------
# Student taps s3 / s4: layer3 (1024 x 14 x 14) and layer4 (2048 x 7 x 7) at 224 px; every
# connector width and grid is derived.
NUM_HEADS = 8
SOFTMAX_SCALE = 0.2  # attention-logit multiplier of both views
ALPHA = (0.016, 0.008)  # DFM (spatial, frequency) weights of s3 and s4

model = dict(
    type='ScaleKDDistiller',
    student=dict(
        type='ImageClassifier',
        backbone=dict(type='ResNetV1d', depth=50, out_indices=(2, 3), drop_path_rate=0.0),
        neck=dict(type='GlobalAveragePooling'),
        head=dict(
            type='MultiLabelLinearClsHead',  # BCE on one-hot targets, as the recipe
            num_classes=1000,
            in_channels=2048,
            loss=dict(type='CrossEntropyLoss', use_sigmoid=True, loss_weight=1.0))),
    teacher=dict(type='TimmTeacher', model_name=TEACHER, pretrained=True,
                 model_kwargs=dict(img_size=224)),
    distill_stages=[
        dict(name='s3', student_index=0, tpp=True,  # student stage n-1 -> TPP
             connector=dict(type='CrossAttentionProjector', num_heads=NUM_HEADS,
                            softmax_scale=SOFTMAX_SCALE),
             loss=dict(type='DualViewMimicLoss', alpha=ALPHA)),
        dict(name='s4', student_index=1, query_from='s3',  # queries: the s3 TPP outputs
             connector=dict(type='CrossAttentionProjector', num_heads=NUM_HEADS,
                            softmax_scale=SOFTMAX_SCALE),
             loss=dict(type='DualViewMimicLoss', alpha=ALPHA)),
    ],
    # No classifier in the teacher: no logit KD; the label loss keeps its full weight.
    logit_loss=None,
    label_loss_weight=1.0,
)

optim_wrapper = dict(clip_grad=dict(max_norm=5.0))  # as the recipe
