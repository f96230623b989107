"""MLP-Mixer student with ScaleKD's stage taps (grid-shaped, pre-norm, plus a head output).

Paper: *ScaleKD: Strong Vision Transformers Could Be Excellent Teachers*, NeurIPS 2024
(https://arxiv.org/abs/2411.06786).
"""
from __future__ import annotations

from typing import List, Sequence, Tuple

from mmpretrain.models.backbones import MlpMixer
from torch import Tensor

from mmscalekd.registry import MODELS


@MODELS.register_module()
class MlpMixerTaps(MlpMixer):
    """mmpretrain ``MlpMixer`` with the official ScaleKD Mixer taps.

    Differences from upstream (the official taps: ``out_indices=[-7, -5, -3, -1]`` read as
    ``fea_s[2]``, ``fea_s[3]`` at ``deep-optimization/ScaleKD@ee56c7e
    mmcls/models/classifiers/distiller.py:161``; ``docs/recipe_audit.md``, Mixer student.taps):

    * every tap is the block output **before** the final LayerNorm, including the
      last one, reshaped to a grid ``(B, C, Hp, Wp)`` (upstream returns
      ``(B, C, N)`` and normalises the last block's output);
    * one **extra** output is appended: the last block after the final norm, also
      ``(B, C, Hp, Wp)``, for the classification head (use a
      ``GlobalAveragePooling`` neck);
    * non-negative ``out_indices`` are accepted (upstream's check rejects them).

    For Mixer-B/16 at 224 with ``out_indices=(9, 11)`` the outputs are
    ``[768 x 14 x 14 (block 9), 768 x 14 x 14 (block 11, pre-norm), 768 x 14 x 14
    (normed, for the head)]``; Mixer-S/16 uses ``(5, 7)``.

    Args:
        arch (str | dict): As upstream. Defaults to 'base'.
        out_indices (int | Sequence[int]): Blocks to tap. Defaults to -1.
        **kwargs: Other arguments of mmpretrain's ``MlpMixer``.
    """

    def __init__(self, arch: str | dict = 'base', out_indices: int | Sequence[int] = -1,
                 **kwargs) -> None:
        if isinstance(arch, str):
            if arch.lower() not in self.arch_zoo:
                raise ValueError(f'arch {arch!r} is not one of {sorted(self.arch_zoo)}')
            num_layers = self.arch_zoo[arch.lower()]['num_layers']
        else:
            num_layers = arch['num_layers']
        if isinstance(out_indices, int):
            out_indices = [out_indices]
        resolved: List[int] = []
        for index in out_indices:
            if not isinstance(index, int) or not -num_layers <= index < num_layers:
                raise ValueError(f'out_indices entries must be ints in [-{num_layers}, '
                                 f'{num_layers - 1}], got {index!r}')
            resolved.append(index % num_layers - num_layers)  # upstream wants negatives
        super().__init__(arch=arch, out_indices=resolved, **kwargs)

    def forward(self, x: Tensor) -> Tuple[Tensor, ...]:
        """Args:
            x (Tensor): ``(B, 3, H, W)`` at the configured ``img_size``.

        Returns:
            Tuple[Tensor, ...]: one pre-norm ``(B, C, Hp, Wp)`` map per out index, then
            the normed final map ``(B, C, Hp, Wp)``.
        """
        if tuple(x.shape[2:]) != tuple(self.img_size):
            raise ValueError(f'MlpMixer needs inputs of size {tuple(self.img_size)}, '
                             f'got {tuple(x.shape[2:])}')
        x, hw = self.patch_embed(x)
        B, _, C = x.shape

        def grid(t: Tensor) -> Tensor:
            return t.transpose(1, 2).reshape(B, C, hw[0], hw[1])

        outs = []
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i in self.out_indices:
                outs.append(grid(x))
        outs.append(grid(self.norm1(x)))
        return tuple(outs)
