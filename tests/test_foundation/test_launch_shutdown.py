"""The tools end a distributed run by destroying the process group themselves."""
import torch.distributed as dist

from mmscalekd.utils.launch import shutdown_distributed


def _group(tmp_path) -> None:
    dist.init_process_group('gloo', init_method=f'file://{tmp_path / "store"}', rank=0,
                            world_size=1)


def test_shutdown_destroys_the_group_of_a_launched_run(tmp_path) -> None:
    _group(tmp_path)
    try:
        shutdown_distributed('none')  # one process: the tool did not start a group
        assert dist.is_initialized()
        shutdown_distributed('pytorch')
        assert not dist.is_initialized()
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()
    shutdown_distributed('pytorch')  # no group: nothing to do
    assert not dist.is_initialized()
