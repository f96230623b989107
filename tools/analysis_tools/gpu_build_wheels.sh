#!/usr/bin/env bash
# Build the wheel folder that tools/analysis_tools/gpu_benchmark.sh installs on a bare GPU
# machine that has its own PyTorch + CUDA but no network (docs/benchmark.md, "Scaling on a GPU").
#
#   bash tools/analysis_tools/gpu_build_wheels.sh [PYTHON] [DEST]
#
# PYTHON (default python3) needs pip, wheel and setuptools < 81 (mmcv 2.1.0's setup.py imports
# pkg_resources; requirements/build.txt pins the version); MMCV_WITH_OPS=0 compiles nothing. DEST defaults to .whl (git-ignored) in the repository root.
# What goes in: the OpenMMLab stack and timm at the versions CI tests (requirements/ci.txt and
# mminstall.txt), mmcv 2.1.0 built with MMCV_WITH_OPS=0 ("mmcv-lite": no compiled ops, which
# classification distillation does not use), and the pure-Python packages they import that the
# GPU machine's image lacks. The image's own packages (numpy, PyYAML, rich, opencv-python-headless,
# matplotlib, einops, Pillow, packaging, huggingface-hub, safetensors, psutil, tqdm, click,
# Markdown, zipp, torch, torchvision) are used as they are there.
# The folder must stay under LIMIT_MIB (default 48: the device tool carries at most 64 MiB,
# wheels and working tree together); the script fails otherwise.
set -euo pipefail
PY=${1:-python3}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
DEST=${2:-$ROOT/.whl}
LIMIT_MIB=${LIMIT_MIB:-48}

# Pure-Python wheels (py3-none-any), pinned to the versions the test suite runs with.
WHEELS=(
  mmengine==0.10.7 mmpretrain==1.2.0 timm==1.0.31
  addict==2.4.0 yapf==0.43.0 platformdirs==4.14.9 termcolor==3.3.0
  mat4py==0.6.0 modelindex==0.0.2 model-index==0.1.11 ordered-set==4.1.0
  importlib-metadata==10.2.0 lazy-importer==0.1.0
)
if ! "$PY" -c 'import pkg_resources' 2>/dev/null; then
  echo "gpu_build_wheels: $PY has no pkg_resources (setuptools >= 81), which mmcv 2.1.0's" \
       "setup.py needs: $PY -m pip install -r requirements/build.txt" >&2
  exit 1
fi
rm -rf "$DEST"
mkdir -p "$DEST"
"$PY" -m pip download -q --no-deps --only-binary=:all: -d "$DEST" "${WHEELS[@]}"

# mmcv 2.1.0 has no wheel on PyPI: build it from the sdist without its compiled ops. Built so,
# its setup.py names the distribution mmcv-lite (import name mmcv), hence the sdist first.
SDIST_DIR=$(mktemp -d "${TMPDIR:-/tmp}/mmcv-sdist.XXXXXX")
trap 'rm -rf "$SDIST_DIR"' EXIT
"$PY" -m pip download -q --no-deps --no-binary :all: --no-build-isolation -d "$SDIST_DIR" \
  mmcv==2.1.0
MMCV_WITH_OPS=0 "$PY" -m pip wheel -q --no-deps --no-build-isolation -w "$DEST" \
  "$SDIST_DIR"/mmcv-2.1.0.tar.gz
for whl in "$DEST"/*.whl; do
  case "$(basename "$whl")" in
    *-py3-none-any.whl|*-py2.py3-none-any.whl) ;;
    *) echo "gpu_build_wheels: $(basename "$whl") is not pure Python; the GPU machine runs" \
            "another Python (3.12): build it there or leave it out" >&2; exit 1 ;;
  esac
done

size_mib=$(( $(du -sb "$DEST" | cut -f1) / 1048576 ))
tree_mib=$(( $(git -C "$ROOT" ls-files -z | (cd "$ROOT" && xargs -0 du -cb 2>/dev/null) \
  | awk '/\ttotal$/ {s += $1} END {print s + 0}') / 1048576 ))
ls -l "$DEST"
echo "gpu_build_wheels: $(ls "$DEST" | wc -l) wheels, ${size_mib} MiB in $DEST;" \
     "tracked tree ${tree_mib} MiB; carry limit 64 MiB in all"
if [ "$size_mib" -ge "$LIMIT_MIB" ] || [ $((size_mib + tree_mib)) -ge 64 ]; then
  echo "gpu_build_wheels: too large to carry (wheels ${size_mib} MiB, limit ${LIMIT_MIB} MiB;" \
       "with the tree $((size_mib + tree_mib)) of 64 MiB)" >&2
  exit 1
fi
