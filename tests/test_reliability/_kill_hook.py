"""A test-only hook that kills its own process with SIGKILL at a chosen iteration."""
import os
import signal

from mmengine.hooks import Hook

from mmscalekd.registry import HOOKS


@HOOKS.register_module(force=True)
class SigkillAtIterHook(Hook):
    """``os.kill(getpid(), SIGKILL)`` when iteration ``$MMSCALEKD_KILL_AT`` starts (1-based).

    Nothing happens when the variable is unset, so the same config serves the
    uninterrupted, the killed and the resumed run.
    """

    priority = 'LOWEST'

    def before_train_iter(self, runner, batch_idx, data_batch=None) -> None:
        kill_at = os.environ.get('MMSCALEKD_KILL_AT')
        if kill_at and runner.iter + 1 == int(kill_at):
            os.kill(os.getpid(), signal.SIGKILL)
