"""Base class of the frozen teacher adapters used by ScaleKD.

Paper: *ScaleKD: Strong Vision Transformers Could Be Excellent Teachers*, NeurIPS 2024
(https://arxiv.org/abs/2411.06786).
"""
from __future__ import annotations

import os.path as osp
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.logging import MMLogger
from mmengine.model import BaseModule
from mmengine.runner.checkpoint import CheckpointLoader
from torch import Tensor

from mmscalekd.registry import MODELS, build_checked

_REMOTE_PREFIXES = ('http://', 'https://', 's3://', 'open-mmlab://', 'torchvision://',
                    'mmcls://', 'openmmlab://', 'modelzoo://', 'pavi://')


@dataclass
class TeacherTargets:
    """What one teacher forward gives the distiller.

    Attributes:
        feature (Tensor): Target map of the teacher's last stage, ``(B, C, H, W)``.
        logits (Tensor | None): Class logits, ``(B, K)``; None when they were not asked for
            (``forward_targets(x, with_logits=False)``).
    """

    feature: Tensor
    logits: Optional[Tensor]


def _to_hw(size: Union[int, Sequence[int]], name: str) -> Tuple[int, int]:
    if isinstance(size, bool):
        raise TypeError(f'{name} must be an int or a pair of ints, got {size!r}')
    if isinstance(size, int):
        size = (size, size)
    if (not isinstance(size, (tuple, list)) or len(size) != 2
            or not all(isinstance(s, int) and not isinstance(s, bool) and s > 0 for s in size)):
        raise ValueError(f'{name} must be a positive int or a pair of positive ints, '
                         f'got {size!r}')
    return int(size[0]), int(size[1])


def _as_channel_vector(value: Optional[Sequence[float]], name: str) -> Optional[Tensor]:
    if value is None:
        return None
    t = torch.as_tensor(value, dtype=torch.float32).flatten()
    if t.numel() not in (1, 3):
        raise ValueError(f'{name} must hold 1 or 3 values (one per RGB channel), got {value!r}')
    if name.endswith('std') and bool((t <= 0).any()):
        raise ValueError(f'{name} must be positive, got {value!r}')
    return t.view(1, -1, 1, 1)


