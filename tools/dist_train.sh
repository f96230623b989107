#!/usr/bin/env bash
# Train with N processes per node through torch.distributed.run (torchrun).
#   bash tools/dist_train.sh CONFIG GPUS [train.py args...]
# Multi-node: run it on every node with NNODES, NODE_RANK, MASTER_ADDR and PORT set.
# Without GPUs the processes use gloo on CPU (tools/train.py adapts the config).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/_launch_checks.sh"
launch_usage 2 $# "NNODES=1 NODE_RANK=0 MASTER_ADDR=127.0.0.1 PORT=29500 $0 CONFIG GPUS [args]"
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
launch_torchrun "$ROOT" tools/train.py 2 "$@"
