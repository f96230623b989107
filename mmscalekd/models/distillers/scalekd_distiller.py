"""ScaleKD distiller: CAP + DFM + TPP feature distillation, logit KD and the label loss.

Paper: *ScaleKD: Strong Vision Transformers Could Be Excellent Teachers*, NeurIPS 2024
(https://arxiv.org/abs/2411.06786).
"""
from __future__ import annotations

import logging
import warnings
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
from mmengine.logging import print_log
from mmengine.model import BaseModel
from torch import Tensor

from mmscalekd.registry import MODELS, build_checked, check_types
from mmscalekd.teacher_cache.replay import CachedTeacherTargets

from ..teachers import BaseTeacher, TPPTeacher, student_input_convention
from ..teachers.base_teacher import TeacherTargets
from .distill_stage import TEACHER_SPACES, DistillStage, derive_geometry, parse_stages
from .teacher_record import check_teacher, teacher_record

_VIEWS = ('spatial', 'freq')
#: ``torch.profiler.record_function`` ranges of one :meth:`ScaleKDDistiller.loss` call, in
#: order; ``tools/analysis_tools/benchmark_distill.py`` reads them back from the real step.
PROFILE_RANGES = ('scalekd/student', 'scalekd/label_loss', 'scalekd/teacher_targets',
                  'scalekd/tpp', 'scalekd/projectors', 'scalekd/dfm_loss', 'scalekd/logit_kd')
_DEFAULT_LABEL_LOSS_WEIGHT = 0.5
# Errors of one stage's computation that are re-raised naming the stage (same class).
_STAGE_ERRORS = (ValueError, TypeError, IndexError, RuntimeError)
# Never wrapped: callers catch these by type (e.g. to retry with a smaller batch).
_OOM_ERRORS = tuple(e for e in (getattr(torch, 'OutOfMemoryError', None),
                                getattr(torch.cuda, 'OutOfMemoryError', None)) if e is not None)


def _teacher_types() -> List[str]:
    names = []
    for name, cls in MODELS.module_dict.items():
        if isinstance(cls, type) and issubclass(cls, BaseTeacher) and cls is not BaseTeacher:
            names.append(name)
    return sorted(names)


def _not_an_adapter(got: str) -> TypeError:
    return TypeError(f'teacher must be a teacher adapter ({_teacher_types()}), got {got}; wrap '
                     "a classifier as dict(type='MMPretrainSwinTeacher', model=...) or similar")


def _hw(value: Union[int, Sequence[int]], name: str = 'input_size') -> Tuple[int, int]:
    pair = (value, value) if isinstance(value, int) and not isinstance(value, bool) else value
    if (isinstance(pair, (str, bytes)) or not isinstance(pair, Sequence) or len(pair) != 2
            or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0
                       for v in pair)):
        raise ValueError(f'{name} must be a positive int or a pair (H, W) of positive ints, '
                         f'got {value!r}')
    return int(pair[0]), int(pair[1])