class BaseTeacher(BaseModule):
    """Frozen teacher wrapped for ScaleKD: targets, logits and its last stage (TPP).

    The adapter builds (or takes) the teacher network, loads its weights once,
    freezes every parameter and keeps the whole network in ``eval()`` mode
    whatever ``train()`` is called with (unless ``train_mode=True``, which
    reproduces the official code, whose teacher ran in train mode with stochastic
    depth active; see spec §5 / §9.1).

    It owns the teacher's input convention: the distiller tells it the student's
    normalisation through :meth:`set_student_normalization`; if the teacher's
    ``mean``/``std`` differ, inputs are de-normalised with the student's values
    and re-normalised with the teacher's (the idea of timm's
    ``DistillationTeacher.normalize_input``). If ``input_size`` is given and the
    batch has another spatial size, the batch is resized (bilinear, antialiased)
    before the teacher sees it.

    Subclasses implement :meth:`_resolve_shapes`, :meth:`_forward_targets` and
    :meth:`forward_last_stage`.

    Args:
        model (dict | nn.Module): The teacher network, a config built with
            ``MODELS`` or a built module.
        checkpoint (str, optional): Local path or URL of the teacher weights,
            loaded at build time through MMEngine's ``CheckpointLoader`` (which
            mmscalekd makes ``weights_only``-safe). Defaults to None.
        mean (Sequence[float], optional): Per-channel mean the teacher was trained
            with, in the same units as the data preprocessor's (0-255 for
            mmpretrain). None means "same as the student". Defaults to None.
        std (Sequence[float], optional): Per-channel std, like ``mean``.
            Defaults to None.
        input_size (int | Sequence[int], optional): Resolution the teacher sees.
            None means the model's configured size. Defaults to None.
        train_mode (bool): Let ``train(True)`` put the teacher in train mode (the
            official quirk). Parameters stay frozen either way. Defaults to False.
        init_cfg (dict, optional): Unused by the adapter itself (the weights come
            from ``checkpoint``). Defaults to None.

    Attributes:
        final_dims (int): Channels of the target map.
        final_hw (Tuple[int, int]): Grid of the target map.
        tpp_dims (int): Channels of the token space that enters the last stage.
        tpp_hw (Tuple[int, int]): Grid of that token space.
        input_size (Tuple[int, int]): Resolution the teacher runs at.
        supports_tpp (bool): Whether :meth:`forward_last_stage` exists (Teacher
            Parameter Perception). False for logits-only teachers (e.g. timm CNNs),
            whose ``tpp_dims``/``tpp_hw`` are None; the distiller then refuses
            stages with ``tpp=True`` or ``query_from`` at build time.
    """

    supports_tpp: bool = True
    final_dims: int
    final_hw: Tuple[int, int]
    tpp_dims: int
    tpp_hw: Tuple[int, int]

    def __init__(self,
                 model: Union[dict, nn.Module],
                 checkpoint: Optional[str] = None,
                 mean: Optional[Sequence[float]] = None,
                 std: Optional[Sequence[float]] = None,
                 input_size: Optional[Union[int, Sequence[int]]] = None,
                 train_mode: bool = False,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if isinstance(model, dict):
            model = build_checked(MODELS, model, f'{type(self).__name__}.model')
        if not isinstance(model, nn.Module):
            raise TypeError(f'model must be a config dict or an nn.Module, got {type(model)}')
        if checkpoint is not None and not isinstance(checkpoint, str):
            raise TypeError(f'checkpoint must be a path or URL string, got {checkpoint!r}')
        if (mean is None) != (std is None):
            raise ValueError(f'give both mean and std or neither, got mean={mean!r}, std={std!r}')
        self.model = model
        self.checkpoint = checkpoint
        self.train_mode = bool(train_mode)
        self.register_buffer('teacher_mean', _as_channel_vector(mean, 'mean'), persistent=False)
        self.register_buffer('teacher_std', _as_channel_vector(std, 'std'), persistent=False)
        self.register_buffer('student_mean', None, persistent=False)
        self.register_buffer('student_std', None, persistent=False)
        self._check_model()
        self.input_size = (_to_hw(input_size, 'input_size')
                           if input_size is not None else self._default_input_size())
        self._resolve_shapes()
        if checkpoint is not None:
            self._load_checkpoint(checkpoint)
        self.requires_grad_(False)
        self.train(False)

    # ------------------------------------------------------------------ set-up
    def _default_input_size(self) -> Tuple[int, int]:
        """Resolution used when ``input_size`` is None (the model's own)."""
        raise ValueError(f'{type(self).__name__} cannot tell the input size of this model; '
                         'pass input_size=(H, W).')

    def _check_model(self) -> None:
        """Validate that ``self.model`` is of the family the adapter supports."""

    def _resolve_shapes(self) -> None:
        """Set ``final_dims``, ``final_hw``, ``tpp_dims``, ``tpp_hw``."""
        raise NotImplementedError

    def _load_checkpoint(self, checkpoint: str) -> None:
        logger = MMLogger.get_current_instance()
        name = type(self).__name__
        if not checkpoint.startswith(_REMOTE_PREFIXES):
            path = osp.expanduser(checkpoint)
            if not osp.isfile(path):
                raise FileNotFoundError(
                    f'{name}: teacher checkpoint {checkpoint!r} does not exist. Give a local '
                    '.pth file or an http(s):// URL.')
        raw = CheckpointLoader.load_checkpoint(checkpoint, map_location='cpu')
        state = raw
        if isinstance(raw, dict):
            for key in ('state_dict', 'model', 'module'):
                if key in raw and isinstance(raw[key], dict):
                    state = raw[key]
                    break
        if not isinstance(state, dict):
            raise TypeError(f'{name}: checkpoint {checkpoint!r} holds no state dict '
                            f'(found {type(state).__name__})')
        state = {(k[len('module.'):] if k.startswith('module.') else k): v
                 for k, v in state.items()}
        state = self._convert_state_dict(state)
        own = self.model.state_dict()
        wrong_shape = [f'{k}: {tuple(v.shape)} vs {tuple(own[k].shape)}'
                       for k, v in state.items()
                       if k in own and hasattr(v, 'shape') and v.shape != own[k].shape]
        result = None
        if not wrong_shape:
            result = self.model.load_state_dict(state, strict=False)
        missing = [k for k in (result.missing_keys if result else own.keys() - state.keys())
                   if not self._ignorable_key(k)]
        unexpected = [k for k in (result.unexpected_keys if result else state.keys() - own.keys())
                      if not self._ignorable_key(k)]
        if missing or unexpected or wrong_shape:
            raise RuntimeError(
                f'{name}: checkpoint {checkpoint!r} does not match the teacher model '
                f'({type(self.model).__name__}); is it a checkpoint of another '
                f'architecture? {len(missing)} missing key(s), e.g. {sorted(missing)[:5]}; '
                f'{len(unexpected)} unexpected key(s), e.g. {sorted(unexpected)[:5]}; '
                f'{len(wrong_shape)} shape mismatch(es) (checkpoint vs model), e.g. '
                f'{wrong_shape[:3]}.')
        logger.info(f'{name}: loaded teacher weights from {checkpoint}')

    def _convert_state_dict(self, state: Dict[str, Tensor]) -> Dict[str, Tensor]:
        """Hook for family-specific key conversions (identity by default)."""
        return state

    @staticmethod
    def _ignorable_key(key: str) -> bool:
        # Buffers that some checkpoints carry and others rebuild on the fly.
        return key.endswith(('attn_mask', 'relative_position_index', 'num_batches_tracked'))

    def init_weights(self) -> None:
        """Keep the loaded weights: only initialise a teacher without a checkpoint."""
        if self.checkpoint is None and hasattr(self.model, 'init_weights'):
            self.model.init_weights()
        self._is_init = True

    def train(self, mode: bool = True) -> 'BaseTeacher':
        """Keep the whole teacher in eval mode unless ``train_mode`` is set.

        Args:
            mode (bool): Requested mode. Defaults to True.
        """
        return super().train(mode and self.train_mode)

    def set_student_normalization(self, mean: Optional[Tensor], std: Optional[Tensor]) -> None:
        """Tell the teacher how the student's inputs were normalised.

        Args:
            mean (Tensor, optional): Per-channel mean, 1 or 3 values.
            std (Tensor, optional): Per-channel std, 1 or 3 values.
        """
        if mean is None or std is None:
            self.student_mean = self.student_std = None
            return
        self.student_mean = _as_channel_vector(torch.as_tensor(mean).detach().cpu().flatten(),
                                               'student mean').to(self._device())
        self.student_std = _as_channel_vector(torch.as_tensor(std).detach().cpu().flatten(),
                                              'student std').to(self._device())

    def _device(self) -> torch.device:
        for p in self.model.parameters():
            return p.device
        return torch.device('cpu')

    # ----------------------------------------------------------------- forward
    def prepare_inputs(self, x: Tensor) -> Tensor:
        """Re-normalise and resize a student batch for the teacher.

        Args:
            x (Tensor): Student-normalised images, ``(B, 3, H, W)``.

        Returns:
            Tensor: Teacher-normalised images, ``(B, 3, *input_size)``.
        """
        if (self.teacher_mean is not None and self.student_mean is not None
                and not (torch.equal(self.teacher_mean.to(x), self.student_mean.to(x))
                         and torch.equal(self.teacher_std.to(x), self.student_std.to(x)))):
            raw = x * self.student_std.to(x) + self.student_mean.to(x)
            x = (raw - self.teacher_mean.to(x)) / self.teacher_std.to(x)
        if tuple(x.shape[-2:]) != self.input_size:
            x = F.interpolate(x, size=self.input_size, mode='bilinear', align_corners=False,
                              antialias=True)
        return x

    def forward_targets(self, x: Tensor, with_logits: bool = True) -> TeacherTargets:
        """Target map and logits for a student batch (no ``no_grad`` inside).

        Args:
            x (Tensor): Student-normalised images, ``(B, 3, H, W)``.
            with_logits (bool): Also run the classifier's neck + head. The distiller passes
                False when no logit loss exists, so the teacher computes nothing unused.
                Defaults to True.

        Returns:
            TeacherTargets: ``feature`` ``(B, final_dims, *final_hw)`` and ``logits``
            ``(B, K)`` (None when ``with_logits=False``).
        """
        feature, logits = self._forward_targets(self.prepare_inputs(x), with_logits)
        return TeacherTargets(feature=feature, logits=logits)

    def _forward_targets(self, x: Tensor,
                         with_logits: bool = True) -> Tuple[Tensor, Optional[Tensor]]:
        raise NotImplementedError

    def forward_last_stage(self, tokens: Tensor) -> Tensor:
        """Run the teacher's last stage on tokens of its stage-(n-1) space (TPP).

        Keeps the autograd graph: gradients reach ``tokens`` through the frozen
        teacher parameters.

        Args:
            tokens (Tensor): ``(B, prod(tpp_hw), tpp_dims)``.

        Returns:
            Tensor: ``(B, final_dims, *final_hw)``.
        """
        raise NotImplementedError

    def forward(self, x: Tensor, with_logits: bool = True) -> TeacherTargets:
        """Alias of :meth:`forward_targets`."""
        return self.forward_targets(x, with_logits)

    # ----------------------------------------------------------------- helpers
    def _check_tokens(self, tokens: Tensor) -> None:
        n = self.tpp_hw[0] * self.tpp_hw[1]
        if tokens.dim() != 3 or tokens.shape[1] != n or tokens.shape[2] != self.tpp_dims:
            raise ValueError(
                f'{type(self).__name__}.forward_last_stage expects tokens of shape '
                f'(B, {n}, {self.tpp_dims}) (tpp_hw={self.tpp_hw}), got {tuple(tokens.shape)}')

    def shape_summary(self) -> Dict[str, object]:
        """The shapes the distiller validates connectors against."""
        return dict(final_dims=self.final_dims, final_hw=self.final_hw,
                    tpp_dims=self.tpp_dims, tpp_hw=self.tpp_hw, input_size=self.input_size)


def tokens_to_map(tokens: Tensor, hw: Tuple[int, int]) -> Tensor:
    """``(B, H*W, C)`` raster-order tokens -> ``(B, C, H, W)``."""
    B, N, C = tokens.shape
    assert N == hw[0] * hw[1], (N, hw)
    return tokens.transpose(1, 2).reshape(B, C, hw[0], hw[1])


def classifier_parts(model: nn.Module) -> Tuple[nn.Module, Optional[nn.Module], nn.Module]:
    """``(backbone, neck or None, head)`` of an mmpretrain ``ImageClassifier``."""
    missing: List[str] = [n for n in ('backbone', 'head') if getattr(model, n, None) is None]
    if missing:
        raise TypeError(f'expected an mmpretrain ImageClassifier with a backbone and a head, '
                        f'got {type(model).__name__} without {missing}')
    return model.backbone, getattr(model, 'neck', None), model.head


def head_logits(neck: Optional[nn.Module], head: nn.Module, feats: Tuple[Tensor, ...]) -> Tensor:
    """Logits of an mmpretrain neck + head on a backbone output tuple (no loss)."""
    if neck is not None:
        feats = neck(feats)
    return head(feats)
