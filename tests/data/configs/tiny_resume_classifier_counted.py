# tiny_resume_classifier.py for 2 gloo processes: batch 2 per process (8 iterations, checkpoints
# at 3 and 6 mid-epoch and at 8), plus a hook that counts torch.distributed collectives per
# iteration (tests/test_engine/_collective_counter.py).
_base_ = ['./tiny_resume_classifier.py']

custom_imports = dict(
    imports=['tests.test_reliability._kill_hook', 'tests.test_engine._collective_counter'],
    allow_failed_imports=False)
train_dataloader = dict(batch_size=2)
custom_hooks = [dict(type='EMAHook', momentum=0.1), dict(type='ExactResumeHook'),
                dict(type='CollectiveCounterHook')]
