"""ScaleKD distiller: CAP + DFM + TPP feature distillation, logit KD and the label loss.

Paper: *ScaleKD: Strong Vision Transformers Could Be Excellent Teachers*, NeurIPS 2024
(https://arxiv.org/abs/2411.06786).
"""
from __future__ import annotations

import copy
import logging
import warnings
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
from mmengine.logging import print_log
from mmengine.model import BaseModel
from torch import Tensor

from mmscalekd.registry import MODELS, build_checked, check_types

from ..teachers import BaseTeacher
from ..teachers.base_teacher import TeacherTargets

_VIEWS = ('spatial', 'freq')
_STAGE_KEYS = {'name', 'student_index', 'tpp', 'query_from', 'connector', 'loss'}


def _teacher_types() -> List[str]:
    names = []
    for name, cls in MODELS.module_dict.items():
        if isinstance(cls, type) and issubclass(cls, BaseTeacher) and cls is not BaseTeacher:
            names.append(name)
    return sorted(names)


def _hw(value: Sequence[int]) -> Tuple[int, int]:
    if isinstance(value, int):
        return value, value
    return int(value[0]), int(value[1])


@MODELS.register_module()
class ScaleKDDistiller(BaseModel):
    """ScaleKD: a frozen teacher distilled into a student classifier.

    One loss step (spec §2):

    1. student backbone once -> taps ``feats[student_index]``; neck + head -> logits;
       the head's own label loss from those logits (``head._get_loss``), times
       ``label_loss_weight`` (skipped entirely when ``label_free``);
    2. teacher targets under ``torch.no_grad()``: final map ``T`` and logits;
    3. for each stage with ``tpp=True`` and each active view: ``Z = teacher
       .forward_last_stage(connector(tap))`` (graph kept: gradients flow through
       the frozen teacher), loss vs ``T``;
    4. stages with ``query_from``: ``connector(tap, query=Z_view)`` of the named
       stage (not detached), loss vs ``T``; other stages: learnable queries;
    5. logit KD between the student's and teacher's logits.

    Args:
        student (dict | nn.Module): mmpretrain ``ImageClassifier`` (config or
            module); its backbone's outputs are indexed by ``student_index``.
        teacher (dict | BaseTeacher): A teacher adapter config (one of the
            registered :class:`BaseTeacher` types) or a built adapter.
        distill_stages (Sequence[dict]): One dict per distilled stage with keys
            ``name`` (str), ``student_index`` (int), ``tpp`` (bool, default False),
            ``query_from`` (str, optional: a previous ``tpp`` stage whose outputs are
            the queries), ``connector`` (``CrossAttentionProjector`` config) and
            ``loss`` (``DualViewMimicLoss`` config). One connector is built per
            active view (alpha > 0): ``connectors['<name>_<view>']``.
        logit_loss (dict, optional): Logit KD loss (``SoftTargetKDLoss``) or None
            for none. Defaults to None.
        label_loss_weight (float): Weight of the student head's own loss (official
            ``1 - alpha_kd``). Defaults to 0.5.
        label_free (bool): No label term at all; ground-truth labels are never
            read (SSLD-style unlabeled data). Defaults to False.
        partial_labels (bool): Batches may mix labeled and unlabeled samples
            (``LabeledUnlabeledDataset`` with ``MixedLabelClsDataPreprocessor``): the
            label term is the head loss averaged over the labeled samples only, and
            the distillation terms use every sample. Defaults to False (every
            sample must carry ``gt_label``).
        teacher_train_mode (bool): Let ``train()`` put the teacher in train mode,
            reproducing the official code (spec §9.1). Defaults to False.
        input_size (int | Sequence[int], optional): The student's training
            resolution, used to dry-run the student for build-time checks.
            Defaults to the teacher's input size.
        batch_tpp_views (bool | str): Run both views' TPP passes through the
            teacher's last stage as one call on the views concatenated along the
            batch (same result; fewer, larger matmuls). Not applied while the
            teacher is in train mode (stochastic depth would draw differently).
            ``'auto'`` (default) batches on CUDA and not on CPU, as measured
            (``docs/benchmark.md``): on an H200 the TPP part took 0.765x the time
            of one call per view (Swin-L -> ResNet-50, B=32, bf16); on a 2-core
            CPU it was no faster (1.01x). True / False force either way; check a
            device with ``benchmark_distill.py --ab-options``.
        inference_mode_targets (bool): Compute the teacher targets under
            ``torch.inference_mode`` instead of ``torch.no_grad`` (same values, less
            bookkeeping); the targets are cloned into normal tensors so that any
            loss may save them for backward. Defaults to True.
        data_preprocessor (dict | nn.Module, optional): Defaults to
            ``ClsDataPreprocessor`` with its defaults.
        init_cfg (dict, optional): Defaults to None.

    Loss keys: ``student.<head keys>`` (e.g. ``student.loss``), ``distill.loss_kd``
    and ``distill.loss_<stage>_<view>``.
    """

    def __init__(self,
                 student: Union[dict, nn.Module],
                 teacher: Union[dict, BaseTeacher],
                 distill_stages: Sequence[dict] = (),
                 logit_loss: Optional[dict] = None,
                 label_loss_weight: float = 0.5,
                 label_free: bool = False,
                 partial_labels: bool = False,
                 teacher_train_mode: bool = False,
                 input_size: Optional[Union[int, Sequence[int]]] = None,
                 batch_tpp_views: Union[bool, str] = 'auto',
                 inference_mode_targets: bool = True,
                 data_preprocessor: Optional[Union[dict, nn.Module]] = None,
                 init_cfg: Optional[dict] = None) -> None:
        if data_preprocessor is None:
            data_preprocessor = dict(type='ClsDataPreprocessor')
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        if isinstance(label_loss_weight, bool) or not isinstance(label_loss_weight,
                                                                 (int, float)):
            raise TypeError(f'label_loss_weight must be a number, got {label_loss_weight!r}')
        if label_loss_weight < 0:
            raise ValueError(f'label_loss_weight must be >= 0, got {label_loss_weight!r}')
        self.label_loss_weight = float(label_loss_weight)
        for flag_name, flag in (('label_free', label_free), ('partial_labels', partial_labels),
                                ('teacher_train_mode', teacher_train_mode),
                                ('inference_mode_targets', inference_mode_targets)):
            if not isinstance(flag, bool):
                raise TypeError(f'{flag_name} must be a bool, got {flag!r}')
        if not isinstance(batch_tpp_views, bool) and batch_tpp_views != 'auto':
            error = ValueError if isinstance(batch_tpp_views, str) else TypeError
            raise error(f"batch_tpp_views must be True, False or 'auto' (batched on CUDA "
                        f'only), got {batch_tpp_views!r}')
        if label_free and partial_labels:
            raise ValueError('label_free=True never reads labels, so partial_labels=True has no '
                             'meaning; set only one of them.')
        self.label_free = label_free
        self.partial_labels = partial_labels
        self.batch_tpp_views = batch_tpp_views
        self.inference_mode_targets = inference_mode_targets
        self.teacher_train_mode = bool(teacher_train_mode)

        self.student = (build_checked(MODELS, student, 'ScaleKDDistiller.student')
                        if isinstance(student, dict) else student)
        for part in ('backbone', 'head'):
            if getattr(self.student, part, None) is None:
                raise TypeError(f'student must be an ImageClassifier-like model with a '
                                f'{part}, got {type(self.student).__name__}')
        if not hasattr(self.student.head, '_get_loss'):
            raise TypeError(f'the student head {type(self.student.head).__name__} has no '
                            '_get_loss(cls_score, data_samples) (an mmpretrain ClsHead)')

        self.teacher = self._build_teacher(teacher)
        self.teacher.train_mode = self.teacher_train_mode
        mean = getattr(self.data_preprocessor, 'mean', None)
        std = getattr(self.data_preprocessor, 'std', None)
        if getattr(self.data_preprocessor, '_enable_normalize', mean is not None):
            self.teacher.set_student_normalization(mean, std)

        self.logit_loss = (build_checked(MODELS, logit_loss, 'ScaleKDDistiller.logit_loss')
                           if logit_loss is not None else None)
        if self.label_free and self.logit_loss is None:
            warnings.warn('label_free=True with logit_loss=None: the student head receives '
                          'no gradient, which breaks DDP without find_unused_parameters.')

        self.input_size = (_hw(input_size) if input_size is not None
                           else tuple(self.teacher.input_size))
        self.stages = self._parse_stages(distill_stages)
        if not self.stages and self.logit_loss is None:
            raise ValueError('Nothing to distil: distill_stages is empty and logit_loss is None. '
                             'Give feature stages, a logit loss (e.g. '
                             "dict(type='SoftTargetKDLoss'), or dict(type='SymmetricKLLoss') "
                             'for SSLD), or both.')
        self.connectors = nn.ModuleDict()
        self.distill_losses = nn.ModuleDict()
        self._build_stage_modules()
        self._first_step_checked = False  # label_free: say once if labels are ignored
        self.train()

    # ----------------------------------------------------------------- build
    @staticmethod
    def _build_teacher(teacher: Union[dict, BaseTeacher]) -> BaseTeacher:
        if isinstance(teacher, dict):
            teacher = build_checked(MODELS, teacher, 'ScaleKDDistiller.teacher',
                                    hint=f'Teacher adapters: {_teacher_types()}.')
        if not isinstance(teacher, BaseTeacher):
            raise TypeError(f'teacher must be a teacher adapter ({_teacher_types()}), got '
                            f'{type(teacher).__name__}; wrap a classifier as '
                            "dict(type='MMPretrainSwinTeacher', model=...) or similar")
        return teacher

    def _parse_stages(self, stages: Sequence[dict]) -> List[dict]:
        if not isinstance(stages, Sequence) or isinstance(stages, (str, dict)):
            raise TypeError(f'distill_stages must be a list of dicts (may be empty for logit-only '
                            f'distillation), got {stages!r}')
        parsed: List[dict] = []
        names: Dict[str, dict] = {}
        for cfg in stages:
            if not isinstance(cfg, dict):
                raise TypeError(f'each distill stage must be a dict, got {cfg!r}')
            unknown = set(cfg) - _STAGE_KEYS
            if unknown:
                raise ValueError(f'distill stage {cfg.get("name")!r} has unknown keys '
                                 f'{sorted(unknown)}; accepted: {sorted(_STAGE_KEYS)}')
            for key in ('name', 'student_index', 'connector', 'loss'):
                if key not in cfg:
                    raise ValueError(f'distill stage {cfg.get("name")!r} misses {key!r}')
            name = cfg['name']
            if not isinstance(name, str) or not name.isidentifier() or name in names:
                raise ValueError(f'stage name {name!r} must be a unique identifier')
            stage = dict(name=name, student_index=cfg['student_index'],
                         tpp=bool(cfg.get('tpp', False)), query_from=cfg.get('query_from'),
                         connector=copy.deepcopy(cfg['connector']),
                         loss=copy.deepcopy(cfg['loss']))
            src = stage['query_from']
            if (stage['tpp'] or src is not None) and not getattr(self.teacher, 'supports_tpp',
                                                                 True):
                teacher_name = type(self.teacher).__name__
                if getattr(self.teacher, 'model_name', None):
                    teacher_name += f'({self.teacher.model_name!r})'
                raise ValueError(
                    f'stage {name!r}: tpp=True / query_from need Teacher Parameter Perception '
                    f"(the teacher's last stage on projected tokens), which the teacher "
                    f'{teacher_name} does not support (a logits-only teacher). Drop tpp and '
                    'query_from (learnable queries on the final map), or use '
                    'distill_stages=[] for logit-only distillation.')
            if src is not None:
                if stage['tpp']:
                    raise ValueError(f'stage {name!r}: tpp=True and query_from={src!r} cannot '
                                     'be combined')
                if src not in names:
                    raise ValueError(f'stage {name!r}: query_from={src!r} names no earlier '
                                     f'stage; earlier stages: {sorted(names)}')
                if not names[src]['tpp']:
                    raise ValueError(f'stage {name!r}: query_from={src!r} names a stage '
                                     'without tpp=True; only TPP stages produce queries')
            names[name] = stage
            parsed.append(stage)
        return parsed

    @torch.no_grad()
    def _student_tap_shapes(self) -> List[Tuple[int, ...]]:
        was_training = self.student.training
        self.student.eval()
        try:
            device = next(self.student.parameters()).device
            first_conv = next((m for m in self.student.backbone.modules()
                               if isinstance(m, nn.Conv2d)), None)
            channels = first_conv.in_channels if first_conv is not None else 3
            feats = self.student.extract_feat(
                torch.zeros(1, channels, *self.input_size, device=device), stage='backbone')
        finally:
            self.student.train(was_training)
        if isinstance(feats, Tensor):
            feats = (feats, )
        return [tuple(f.shape[1:]) for f in feats]

    def _build_stage_modules(self) -> None:
        t = self.teacher
        taps = self._student_tap_shapes()
        for stage in self.stages:
            name = stage['name']
            idx = stage['student_index']
            if isinstance(idx, bool) or not isinstance(idx, int) or not -len(taps) <= idx < len(
                    taps):
                raise ValueError(f'stage {name!r}: student_index={idx!r} is out of range; the '
                                 f'student backbone gives {len(taps)} output(s) of shapes '
                                 f'{taps} at input size {self.input_size}')
            tap = taps[idx]
            loss = build_checked(MODELS, stage['loss'], f'distill_stages[{name!r}].loss')
            self.distill_losses[name] = loss
            alphas = getattr(loss, 'alpha', None)
            views = getattr(loss, 'views', None)
            if views is None:
                views = tuple(v for v, a in zip(_VIEWS, alphas) if a > 0)
            stage['views'] = tuple(views)
            if not stage['views']:
                raise ValueError(f'stage {name!r}: every view of the loss has alpha 0')
            conn = stage['connector']
            if not isinstance(conn, dict):
                raise TypeError(f'stage {name!r}: connector must be a config dict')
            check_types(conn, f'distill_stages[{name!r}].connector')
            # --- student side
            c_in = conn.get('in_channels')
            s_hw = _hw(conn.get('student_hw')) if conn.get('student_hw') is not None else None
            if len(tap) == 3:
                tap_c, tap_hw = tap[0], tap[1:]
            elif len(tap) == 2:  # tokens (N, C): cannot tell the grid, check N only
                tap_c, tap_hw = tap[1], None
            else:
                raise ValueError(f'stage {name!r}: student output {idx} has shape {tap}; '
                                 'expected a (C, H, W) map or (N, C) tokens')
            if c_in != tap_c or (tap_hw is not None and s_hw != tuple(tap_hw)) or (
                    tap_hw is None and s_hw is not None and s_hw[0] * s_hw[1] != tap[0]):
                raise ValueError(
                    f'stage {name!r}: connector in_channels={c_in}, student_hw={s_hw} do not '
                    f'match the student output {idx} of shape {tap} (C, H, W) at input size '
                    f'{self.input_size}')
            # --- teacher side
            if stage['tpp']:
                want_dims, want_hw = t.tpp_dims, t.tpp_hw
                space = "teacher's TPP input (tpp_dims/tpp_hw)"
            else:
                want_dims, want_hw = t.final_dims, t.final_hw
                space = "teacher's final map (final_dims/final_hw)"
            q_hw = _hw(conn.get('query_hw')) if conn.get('query_hw') is not None else None
            if conn.get('embed_dims') != want_dims or q_hw != tuple(want_hw):
                raise ValueError(
                    f'stage {name!r}: connector embed_dims={conn.get("embed_dims")}, '
                    f'query_hw={q_hw} must equal the {space}: {want_dims}, {tuple(want_hw)}')
            learnable = conn.get('learnable_query', True)
            if stage['query_from'] is not None and learnable:
                raise ValueError(f'stage {name!r} receives queries from '
                                 f'{stage["query_from"]!r}: set learnable_query=False in its '
                                 'connector')
            if stage['query_from'] is None and not learnable:
                raise ValueError(f'stage {name!r}: learnable_query=False but no query_from '
                                 'stage supplies queries; set query_from or '
                                 'learnable_query=True')
            if stage['query_from'] is not None:
                src = next(s for s in self.stages if s['name'] == stage['query_from'])
                missing = set(stage['views']) - set(src['views'])
                if missing:
                    raise ValueError(f'stage {name!r}: view(s) {sorted(missing)} need queries '
                                     f'from stage {src["name"]!r}, which has no such view')
            for view in stage['views']:
                self.connectors[f'{name}_{view}'] = MODELS.build(copy.deepcopy(conn))

    # ----------------------------------------------------------------- modes
    def train(self, mode: bool = True) -> 'ScaleKDDistiller':
        """Train the student and connectors; the teacher stays in eval unless
        ``teacher_train_mode`` (its parameters stay frozen either way)."""
        super().train(mode)
        self.teacher.train(mode)
        return self

    def forward(self, inputs: Tensor, data_samples: Optional[list] = None,
                mode: str = 'tensor'):
        """Dispatch on ``mode``: ``'loss'`` distils, ``'tensor'``/``'predict'`` run the student.

        Args:
            inputs (Tensor): ``(B, 3, H, W)`` preprocessed images.
            data_samples (list[DataSample], optional): Labels for ``'loss'``.
            mode (str): ``'loss'``, ``'tensor'`` or ``'predict'``.
        """
        if mode == 'loss':
            return self.loss(inputs, data_samples)
        if mode in ('tensor', 'predict'):
            return self.student(inputs, data_samples, mode=mode)
        raise RuntimeError(f'Invalid mode "{mode}"; use "loss", "tensor" or "predict".')

    def extract_feat(self, inputs: Tensor, **kwargs):
        """The student's ``extract_feat``."""
        return self.student.extract_feat(inputs, **kwargs)

    # ------------------------------------------------------------------ loss
    def _labeled_indices(self, data_samples: Optional[list]) -> List[int]:
        """Indices of the samples that carry ``gt_label``; raises where labels are required."""
        if data_samples is None or len(data_samples) == 0:
            labeled: List[int] = []
            total = 0
        else:
            labeled = [i for i, ds in enumerate(data_samples) if 'gt_label' in ds]
            total = len(data_samples)
        if len(labeled) == total and total > 0:
            return labeled
        if self.partial_labels:
            return labeled
        raise ValueError(
            f'ScaleKDDistiller: {total - len(labeled)} of {total} samples in the batch have no '
            'ground-truth label (data_samples without gt_label). For unlabeled data set '
            'label_free=True (no label term at all); for labeled + unlabeled data set '
            'partial_labels=True (label term on the labeled samples only).')

    def _label_losses(self, logits: Tensor, data_samples: Optional[list]) -> Dict[str, Tensor]:
        """The student head's own loss, on the labeled samples, times ``label_loss_weight``.

        With ``partial_labels`` the head loss is averaged over the labeled samples of the
        batch; a batch without any keeps a zero term in the graph so that every parameter
        still receives a gradient (DDP without ``find_unused_parameters``).
        """
        labeled = self._labeled_indices(data_samples)
        if not labeled:
            return {'student.loss': logits.sum() * 0.0}
        if len(labeled) < len(data_samples):
            index = torch.as_tensor(labeled, device=logits.device)
            logits = logits.index_select(0, index)
            data_samples = [data_samples[i] for i in labeled]
        losses = {}
        for key, value in self.student.head._get_loss(logits, data_samples).items():
            if 'loss' in key:
                value = value * self.label_loss_weight
            losses[f'student.{key}'] = value
        return losses

    def _teacher_targets(self, inputs: Tensor) -> TeacherTargets:
        """Teacher target map (and logits only if a logit loss uses them), without a graph.

        Under ``inference_mode_targets`` the pass runs in ``torch.inference_mode``. Inference
        tensors may not be saved for backward, and a loss such as ``mse_loss`` saves its target,
        so the (small) outputs are cloned into normal tensors outside inference mode. Autocast,
        when the caller enabled it (AMP), applies inside either context.
        """
        with_logits = self.logit_loss is not None
        if not self.inference_mode_targets:
            with torch.no_grad():
                return self.teacher.forward_targets(inputs, with_logits=with_logits)
        with torch.inference_mode():
            targets = self.teacher.forward_targets(inputs, with_logits=with_logits)
        return TeacherTargets(
            feature=targets.feature.clone(),
            logits=targets.logits.clone() if targets.logits is not None else None)

    def batches_tpp_views_on(self, device_type: str) -> bool:
        """Whether the TPP views are batched on a device type (``'cuda'``, ``'cpu'``, ...)."""
        if self.batch_tpp_views == 'auto':
            return device_type == 'cuda'
        return bool(self.batch_tpp_views)

    def _tpp_views(self, stage: dict, x: Tensor) -> Dict[str, Tensor]:
        """TPP outputs ``{view: (B, final_dims, *final_hw)}`` of one ``tpp`` stage.

        With ``batch_tpp_views`` the views' connector outputs go through the teacher's last
        stage as one ``(V*B, N, C)`` batch and are split back: every op of an eval-mode teacher
        is per sample, so the values equal the per-view calls up to float rounding. A teacher in
        train mode keeps one call per view (stochastic depth draws per call).
        """
        name, views = stage['name'], stage['views']
        tokens = [self.connectors[f'{name}_{view}'](x) for view in views]
        if self.batches_tpp_views_on(x.device.type) and len(views) > 1 \
                and not self.teacher.training:
            z = self.teacher.forward_last_stage(torch.cat(tokens, dim=0))
            return dict(zip(views, z.split(x.shape[0], dim=0)))
        return {view: self.teacher.forward_last_stage(t) for view, t in zip(views, tokens)}

    def _project_views(self, stage: dict, x: Tensor,
                       queries: Dict[Tuple[str, str], Tensor]) -> Dict[str, Tensor]:
        """Connector outputs of a stage without TPP, one per view.

        Args:
            stage (dict): A parsed stage (``tpp`` False).
            x (Tensor): The student tap ``(B, C_s, H_s, W_s)``.
            queries (dict): TPP outputs ``(B, C_t, H_q, W_q)`` keyed by ``(stage, view)``;
                used when the stage has ``query_from``.

        Returns:
            dict[str, Tensor]: ``view -> (B, H_q*W_q, C_t)``.
        """
        preds: Dict[str, Tensor] = {}
        for view in stage['views']:
            conn = self.connectors[f'{stage["name"]}_{view}']
            if stage['query_from'] is not None:
                q = queries[(stage['query_from'], view)]
                preds[view] = conn(x, query=q.flatten(2).transpose(1, 2))
            else:
                preds[view] = conn(x)
        return preds

    def loss(self, inputs: Tensor, data_samples: Optional[list] = None) -> Dict[str, Tensor]:
        """Compute every loss term of one step.

        Args:
            inputs (Tensor): ``(B, 3, H, W)`` preprocessed images.
            data_samples (list[DataSample], optional): With ``gt_label`` unless
                ``label_free``.

        Returns:
            dict[str, Tensor]: ``student.*``, ``distill.loss_kd``,
            ``distill.loss_<stage>_<view>``.
        """
        if not self.label_free:
            self._labeled_indices(data_samples)  # fail before any compute
        elif not self._first_step_checked and data_samples and all(
                'gt_label' in ds for ds in data_samples):
            print_log('ScaleKDDistiller: label_free=True, but every sample of the first batch '
                      'carries a ground-truth label; the labels are ignored (no label term). '
                      'Set label_free=False to train on them too.', logger='current',
                      level=logging.WARNING)
        self._first_step_checked = True
        student = self.student
        feats = student.extract_feat(inputs, stage='backbone')
        if isinstance(feats, Tensor):
            feats = (feats, )
        neck_out = student.neck(feats) if getattr(student, 'neck', None) is not None else feats
        logits = student.head(neck_out)

        losses: Dict[str, Tensor] = {}
        if not self.label_free:
            losses.update(self._label_losses(logits, data_samples))

        targets = self._teacher_targets(inputs)
        target = targets.feature

        queries: Dict[Tuple[str, str], Tensor] = {}
        for stage in self.stages:
            name = stage['name']
            x = feats[stage['student_index']]
            if stage['tpp']:
                preds = self._tpp_views(stage, x)
                queries.update({(name, view): z for view, z in preds.items()})
            else:
                preds = self._project_views(stage, x, queries)
            stage_losses = self.distill_losses[name](preds.get('spatial'), preds.get('freq'),
                                                     target)
            for view, value in stage_losses.items():
                losses[f'distill.loss_{name}_{view}'] = value

        if self.logit_loss is not None:
            losses['distill.loss_kd'] = self.logit_loss(logits, targets.logits)
        return losses
