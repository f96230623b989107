"""Registries of mmscalekd: child nodes of mmpretrain's.

Each node's parent is the mmpretrain node of the same kind, so a config with
``default_scope='mmscalekd'`` resolves our types *and* bare mmpretrain types
(``ImageClassifier``, ``ResNet``, ``SwinTransformer``) without scope prefixes.
"""
from mmengine.registry import Registry
from mmpretrain import registry as mmpretrain_registry

__all__ = [
    'RUNNERS', 'RUNNER_CONSTRUCTORS', 'LOOPS', 'HOOKS', 'LOG_PROCESSORS', 'OPTIMIZERS',
    'OPTIM_WRAPPERS', 'OPTIM_WRAPPER_CONSTRUCTORS', 'PARAM_SCHEDULERS', 'DATASETS',
    'DATA_SAMPLERS', 'TRANSFORMS', 'MODELS', 'MODEL_WRAPPERS', 'WEIGHT_INITIALIZERS',
    'BATCH_AUGMENTS', 'TASK_UTILS', 'METRICS', 'EVALUATORS', 'VISUALIZERS', 'VISBACKENDS',
]


def _child(name: str, parent: Registry, location: str | None = None) -> Registry:
    return Registry(name, parent=parent, scope='mmscalekd',
                    locations=[location] if location else [])


RUNNERS = _child('runner', mmpretrain_registry.RUNNERS)
RUNNER_CONSTRUCTORS = _child('runner constructor', mmpretrain_registry.RUNNER_CONSTRUCTORS)
LOOPS = _child('loop', mmpretrain_registry.LOOPS, 'mmscalekd.engine')
HOOKS = _child('hook', mmpretrain_registry.HOOKS, 'mmscalekd.engine')
LOG_PROCESSORS = _child('log processor', mmpretrain_registry.LOG_PROCESSORS)
OPTIMIZERS = _child('optimizer', mmpretrain_registry.OPTIMIZERS, 'mmscalekd.engine')
OPTIM_WRAPPERS = _child('optimizer_wrapper', mmpretrain_registry.OPTIM_WRAPPERS, 'mmscalekd.engine')
OPTIM_WRAPPER_CONSTRUCTORS = _child(
    'optimizer wrapper constructor', mmpretrain_registry.OPTIM_WRAPPER_CONSTRUCTORS,
    'mmscalekd.engine')
PARAM_SCHEDULERS = _child('parameter scheduler', mmpretrain_registry.PARAM_SCHEDULERS,
                          'mmscalekd.engine')
DATASETS = _child('dataset', mmpretrain_registry.DATASETS, 'mmscalekd.datasets')
DATA_SAMPLERS = _child('data sampler', mmpretrain_registry.DATA_SAMPLERS, 'mmscalekd.datasets')
TRANSFORMS = _child('transform', mmpretrain_registry.TRANSFORMS, 'mmscalekd.datasets')
MODELS = _child('model', mmpretrain_registry.MODELS, 'mmscalekd.models')
MODEL_WRAPPERS = _child('model_wrapper', mmpretrain_registry.MODEL_WRAPPERS)
WEIGHT_INITIALIZERS = _child('weight initializer', mmpretrain_registry.WEIGHT_INITIALIZERS)
BATCH_AUGMENTS = _child('batch augment', mmpretrain_registry.BATCH_AUGMENTS)
TASK_UTILS = _child('task util', mmpretrain_registry.TASK_UTILS)
METRICS = _child('metric', mmpretrain_registry.METRICS)
EVALUATORS = _child('evaluator', mmpretrain_registry.EVALUATORS)
VISUALIZERS = _child('visualizer', mmpretrain_registry.VISUALIZERS)
VISBACKENDS = _child('vis_backend', mmpretrain_registry.VISBACKENDS)
