#!/usr/bin/env bash
# Mine unlabeled images with N processes per node through torch.distributed.run (torchrun):
# every process scores its own shard of the pool on its own GPU; rank 0 merges.
#   bash tools/ssld/dist_mine.sh CONFIG GPUS --pool ... --val ... --topk 4000 --out ...
# Multi-node: run it on every node with NNODES, NODE_RANK, MASTER_ADDR and PORT set; --out
# must be on a file system that every node shares. Without GPUs the processes run on CPU.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../_launch_checks.sh"
launch_usage 2 $# "NNODES=1 NODE_RANK=0 MASTER_ADDR=127.0.0.1 PORT=29500 $0 CONFIG GPUS [args]"
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
launch_torchrun "$ROOT" tools/ssld/mine_unlabeled.py 2 "$@"
