"""A Runner whose datasets follow the config's top-level ``data_root``."""
from __future__ import annotations

import copy

from mmengine.config import Config, ConfigDict
from mmengine.runner import Runner

from mmscalekd.datasets.data_root import follow_data_root
from mmscalekd.registry import RUNNERS


@RUNNERS.register_module()
class DataRootRunner(Runner):
    """MMEngine's ``Runner``; datasets without their own ``data_root`` get the config's.

    Select it with ``runner_type = 'DataRootRunner'`` (the demo configs do). Then
    ``--cfg-options data_root=DIR`` moves every dataset of the config that does not set its own
    ``data_root`` (see :func:`mmscalekd.datasets.data_root.follow_data_root`); everything else
    is MMEngine's Runner.
    """

    @classmethod
    def from_cfg(cls, cfg: Config) -> 'DataRootRunner':
        cfg = copy.deepcopy(cfg)
        if not isinstance(cfg, (Config, ConfigDict)):
            cfg = ConfigDict(cfg)
        follow_data_root(cfg)
        return super().from_cfg(cfg)
