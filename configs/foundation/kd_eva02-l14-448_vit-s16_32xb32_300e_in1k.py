# Vanilla logit KD (no feature stages), the baseline: EVA-02-L/14 at 448 px teacher -> ViT-S/16
# (DeiT-S recipe) student, advanced training strategy (32 GPUs x 32 images, 300 epochs),
# ImageNet-1K. A foundation-model teacher by timm name; not in the ScaleKD paper and not trained
# by us (no result).
# Recipe: configs/scalekd/scalekd_swin-l_vit-s16_32xb32_300e_in1k.py, the ViT-S/16 advanced
# recipe: same dataset, schedule, optimiser, EMA and student; the connector and loss choices are
# those of the plain-ViT teacher -> ViT student recipe,
# configs/scalekd/scalekd_beit-l14_vit-b14_32xb32_300e_in1k.py.
# Twin: configs/foundation/scalekd_eva02-l14-448_vit-s16_32xb32_300e_in1k.py (same everything but
# distill_stages).
# Train: bash tools/dist_train.sh <this config> 8  (x4 nodes; configs/foundation/README.md)
_base_ = [
    '../_base_/datasets/imagenet_bs64_advanced.py',
    '../_base_/schedules/advanced_adamw_300e.py',
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
BATCH_PER_GPU = 32

model = dict(
    type='ScaleKDDistiller',
    student=dict(
        type='ImageClassifier',
        backbone=dict(
            type='VisionTransformer',
            arch='deit-s',
            img_size=224,
            patch_size=16,
            with_cls_token=False,  # maps out (no cls token), for the GAP neck
            out_type='featmap',
            drop_path_rate=0.0,
            out_indices=(8, 11)),
        neck=dict(type='GlobalAveragePooling'),
        head=dict(
            type='LinearClsHead',
            num_classes=1000,
            in_channels=384,
            loss=dict(type='LabelSmoothLoss', label_smooth_val=0.1, mode='original'),
            topk=(1, 5)),
        init_cfg=[
            dict(type='TruncNormal', layer='Linear', std=0.02),
            dict(type='Constant', layer='LayerNorm', val=1.0, bias=0.0),
        ]),
    teacher=dict(type='TimmTeacher', model_name=TEACHER, pretrained=True),
    distill_stages=[],  # logit KD only
    logit_loss=dict(type='SoftTargetKDLoss', temperature=KD_TEMPERATURE, loss_weight=KD_WEIGHT),
    label_loss_weight=1.0 - KD_WEIGHT,
    input_size=224,  # the student's resolution (the teacher runs at its own)
)

train_dataloader = dict(batch_size=BATCH_PER_GPU)
optim_wrapper = dict(
    clip_grad=dict(max_norm=5.0),
    # no decay on the cls token and position embeddings ('.pos_embed' also matches the
    # connectors' position embeddings, as in the recipe)
    paramwise_cfg=dict(custom_keys={
        '.cls_token': dict(decay_mult=0.0),
        '.pos_embed': dict(decay_mult=0.0),
    }))
custom_hooks = [dict(type='EMAHook', momentum=1e-4, priority='ABOVE_NORMAL')]  # evaluated on EMA
