"""One minimal case per registered teacher adapter, student backbone and distiller.

Each entry is ``dict(type=..., cfg=..., size=...)``; ``size`` is the square input size.
These modules do not fit the generic ``forward(**inputs)`` table of
``tests/test_models/registry_cases.py`` (frozen teachers, tuple outputs, a training
step), so ``tests/test_models/test_scalekd_cases.py`` runs them by kind.
"""
from tests import _builders as B

_TIMM_VIT = dict(img_size=32, depth=2, embed_dim=16, num_heads=2, num_classes=10)

CASES = [
    dict(type='MMPretrainSwinTeacher', cfg=B.swin_teacher(), size=64),
    dict(type='MMPretrainViTTeacher', cfg=B.eva_teacher(), size=56),
    dict(type='MMPretrainConvNeXtTeacher', size=64, cfg=dict(
        type='MMPretrainConvNeXtTeacher', input_size=64, allow_random_teacher=True, model=dict(
            type='ImageClassifier',
            backbone=dict(type='ConvNeXt', arch=dict(depths=[1, 1, 1, 1],
                                                     channels=[8, 16, 32, 64])),
            head=B.linear_head(64)))),
    dict(type='TimmTeacher', size=32, cfg=dict(type='TimmTeacher',
                                               model_name='vit_tiny_patch16_224',
                                               model_kwargs=_TIMM_VIT,
                                               allow_random_teacher=True)),
    dict(type='MobileNetV1', size=64,
         cfg=dict(type='MobileNetV1', widen_factor=0.25, out_indices=(2, 3))),
    dict(type='SwinTransformerTaps', size=64,
         cfg=dict(type='SwinTransformerTaps', img_size=64, window_size=2, out_indices=(2, 3),
                  arch=dict(embed_dims=8, depths=[1, 1, 1, 1], num_heads=[1, 1, 1, 1]))),
    dict(type='ConvNeXtTaps', size=64,
         cfg=dict(type='ConvNeXtTaps', out_indices=(2, 3),
                  arch=dict(depths=[1, 1, 1, 1], channels=[8, 16, 32, 64]))),
    dict(type='MlpMixerTaps', size=32,
         cfg=dict(type='MlpMixerTaps', img_size=32, patch_size=8, out_indices=(1, 3),
                  arch=dict(embed_dims=16, num_layers=4, tokens_mlp_dims=8,
                            channels_mlp_dims=32))),
    dict(type='VisionTransformerTaps', size=32,
         cfg=dict(type='VisionTransformerTaps', img_size=32, patch_size=8, out_indices=(1, 3),
                  with_cls_token=False,
                  arch=dict(embed_dims=16, num_layers=4, num_heads=2, feedforward_channels=32))),
    dict(type='ScaleKDDistiller', size=64, cfg=B.distiller(
        B.classifier(dict(type='MobileNetV1', widen_factor=0.25, out_indices=(2, 3)), 256),
        B.swin_teacher(),
        B.stages((128, (4, 4)), (256, (2, 2)), (64, (4, 4)), (128, (2, 2))))),
]
