#!/usr/bin/env bash
# Evaluate a checkpoint with N processes per node through torch.distributed.run (torchrun).
#   bash tools/dist_test.sh CONFIG CHECKPOINT GPUS [test.py args...]
# Multi-node: run it on every node with NNODES, NODE_RANK, MASTER_ADDR and PORT set.
set -euo pipefail
if [ $# -lt 3 ]; then
  echo "usage: NNODES=1 NODE_RANK=0 MASTER_ADDR=127.0.0.1 PORT=29500 $0 CONFIG CHECKPOINT GPUS [args]" >&2
  exit 2
fi
CONFIG=$1
CHECKPOINT=$2
GPUS=$3
NNODES=${NNODES:-1}
NODE_RANK=${NODE_RANK:-0}
MASTER_ADDR=${MASTER_ADDR:-127.0.0.1}
PORT=${PORT:-29500}
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
if [ -z "${PYTHON:-}" ]; then
  if [ -x "$ROOT/.venv/bin/python" ]; then PYTHON=$ROOT/.venv/bin/python; else PYTHON=python; fi
fi

if ! [[ "$GPUS" =~ ^[1-9][0-9]*$ ]]; then
  echo "$0: GPUS must be the number of processes per node (a positive integer), got '$GPUS'" >&2
  exit 2
fi
if ! [[ "$PORT" =~ ^[0-9]+$ ]] || [ "$PORT" -lt 1 ] || [ "$PORT" -gt 65535 ]; then
  echo "$0: PORT must be a TCP port number (1-65535), got '$PORT'" >&2
  exit 2
fi
# The rendezvous store listens on PORT on node 0: a busy port fails here, with the way out,
# instead of deep inside torch.distributed.
if [ "$NODE_RANK" = 0 ] && ! "$PYTHON" -c 'import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("", int(sys.argv[1])))' "$PORT" 2>/dev/null; then
  echo "$0: port $PORT is in use (another job on this node?); choose a free one, e.g." \
    "PORT=$((PORT + 1)) bash $0 $*" >&2
  exit 1
fi

PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}" exec "$PYTHON" -m torch.distributed.run \
  --nnodes="$NNODES" --node_rank="$NODE_RANK" --master_addr="$MASTER_ADDR" \
  --master_port="$PORT" --nproc_per_node="$GPUS" \
  "$ROOT/tools/test.py" "$CONFIG" "$CHECKPOINT" --launcher pytorch "${@:4}"
