"""mmscalekd: distilling vision backbones from strong teachers (ScaleKD, SSLD).

Importing the package changes nothing in other libraries. It checks the versions
of the OpenMMLab stack by import name and warns (never fails) outside the tested
range, as mmpretrain's ``__init__`` does. MMEngine is extended through its
extension points only, and only where a runner is built
(:func:`mmscalekd.utils.register_all_modules`, ``tools/train.py``): registered
hooks (``SafeCheckpointHook``, named in ``configs/_base_/default_runtime.py``),
loops and checkpoint loader schemes.
"""
from .utils.versions import check_versions as _check_versions
from .version import __version__

_check_versions()

__all__ = ['__version__']