@MODELS.register_module()
class ScaleKDDistiller(BaseModel):
    """ScaleKD: a frozen teacher distilled into a student classifier.

    One loss step, as the official ``ClassificationDistiller.loss``
    (``deep-optimization/ScaleKD@5ba1f04 mmcls/models/classifiers/distiller.py``):

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
            registered :class:`BaseTeacher` types) or a built adapter. A config is built
            with the student's input convention (``student_mean``, ``student_std``,
            ``student_channel_order`` from ``data_preprocessor``) and ``train_mode=
            teacher_train_mode``; a built adapter must have been built with them.
        distill_stages (Sequence[dict]): One dict per distilled stage with keys
            ``name`` (str), ``student_index`` (int), ``tpp`` (bool, default False),
            ``query_from`` (str, optional: a previous ``tpp`` stage whose outputs are
            the queries), ``connector`` (``CrossAttentionProjector`` config: its
            choices, e.g. ``num_heads``, ``softmax_scale``) and ``loss``
            (``DualViewMimicLoss`` config). The connector shapes are derived
            (:func:`~mmscalekd.models.distillers.distill_stage.derive_geometry`):
            ``in_channels``/``student_hw`` from the student's dry-run output
            ``student_index`` at ``input_size``, ``embed_dims``/``query_hw`` from the
            teacher (``tpp_dims``/``tpp_hw`` for a ``tpp`` stage, ``final_dims``/
            ``final_hw`` otherwise), ``learnable_query = query_from is None``; a stated
            value is checked against the derived one. Parsed into
            :class:`DistillStage` records (``self.stages``); :meth:`describe_stages`
            lists what was derived. One connector is built per active view
            (alpha > 0): ``connectors['<name>_<view>']``. Empty: logit-only KD.
        logit_loss (dict, optional): Logit KD loss (``SoftTargetKDLoss``) or None
            for none. Defaults to None.
        label_loss_weight (float, optional): Weight of the student head's own loss
            (official ``1 - alpha_kd``). None means 0.5. With ``label_free=True`` there
            is no label term: a stated weight other than 0.5 or 0 is reported at build
            (a warning), since it has no effect. Defaults to None (0.5).
        label_free (bool): No label term at all; ground-truth labels are never
            read (SSLD-style unlabeled data). A batch in which samples carry labels
            is reported once (a warning in the log). Defaults to False.
        partial_labels (bool): Batches may mix labeled and unlabeled samples
            (``LabeledUnlabeledDataset`` with ``MixedLabelClsDataPreprocessor``): the
            label term is the head loss averaged over the labeled samples only, and
            the distillation terms use every sample. Defaults to False (every
            sample must carry ``gt_label``).
        teacher_train_mode (bool): Let ``train()`` put the teacher in train mode,
            reproducing the official code, whose distiller calls ``teacher.eval()``
            only at build (``deep-optimization/ScaleKD@5ba1f04
            mmcls/models/classifiers/distiller.py:56``) and so trains with the teacher
            in train mode after MMEngine's per-epoch ``model.train()``. Passed to the
            teacher at build (``train_mode``); the teacher owns its mode. Defaults to
            False.
        input_size (int | Sequence[int], optional): The student's training
            resolution, used to dry-run the student: the connectors' student shapes
            are derived at this size. Defaults to the teacher's input size.
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
        teacher_cache (dict, optional): Replay a teacher cache instead of running the teacher
            (logit-only distillation, ``distill_stages=[]``; ``docs/teacher_cache.md``):
            ``dict(cache_dir=..., check_interval=0, check_tolerance=None)``. The teacher is then
            not built (unless ``check_interval`` N > 0, which re-runs it on every N-th batch and
            logs the deviation); its config is still needed, to check it against the cache.
            The soft targets are the ``teacher_logits`` of the data samples
            (``TeacherCacheDataset``). Defaults to None.
        data_preprocessor (dict | nn.Module, optional): Defaults to
            ``ClsDataPreprocessor`` with its defaults.
        init_cfg (dict, optional): Defaults to None.

    Loss keys: ``student.<head keys>`` (e.g. ``student.loss``), ``distill.loss_kd``
    and ``distill.loss_<stage>_<view>``. Each part of :meth:`loss` runs inside a
    ``torch.profiler.record_function`` range named in :data:`PROFILE_RANGES`.

    Checkpoints: when the teacher reloads its weights at build (a ``checkpoint``,
    timm's ``pretrained``, an ``init_cfg`` Pretrained), ``state_dict()`` leaves
    ``teacher.*`` out and loading such a state dict keeps the built teacher.
    :meth:`checkpoint_meta` gives the teacher record (type, checkpoint, sha256 of
    the file) that
    ``SafeCheckpointHook`` writes to ``meta['teacher']``, and
    :meth:`check_checkpoint_meta`, which it calls before a checkpoint is loaded,
    raises :class:`TeacherMismatchError` for another teacher
    (``docs/reliability.md``). A teacher without a weight source (random, for
    tests) stays in the state dict.
    """

    def __init__(self,
                 student: Union[dict, nn.Module],
                 teacher: Union[dict, BaseTeacher],
                 distill_stages: Sequence[dict] = (),
                 logit_loss: Optional[dict] = None,
                 label_loss_weight: Optional[float] = None,
                 label_free: bool = False,
                 partial_labels: bool = False,
                 teacher_train_mode: bool = False,
                 input_size: Optional[Union[int, Sequence[int]]] = None,
                 batch_tpp_views: Union[bool, str] = 'auto',
                 inference_mode_targets: bool = True,
                 teacher_cache: Optional[dict] = None,
                 data_preprocessor: Optional[Union[dict, nn.Module]] = None,
                 init_cfg: Optional[dict] = None) -> None:
        if data_preprocessor is None:
            data_preprocessor = dict(type='ClsDataPreprocessor')
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        stated_label_weight = label_loss_weight
        if label_loss_weight is None:
            label_loss_weight = _DEFAULT_LABEL_LOSS_WEIGHT
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
        if label_free and stated_label_weight is not None and self.label_loss_weight not in (
                0.0, _DEFAULT_LABEL_LOSS_WEIGHT):
            warnings.warn(f'label_free=True: there is no label term, so label_loss_weight='
                          f'{stated_label_weight!r} has no effect. Set label_free=False to '
                          'train on the labels with that weight (partial_labels=True for '
                          'batches that mix labeled and unlabeled samples), or drop '
                          'label_loss_weight.', UserWarning)
        self.label_free = label_free
        self.partial_labels = partial_labels
        self.batch_tpp_views = batch_tpp_views
        self.inference_mode_targets = inference_mode_targets

        self.student = (build_checked(MODELS, student, 'ScaleKDDistiller.student')
                        if isinstance(student, dict) else student)
        for part in ('backbone', 'head'):
            if getattr(self.student, part, None) is None:
                raise TypeError(f'student must be an ImageClassifier-like model with a '
                                f'{part}, got {type(self.student).__name__}')
        if not hasattr(self.student.head, '_get_loss'):
            raise TypeError(f'the student head {type(self.student.head).__name__} has no '
                            '_get_loss(cls_score, data_samples) (an mmpretrain ClsHead)')

        self.teacher_cache = None if teacher_cache is None else CachedTeacherTargets(
            teacher_cache, teacher, data_preprocessor,
            num_classes=getattr(self.student.head, 'num_classes', None),
            distill_stages=distill_stages, has_logit_loss=logit_loss is not None,
            teacher_train_mode=teacher_train_mode)
        self.teacher = None  # not built when a cache replaces it
        if self.teacher_cache is None or self.teacher_cache.builds_teacher:
            # A forked RNG: the student's initialisation (init_weights, after this) is the
            # same with the teacher as without it (a teacher cache), whatever its size.
            with torch.random.fork_rng(devices=[]):
                self.teacher = self._build_teacher(teacher, teacher_train_mode)
            if self.teacher_cache is not None:
                self.teacher_cache.check_teacher_weights(self.teacher)

        self.logit_loss = (build_checked(MODELS, logit_loss, 'ScaleKDDistiller.logit_loss')
                           if logit_loss is not None else None)
        if self.logit_loss is not None and self.teacher is not None:
            self._check_teacher_logits()  # with a cache, its manifest states the classes
        if self.label_free and self.logit_loss is None:
            warnings.warn('label_free=True with logit_loss=None: the student head receives '
                          'no gradient, which breaks DDP without find_unused_parameters.')

        self.input_size = (_hw(input_size) if input_size is not None
                           else tuple(self.teacher.input_size) if self.teacher is not None
                           else None)  # no teacher (a cache): no stages, no dry run
        self.stages: Tuple[DistillStage, ...] = self._parse_stages(distill_stages)
        if not self.stages and self.logit_loss is None:
            raise ValueError('Nothing to distil: distill_stages is empty and logit_loss is None. '
                             'Give feature stages, a logit loss (e.g. '
                             "dict(type='SoftTargetKDLoss'), or dict(type='SymmetricKLLoss') "
                             'for SSLD), or both.')
        self.connectors = nn.ModuleDict()
        self.distill_losses = nn.ModuleDict()
        self._build_stage_modules()
        if self.stages:
            print_log(self.describe_stages(), logger='current', level=logging.INFO)
        self._labels_ignored_reported = False  # label_free: say once if labels are ignored
        self.register_state_dict_post_hook(_drop_reloaded_teacher)
        self.register_load_state_dict_pre_hook(_fill_reloaded_teacher)
        self.train()

    # ----------------------------------------------------------------- build
    def _build_teacher(self, teacher: Union[dict, BaseTeacher],
                       train_mode: bool) -> BaseTeacher:
        """Build the teacher with the student's input convention and the mode switch."""
        given = student_input_convention(self.data_preprocessor)
        given['train_mode'] = train_mode
        if isinstance(teacher, dict):
            cfg = dict(teacher)
            cls = cfg.get('type')
            try:
                cls = MODELS.get(cls) if isinstance(cls, str) else cls
            except Exception:  # noqa: BLE001  (an unimportable scope prefix: build_checked says)
                cls = None
            if cls is not None and not (isinstance(cls, type) and issubclass(cls, BaseTeacher)):
                raise _not_an_adapter(getattr(cls, '__name__', repr(cls)))
            for key, value in given.items():
                if key in cfg and cfg[key] is not None and cfg[key] != value:
                    source = ('teacher_train_mode' if key == 'train_mode'
                              else 'data_preprocessor')
                    raise ValueError(
                        f'ScaleKDDistiller.teacher.{key}={cfg[key]!r} differs from the '
                        f"distiller's {source} ({value!r}); the distiller passes it to the "
                        f'teacher at build: remove {key} from the teacher config'
                        + (' and set teacher_train_mode.' if key == 'train_mode' else '.'))
                cfg[key] = value
            teacher = build_checked(MODELS, cfg, 'ScaleKDDistiller.teacher',
                                    hint=f'Teacher adapters: {_teacher_types()}.')
        if not isinstance(teacher, BaseTeacher):
            raise _not_an_adapter(type(teacher).__name__)
        built = dict(
            student_mean=(None if teacher.student_mean is None else
                          [float(v) for v in teacher.student_mean.flatten()]),
            student_std=(None if teacher.student_std is None else
                         [float(v) for v in teacher.student_std.flatten()]),
            student_channel_order=teacher.student_channel_order,
            train_mode=teacher.train_mode)
        # A teacher without its own normalisation and channel order passes the batch on
        # unchanged whatever the student's convention; only the mode must agree then.
        keys = given if (teacher.teacher_mean is not None
                         or teacher.channel_order is not None) else ('train_mode', )
        wrong = {k: (built[k], given[k]) for k in keys if built[k] != given[k]}
        if wrong:
            raise ValueError(
                f'the built teacher {teacher.label} was made for another student input '
                f'convention or mode: {wrong} (teacher vs distiller). Give the teacher as a '
                'config dict (the distiller builds it with these) or build it with them.')
        return teacher

    def _check_teacher_logits(self) -> None:
        """A logit loss needs a teacher classifier over the student's classes."""
        t = self.teacher
        if not t.has_classifier:
            raise ValueError(
                f'logit_loss={type(self.logit_loss).__name__} needs teacher logits, but '
                f'{t.label} has no classifier (num_classes=0, e.g. a DINOv2 or SigLIP image '
                'tower). Use logit_loss=None (feature distillation only) or a teacher with a '
                'classifier.')
        student_classes = getattr(self.student.head, 'num_classes', None)
        if isinstance(student_classes, int) and student_classes != t.num_classes:
            raise ValueError(
                f'logit_loss compares {t.num_classes}-class teacher logits ({t.label}) with '
                f'the {student_classes}-class student head; give the teacher a classifier '
                'over the same classes or use logit_loss=None.')

    def _parse_stages(self, stages: Sequence[dict]) -> Tuple[DistillStage, ...]:
        """Validate the stage dicts into records and check that the teacher can serve them."""
        parsed = parse_stages(stages)
        for stage in parsed:
            if (stage.tpp or stage.query_from is not None) and not isinstance(
                    self.teacher, TPPTeacher):
                teacher_name = self.teacher.label
                raise ValueError(
                    f'stage {stage.name!r}: tpp=True / query_from need Teacher Parameter '
                    "Perception (the teacher's last stage on projected tokens), which the "
                    f'teacher {teacher_name} does not support (a logits-only teacher). Drop '
                    'tpp and query_from (learnable queries on the final map), or use '
                    'distill_stages=[] for logit-only distillation.')
        return parsed

    def _teacher_space(self, stage: DistillStage) -> Tuple[int, Tuple[int, int]]:
        """``(dims, hw)`` of the teacher space a stage's connector maps into."""
        t = self.teacher
        if stage.tpp:
            return int(t.tpp_dims), (int(t.tpp_hw[0]), int(t.tpp_hw[1]))
        return int(t.final_dims), (int(t.final_hw[0]), int(t.final_hw[1]))

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
        """Build each stage's loss and connectors; record the derived geometry on the stage."""
        if not self.stages:
            return
        taps = self._student_tap_shapes()
        resolved: Dict[str, DistillStage] = {}
        for stage in self.stages:
            name, idx = stage.name, stage.student_index
            if not -len(taps) <= idx < len(taps):
                raise ValueError(f'stage {name!r}: student_index={idx!r} is out of range; the '
                                 f'student backbone gives {len(taps)} output(s) of shapes '
                                 f'{taps} at input size {self.input_size}')
            loss = build_checked(MODELS, stage.loss.to_dict(), f'distill_stages[{name!r}].loss')
            alphas = getattr(loss, 'alpha', None)
            views = getattr(loss, 'views', None)
            if views is None:
                views = tuple(v for v, a in zip(_VIEWS, alphas) if a > 0)
            if not views:
                raise ValueError(f'stage {name!r}: every view of the loss has alpha 0')
            if stage.query_from is not None:
                src = resolved[stage.query_from]
                missing = set(views) - set(src.views)
                if missing:
                    raise ValueError(f'stage {name!r}: view(s) {sorted(missing)} need queries '
                                     f'from stage {src.name!r}, which has no such view')
            check_types(stage.connector.to_dict(), f'distill_stages[{name!r}].connector')
            dims, hw = self._teacher_space(stage)
            geometry = derive_geometry(stage, taps[idx], self.input_size, dims, hw)
            stage = stage.resolved(geometry, views)
            resolved[name] = stage
            self.distill_losses[name] = loss
            for view in stage.views:
                self.connectors[f'{name}_{view}'] = MODELS.build(stage.connector_config())
        self.stages = tuple(resolved.values())

    def describe_stages(self) -> str:
        """What the distiller derived for each stage, one line per stage.

        Returns:
            str: A header (student input size, teacher and its spaces) and, per stage, the
            student tap shape, the teacher space, the connector dims and the query source.
        """
        t = self.teacher
        spaces = f'final map {t.final_dims} x {tuple(t.final_hw)}'
        if isinstance(t, TPPTeacher):
            spaces = f'TPP input {t.tpp_dims} x {tuple(t.tpp_hw)}, ' + spaces
        lines = [f'ScaleKDDistiller: {len(self.stages)} distill stage(s); student dry run at '
                 f'{self.input_size[0]}x{self.input_size[1]}; teacher {type(t).__name__} at '
                 f'{t.input_size[0]}x{t.input_size[1]} ({spaces}); derived connector '
                 'geometry:']
        lines += [f'  {stage.describe()}' for stage in self.stages]
        return '\n'.join(lines)

    # ----------------------------------------------------------------- modes
    # ------------------------------------------------- checkpoints without the teacher
    def teacher_reloaded(self) -> bool:
        """Whether the teacher's weights come back at build (its ``weights_source``: a
        checkpoint, timm pretrained weights, an ``init_cfg`` Pretrained), so that
        ``state_dict()`` leaves ``teacher.*`` out."""
        return self.teacher is not None and bool(
            getattr(self.teacher, 'weights_source', getattr(self.teacher, 'checkpoint', None)))

    def checkpoint_meta(self) -> dict:
        """``meta`` entries for a checkpoint (``SafeCheckpointHook``): the teacher record
        (:func:`teacher_record`: type, checkpoint, sha256 of the file); none without a
        teacher (a teacher cache replaces it)."""
        return {} if self.teacher is None else dict(teacher=teacher_record(self.teacher))

    def check_checkpoint_meta(self, meta: dict) -> None:
        """Check that a checkpoint about to be loaded was trained with the teacher built now
        (``SafeCheckpointHook.after_load_checkpoint``; a meta without a record passes).

        Raises:
            TeacherMismatchError: Another teacher architecture, weight source or file.
        """
        if self.teacher is None:
            return
        warning = check_teacher((meta or {}).get('teacher'), teacher_record(self.teacher))
        if warning:
            print_log(f'ScaleKDDistiller: {warning}', logger='current', level=logging.WARNING)

    def train(self, mode: bool = True) -> 'ScaleKDDistiller':
        """Train the student and connectors; the teacher decides its own mode (eval unless
        built with ``train_mode=True``; its parameters stay frozen either way)."""
        super().train(mode)
        if self.teacher is not None:
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

    def _report_ignored_labels(self, data_samples: list) -> None:
        """Under ``label_free``: say once that samples carry labels which are ignored."""
        labeled = sum(1 for ds in data_samples if 'gt_label' in ds)
        if not labeled:
            return
        self._labels_ignored_reported = True
        print_log(f'ScaleKDDistiller: label_free=True, but {labeled} of {len(data_samples)} '
                  'samples of a batch carry a ground-truth label; the labels are ignored (no '
                  'label term, label_loss_weight unused). Set label_free=False to train on '
                  'them (with partial_labels=True when batches mix labeled and unlabeled '
                  'samples). Reported once.', logger='current', level=logging.WARNING)

    def _stage_error(self, stage: DistillStage, x: Tensor, target: Tensor,
                     queries: Dict[Tuple[str, str], Tensor], err: Exception) -> Exception:
        """``err`` restated with the stage, the shapes involved and a hint; same base class."""
        g = stage.geometry
        got = tuple(x.shape[1:]) if isinstance(x, Tensor) else None
        parts = [f'student output {stage.student_index} of shape '
                 f'{tuple(x.shape) if got is not None else type(x).__name__}',
                 f'teacher target {tuple(target.shape)}']
        if g is not None:
            parts.insert(1, f'connector built for {g.student_shape} (student dry run at '
                            f'{g.input_size}) -> {g.embed_dims} x {g.query_hw} in the '
                            f'{TEACHER_SPACES[g.teacher_space]}')
        if stage.query_from is not None:
            shapes = {view: tuple(q.shape) for (src, view), q in queries.items()
                      if src == stage.query_from}
            parts.append(f'queries from {stage.query_from!r} {shapes}')
        hint = ''
        if g is not None and got != g.student_shape:
            hint = (' The student output differs from the dry run: train at the input size '
                    "the distiller was built for, or set the distiller's input_size to the "
                    'training resolution.')
        cls = next(c for c in _STAGE_ERRORS if isinstance(err, c))
        return cls(f'ScaleKDDistiller: stage {stage.name!r} failed ({"; ".join(parts)}): '
                   f'{type(err).__name__}: {err}.{hint}')

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

    def _tpp_views(self, stage: DistillStage, x: Tensor) -> Dict[str, Tensor]:
        """TPP outputs ``{view: (B, final_dims, *final_hw)}`` of one ``tpp`` stage.

        With ``batch_tpp_views`` the views' connector outputs go through the teacher's last
        stage as one ``(V*B, N, C)`` batch and are split back: every op of an eval-mode teacher
        is per sample, so the values equal the per-view calls up to float rounding. A teacher in
        train mode keeps one call per view (stochastic depth draws per call).
        """
        name, views = stage.name, stage.views
        tokens = [self.connectors[f'{name}_{view}'](x) for view in views]
        if self.batches_tpp_views_on(x.device.type) and len(views) > 1 \
                and not self.teacher.training:
            z = self.teacher.forward_last_stage(torch.cat(tokens, dim=0))
            return dict(zip(views, z.split(x.shape[0], dim=0)))
        return {view: self.teacher.forward_last_stage(t) for view, t in zip(views, tokens)}

    def _project_views(self, stage: DistillStage, x: Tensor,
                       queries: Dict[Tuple[str, str], Tensor]) -> Dict[str, Tensor]:
        """Connector outputs of a stage without TPP, one per view.

        Args:
            stage (DistillStage): A resolved stage (``tpp`` False).
            x (Tensor): The student tap ``(B, C_s, H_s, W_s)``.
            queries (dict): TPP outputs ``(B, C_t, H_q, W_q)`` keyed by ``(stage, view)``;
                used when the stage has ``query_from``.

        Returns:
            dict[str, Tensor]: ``view -> (B, H_q*W_q, C_t)``.
        """
        preds: Dict[str, Tensor] = {}
        for view in stage.views:
            conn = self.connectors[f'{stage.name}_{view}']
            if stage.query_from is not None:
                q = queries[(stage.query_from, view)]
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
        elif not self._labels_ignored_reported and data_samples:
            self._report_ignored_labels(data_samples)
        # One torch.profiler range per part (PROFILE_RANGES); free when no profiler runs.
        rf = torch.profiler.record_function
        student = self.student
        with rf('scalekd/student'):
            feats = student.extract_feat(inputs, stage='backbone')
            if isinstance(feats, Tensor):
                feats = (feats, )
            neck_out = (student.neck(feats) if getattr(student, 'neck', None) is not None
                        else feats)
            logits = student.head(neck_out)

        losses: Dict[str, Tensor] = {}
        if not self.label_free:
            with rf('scalekd/label_loss'):
                losses.update(self._label_losses(logits, data_samples))

        if self.teacher_cache is not None:
            with rf('scalekd/logit_kd'):
                return self._cached_logit_loss(inputs, logits, data_samples, losses)
        with rf('scalekd/teacher_targets'):
            targets = self._teacher_targets(inputs)
        target = targets.feature

        queries: Dict[Tuple[str, str], Tensor] = {}
        for stage in self.stages:
            name = stage.name
            x = feats[stage.student_index]
            try:
                if stage.tpp:
                    with rf('scalekd/tpp'):
                        preds = self._tpp_views(stage, x)
                    queries.update({(name, view): z for view, z in preds.items()})
                else:
                    with rf('scalekd/projectors'):
                        preds = self._project_views(stage, x, queries)
                with rf('scalekd/dfm_loss'):
                    stage_losses = self.distill_losses[name](preds.get('spatial'),
                                                             preds.get('freq'), target)
            except _STAGE_ERRORS as err:
                if _OOM_ERRORS and isinstance(err, _OOM_ERRORS):
                    raise
                raise self._stage_error(stage, x, target, queries, err) from err
            for view, value in stage_losses.items():
                losses[f'distill.loss_{name}_{view}'] = value

        if self.logit_loss is not None:
            with rf('scalekd/logit_kd'):
                losses['distill.loss_kd'] = self.logit_loss(logits, targets.logits)
        return losses

    def _cached_logit_loss(self, inputs: Tensor, logits: Tensor, data_samples: list,
                           losses: Dict[str, Tensor]) -> Dict[str, Tensor]:
        """The logit KD term on the cached teacher logits (and, in check mode, the deviation)."""
        teacher_logits = self.teacher_cache.logits(data_samples, logits.device)
        if self.teacher is not None and self.training and self.teacher_cache.check_due():
            live = self._teacher_targets(inputs).logits
            losses.update(self.teacher_cache.deviation(teacher_logits, live))
        losses['distill.loss_kd'] = self.logit_loss(logits, teacher_logits)
        return losses

def _drop_reloaded_teacher(module: ScaleKDDistiller, state_dict: dict, prefix: str,
                           local_metadata: dict) -> None:
    """State-dict post-hook: leave ``teacher.*`` out when the teacher reloads its weights."""
    if not module.teacher_reloaded():
        return
    for key in [k for k in state_dict if k.startswith(prefix + 'teacher.')]:
        del state_dict[key]
    metadata = getattr(state_dict, '_metadata', None)
    if metadata is not None:
        for key in [k for k in metadata
                    if k == prefix + 'teacher' or k.startswith(prefix + 'teacher.')]:
            del metadata[key]


def _fill_reloaded_teacher(module: ScaleKDDistiller, state_dict: dict, prefix: str,
                           local_metadata: dict, strict: bool, missing_keys: list,
                           unexpected_keys: list, error_msgs: list) -> None:
    """Load pre-hook: a state dict without ``teacher.*`` keeps the teacher built from its own
    weights (filled in, so nothing is reported missing); one with them loads as before."""
    if module.teacher is not None and not any(k.startswith(prefix + 'teacher.')
                                              for k in state_dict):
        for key, value in module.teacher.state_dict(prefix=prefix + 'teacher.',
                                                    keep_vars=True).items():
            state_dict[key] = value
