#!/usr/bin/env bash
# Mine unlabeled images with N processes per node through torch.distributed.run (torchrun):
# every process scores its own shard of the pool on its own GPU; rank 0 merges.
#   bash tools/ssld/dist_mine.sh CONFIG GPUS --pool ... --val ... --topk 4000 --out ...
# Multi-node: run it on every node with NNODES, NODE_RANK, MASTER_ADDR and PORT set; --out
# must be on a file system that every node shares. Without GPUs the processes run on CPU.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../_launch_checks.sh"
launch_usage 2 $# "NNODES=1 NODE_RANK=0 MASTER_ADDR=127.0.0.1 PORT=29500 $0 CONFIG GPUS [args]"
CONFIG=$1
GPUS=$2
NNODES=${NNODES:-1}
NODE_RANK=${NODE_RANK:-0}
MASTER_ADDR=${MASTER_ADDR:-127.0.0.1}
PORT=${PORT:-29500}
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
launch_python "$ROOT"
launch_check_gpus "$GPUS"
launch_check_port "$PORT" "$NODE_RANK" "$@"

PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}" exec "$PYTHON" -m torch.distributed.run \
  --nnodes="$NNODES" --node_rank="$NODE_RANK" --master_addr="$MASTER_ADDR" \
  --master_port="$PORT" --nproc_per_node="$GPUS" \
  "$ROOT/tools/ssld/mine_unlabeled.py" "$CONFIG" --launcher pytorch "${@:3}"
