"""The CPU demo (``tools/demo.py``): a small ViT teacher distilled into CNN and MLP students.

* :mod:`.pipeline`: :func:`run_demo`, the options and their checks against the data.
* :mod:`.teacher`: the teacher's data fingerprint, step budget, held-out slice, plateau check.
* :mod:`.configs`: the demo configs and how one run's config is made from them.
* :mod:`.runs`, :mod:`.parallel`: one run in a worker; worker processes with progress and ETA.
* :mod:`.results`: mean ± std over seeds, paired differences, the table and the curves.
* :mod:`.outputs`: atomic writes; an earlier run's outputs kept or replaced.
"""
from .pipeline import DemoOptionError, DemoSetting, run_demo
from .teacher import TeacherMismatchError

__all__ = ['DemoOptionError', 'DemoSetting', 'TeacherMismatchError', 'run_demo']
