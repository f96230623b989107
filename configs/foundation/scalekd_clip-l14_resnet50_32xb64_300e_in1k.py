# ScaleKD (CAP + DFM + TPP + logit KD): CLIP-L/14 teacher -> ResNet-50 (ResNet-50-D, advanced
# recipe) student, advanced training strategy (32 GPUs x 64 images, 300 epochs), ImageNet-1K. A
# foundation-model teacher by timm name; not in the ScaleKD paper and not trained by us (no
# result).
# Recipe: configs/scalekd/scalekd_beit-l14_resnet50_32xb64_300e_in1k.py, the plain-ViT teacher ->
# ResNet-50 advanced recipe: same dataset and pipeline, schedule, student, connector and loss
# choices; the teacher differs.
# Twin: configs/foundation/kd_clip-l14_resnet50_32xb64_300e_in1k.py (same everything but
# distill_stages).
# Train: bash tools/dist_train.sh <this config> 8  (x4 nodes; configs/foundation/README.md)
_base_ = [
    '../_base_/datasets/imagenet_bs64_advanced_resnet.py',
    '../_base_/schedules/advanced_lamb_300e.py',
    '../_base_/default_runtime.py',
]
default_scope = 'mmscalekd'  # our registries; bare mmpretrain types resolve through them

# ---- teacher -------------------------------------------------------------------------------------
# timm vit_large_patch14_clip_224.openai_ft_in12k_in1k: OpenAI CLIP ViT-L/14 image tower,
# fine-tuned on IN-12K then IN-1K at 224 px (a pre-norm before the blocks).
# 88.176 top-1 at 224 px, 304.20 M params (timm results/results-imagenet.csv@0173a13); 81.08 GMACs
# per image (timm results/benchmark-infer-amp-nchw-pt240-cu124-rtx4090.csv@5c33776).
# pretrained=True: timm fetches the weights from the Hugging Face hub. Without a network, download
# them elsewhere and pass the file (docs/teachers.md, "Weights"). Normalisation: timm's
# pretrained_cfg, applied by the teacher to the student's batch. Last stage for TPP: the last two
# blocks, 1024 x 16 x 16 (224 / 14), one class token (docs/teachers.md, "Stage taps").
TEACHER = 'vit_large_patch14_clip_224.openai_ft_in12k_in1k'

# ---- choices of the recipe -----------------------------------------------------------------------
# Student taps s3 / s4: layer3 (1024 x 14 x 14) and layer4 (2048 x 7 x 7) at 224 px; every
# connector width and grid is derived.
NUM_HEADS = 8
SOFTMAX_SCALE = 0.2  # attention-logit multiplier of both views
ALPHA = (0.016, 0.008)  # DFM (spatial, frequency) weights of s3 and s4
KD_TEMPERATURE = 1.0
KD_WEIGHT = 0.5  # the label loss gets 1 - KD_WEIGHT

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
    teacher=dict(type='TimmTeacher', model_name=TEACHER, pretrained=True),
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
    logit_loss=dict(type='SoftTargetKDLoss', temperature=KD_TEMPERATURE, loss_weight=KD_WEIGHT),
    label_loss_weight=1.0 - KD_WEIGHT,
)

optim_wrapper = dict(clip_grad=dict(max_norm=5.0))  # as the recipe
