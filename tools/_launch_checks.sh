# Argument checks shared by the launch scripts (tools/dist_*.sh, tools/slurm_*.sh,
# tools/ssld/dist_mine.sh, tools/ssld/slurm_mine.sh). Sourced, not run:
#   source "$(dirname "${BASH_SOURCE[0]}")/_launch_checks.sh"
# Every check prints one line naming the script ($0), the bad value and what is accepted, and
# exits: 2 for a bad argument, 1 for a problem of the machine (busy port, no srun).

# launch_usage MIN_ARGS NUM_ARGS USAGE: exit 2 with "usage: USAGE" if fewer than MIN_ARGS.
launch_usage() {
  if [ "$2" -lt "$1" ]; then
    echo "usage: $3" >&2
    exit 2
  fi
}

# launch_python ROOT: set PYTHON (kept if set) to ROOT/.venv/bin/python if it exists, else python.
launch_python() {
  if [ -z "${PYTHON:-}" ]; then
    if [ -x "$1/.venv/bin/python" ]; then PYTHON=$1/.venv/bin/python; else PYTHON=python; fi
  fi
}

# launch_check_count NAME VALUE WHAT: VALUE must be a positive integer.
launch_check_count() {
  if ! [[ "$2" =~ ^[1-9][0-9]*$ ]]; then
    echo "$0: $1 must be $3 (a positive integer), got '$2'" >&2
    exit 2
  fi
}

# launch_check_gpus GPUS: the number of processes per node of a torchrun launch.
launch_check_gpus() {
  launch_check_count GPUS "$1" "the number of processes per node"
}

# launch_check_port PORT NODE_RANK ARGS...: PORT is a TCP port number and, on node 0, free
# (the rendezvous store listens on it there). A busy port fails here, with the way out,
# instead of deep inside torch.distributed. ARGS are the script's arguments, for the hint.
launch_check_port() {
  local port=$1 node_rank=$2
  shift 2
  if ! [[ "$port" =~ ^[0-9]+$ ]] || [ "$port" -lt 1 ] || [ "$port" -gt 65535 ]; then
    echo "$0: PORT must be a TCP port number (1-65535), got '$port'" >&2
    exit 2
  fi
  if [ "$node_rank" = 0 ] && ! "$PYTHON" -c 'import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("", int(sys.argv[1])))' "$port" 2>/dev/null; then
    echo "$0: port $port is in use (another job on this node?); choose a free one, e.g." \
      "PORT=$((port + 1)) bash $0 $*" >&2
    exit 1
  fi
}

# launch_check_slurm: srun is on PATH, and GPUS, GPUS_PER_NODE and CPUS_PER_TASK are numbers.
# Sets GRES to the srun options for GPUS_PER_NODE (none for CPU nodes, GPUS_PER_NODE=0).
launch_check_slurm() {
  if ! command -v srun >/dev/null 2>&1; then
    echo "$0: 'srun' was not found on PATH: run this script on a Slurm login node" \
      "(or load the Slurm module); on a single machine use tools/dist_train.sh," \
      "tools/dist_test.sh or tools/ssld/dist_mine.sh instead" >&2
    exit 1
  fi
  launch_check_count GPUS "$GPUS" "the total number of Slurm tasks"
  launch_check_count CPUS_PER_TASK "$CPUS_PER_TASK" "the CPU cores of each task"
  if ! [[ "$GPUS_PER_NODE" =~ ^[0-9]+$ ]]; then
    echo "$0: GPUS_PER_NODE must be the GPUs of each node (0 for CPU nodes), got" \
      "'$GPUS_PER_NODE'" >&2
    exit 2
  fi
  GRES=()
  if [ "$GPUS_PER_NODE" -gt 0 ]; then
    GRES=(--gres="gpu:$GPUS_PER_NODE" --ntasks-per-node="$GPUS_PER_NODE")
  fi
}

# launch_torchrun ROOT SCRIPT GPUS_AT ARGS...: the common body of the tools/dist_*.sh scripts.
# ARGS are the script's own arguments; the one at position GPUS_AT is the number of processes
# per node, those before it are SCRIPT's positional arguments, those after it are passed on
# after `--launcher pytorch`. NNODES, NODE_RANK, MASTER_ADDR and PORT come from the
# environment (defaults 1, 0, 127.0.0.1, 29500).
launch_torchrun() {
  local root=$1 script=$2 gpus_at=$3
  shift 3
  local gpus=${!gpus_at}
  NNODES=${NNODES:-1}
  NODE_RANK=${NODE_RANK:-0}
  MASTER_ADDR=${MASTER_ADDR:-127.0.0.1}
  PORT=${PORT:-29500}
  launch_python "$root"
  launch_check_gpus "$gpus"
  launch_check_port "$PORT" "$NODE_RANK" "$@"
  PYTHONPATH="$root${PYTHONPATH:+:$PYTHONPATH}" exec "$PYTHON" -m torch.distributed.run \
    --nnodes="$NNODES" --node_rank="$NODE_RANK" --master_addr="$MASTER_ADDR" \
    --master_port="$PORT" --nproc_per_node="$gpus" \
    "$root/$script" "${@:1:gpus_at-1}" --launcher pytorch "${@:gpus_at+1}"
}

# launch_srun ROOT PARTITION JOB_NAME TOOL ARGS...: the common body of the slurm_*.sh scripts:
# one task per GPU running `python -u ROOT/TOOL ARGS...` (ARGS include `--launcher=slurm`).
# GPUS (default 8), GPUS_PER_NODE (default 8; 0 = CPU nodes), CPUS_PER_TASK (default 5) and
# SRUN_ARGS (extra srun options, split on spaces on purpose) come from the environment.
launch_srun() {
  local root=$1 partition=$2 job_name=$3 tool=$4
  shift 4
  GPUS=${GPUS:-8}
  GPUS_PER_NODE=${GPUS_PER_NODE:-8}
  CPUS_PER_TASK=${CPUS_PER_TASK:-5}
  SRUN_ARGS=${SRUN_ARGS:-""}
  launch_python "$root"
  launch_check_slurm
  # shellcheck disable=SC2086
  PYTHONPATH="$root${PYTHONPATH:+:$PYTHONPATH}" exec srun -p "$partition" \
    --job-name="$job_name" --ntasks="$GPUS" "${GRES[@]}" \
    --cpus-per-task="$CPUS_PER_TASK" --kill-on-bad-exit=1 $SRUN_ARGS \
    "$PYTHON" -u "$root/$tool" "$@"
}
