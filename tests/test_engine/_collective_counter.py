"""A test-only hook that counts the torch.distributed collectives started in each iteration."""
import functools
import json
import os.path as osp
from collections import Counter

import torch.distributed as dist
from mmengine.hooks import Hook

from mmscalekd.registry import HOOKS

# Every Python-level collective / point-to-point call of torch.distributed. DDP's gradient
# all-reduce runs inside its C++ reducer and is not counted: it is the training itself.
NAMES = ('all_reduce', 'all_gather', 'all_gather_object', 'all_gather_into_tensor', 'broadcast',
         'broadcast_object_list', 'gather', 'gather_object', 'reduce', 'reduce_scatter',
         'reduce_scatter_tensor', 'scatter', 'scatter_object_list', 'all_to_all',
         'all_to_all_single', 'barrier', 'monitored_barrier', 'send', 'recv', 'isend', 'irecv')


@HOOKS.register_module(force=True)
class CollectiveCounterHook(Hook):
    """Wrap torch.distributed's collectives in ``before_run``; write the count per training
    iteration (``'outside'`` for calls between iterations) to
    ``WORK_DIR/collectives_rank<r>.json`` in ``after_run``."""

    priority = 'HIGHEST'

    def __init__(self) -> None:
        self.counts: Counter = Counter()
        self.current = 'outside'
        self._depth = 0

    def _wrap(self, fn):
        @functools.wraps(fn)
        def counted(*args, **kwargs):
            if self._depth == 0:  # all_gather_object calls all_gather: count the outer call
                self.counts[self.current] += 1
            self._depth += 1
            try:
                return fn(*args, **kwargs)
            finally:
                self._depth -= 1
        return counted

    def before_run(self, runner) -> None:
        for module in (dist, dist.distributed_c10d):
            for name in NAMES:
                if hasattr(module, name):
                    setattr(module, name, self._wrap(getattr(module, name)))

    def before_train_iter(self, runner, batch_idx, data_batch=None) -> None:
        # Until the next iteration starts, every call (the other hooks' after_train_iter and
        # after_train_epoch included) counts for this one.
        self.current = str(runner.iter + 1)

    def before_train_epoch(self, runner) -> None:
        self.current = 'outside'

    def after_run(self, runner) -> None:
        path = osp.join(runner.work_dir, f'collectives_rank{runner.rank}.json')
        with open(path, 'w') as f:
            json.dump(dict(self.counts), f)
