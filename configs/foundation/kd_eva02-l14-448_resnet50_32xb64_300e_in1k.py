# Vanilla logit KD (no feature stages), the baseline: EVA-02-L/14 at 448 px teacher -> ResNet-50
# (ResNet-50-D, advanced recipe) student, advanced training strategy (32 GPUs x 64 images, 300
# epochs), ImageNet-1K. A foundation-model teacher by timm name; not in the ScaleKD paper and not
# trained by us (no result).
# Recipe: configs/scalekd/scalekd_beit-l14_resnet50_32xb64_300e_in1k.py, the plain-ViT teacher ->
# ResNet-50 advanced recipe: same dataset and pipeline, schedule, student, connector and loss
# choices; the teacher differs.
# Twin: configs/foundation/scalekd_eva02-l14-448_resnet50_32xb64_300e_in1k.py (same everything but
# distill_stages).
# Train: bash tools/dist_train.sh <this config> 8  (x4 nodes; configs/foundation/README.md)
_base_ = [
    '../_base_/datasets/imagenet_bs64_advanced_resnet.py',
    '../_base_/schedules/advanced_lamb_300e.py',
    '../_base_/default_runtime.py',
]
default_scope = 'mmscalekd'  # our registries; bare mmpretrain types resolve through them

# ---- teacher -------------------------------------------------------------------------------------
# timm eva02_large_patch14_448.mim_m38m_ft_in22k_in1k: EVA-02 (MIM on Merged-38M from an EVA-CLIP
# teacher), fine-tuned on IN-22K then IN-1K at 448 px; RoPE in every block.
# 90.052 top-1 at 448 px, 305.08 M params (timm results/results-imagenet.csv@0173a13); 362.33
# GMACs per image at 448 (timm results/benchmark-infer-amp-nchw-pt240-cu124-rtx4090.csv@5c33776).
# pretrained=True: timm fetches the weights from the Hugging Face hub. Without a network, download
# them elsewhere and pass the file (docs/teachers.md, "Weights"). Normalisation: timm's
# pretrained_cfg, applied by the teacher to the student's batch. Last stage for TPP: the last two
# blocks, 1024 x 32 x 32 (448 / 14), one class token (docs/teachers.md, "Stage taps").
# The teacher runs at its own 448 px: the student's 224 px batch is resized (bilinear,
# antialiased) for it, so the teacher sees an upsampled crop, not the 448 px images its 90.05 was
# measured on. model_kwargs=dict(img_size=224) runs it at 224 (16 x 16 tokens; 81.15 GMACs for
# eva02_large_patch14_224 in the same benchmark file) instead.
TEACHER = 'eva02_large_patch14_448.mim_m38m_ft_in22k_in1k'

# ---- choices of the recipe -----------------------------------------------------------------------
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
    distill_stages=[],  # logit KD only
    logit_loss=dict(type='SoftTargetKDLoss', temperature=KD_TEMPERATURE, loss_weight=KD_WEIGHT),
    label_loss_weight=1.0 - KD_WEIGHT,
    input_size=224,  # the student's resolution (the teacher runs at its own)
)

optim_wrapper = dict(clip_grad=dict(max_norm=5.0))  # as the recipe
