#!/usr/bin/env bash
# Evaluate a checkpoint with N processes per node through torch.distributed.run (torchrun).
#   bash tools/dist_test.sh CONFIG CHECKPOINT GPUS [test.py args...]
# Multi-node: run it on every node with NNODES, NODE_RANK, MASTER_ADDR and PORT set.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/_launch_checks.sh"
launch_usage 3 $# "NNODES=1 NODE_RANK=0 MASTER_ADDR=127.0.0.1 PORT=29500 $0 CONFIG CHECKPOINT GPUS [args]"
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
launch_torchrun "$ROOT" tools/test.py 3 "$@"
