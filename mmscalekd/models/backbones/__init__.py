"""Student backbones: MobileNet-V1 and thin subclasses exposing ScaleKD's stage taps."""
from .convnext_taps import ConvNeXtTaps
from .mlp_mixer_taps import MlpMixerTaps
from .mobilenet_v1 import MobileNetV1
from .swin_transformer_taps import SwinTransformerTaps
from .vision_transformer_taps import VisionTransformerTaps

__all__ = [
    'MobileNetV1', 'SwinTransformerTaps', 'ConvNeXtTaps', 'MlpMixerTaps', 'VisionTransformerTaps'
]
