#!/usr/bin/env bash
# Install archspec with the onnx extra only (onnx, onnxruntime, safetensors: no torch) into a
# fresh venv and show that it exports and runs every shipped spec natively, while the commands
# that need PyTorch (compile, export --via torch, run --verify) exit 2 with the line installing it.
#
#   bash scripts/torch_free_venv.sh [VENV_DIR]     (default: a temporary directory)
set -u
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
VENV="${1:-$(mktemp -d)/onnx-venv}"
PY="${PY:-python3}"
OUT="$(mktemp -d)"

"$PY" -m venv "$VENV" || exit 1
"$VENV/bin/pip" install -q "$ROOT[onnx]" || exit 1
cd "$ROOT" || exit 1
status=0
run() {  # show the command, its last lines and exit status; $1 is the expected status
  local want=$1; shift
  echo "\$ $*"
  "$@" 2>&1 | tail -n "${TAIL:-2}"
  local got=${PIPESTATUS[0]}
  echo "[exit $got]"
  [ "$got" = "$want" ] || { echo "expected exit $want"; status=1; }
}
echo "installed: $("$VENV/bin/pip" list --format freeze 2>/dev/null | grep -iE '^(torch|onnx|onnxruntime|onnxruntime-gpu|safetensors|onnxscript)==' | tr '\n' ' ')"
"$VENV/bin/python" -c "import importlib.util as u; print('torch importable:', u.find_spec('torch') is not None)"
export PATH="$VENV/bin:$PATH"
for spec in specs/*.yaml; do
  name="$(basename "$spec" .yaml)"
  TAIL=1 run 0 archspec export "$spec" -o "$OUT/$name.onnx"
  TAIL=1 run 0 archspec run "$spec" --repeat 2 --provider cpu
done
TAIL=1 run 0 archspec run "$OUT/lenet5-d2l.onnx" --provider cpu --top-k 3
run 0 archspec export specs/lenet5-d2l.yaml --triton "$OUT/repo" --tensorrt fp16
run 2 archspec export specs/lenet5-d2l.yaml -o "$OUT/t.onnx" --via torch
run 2 archspec run specs/lenet5-d2l.yaml --verify
run 2 archspec compile specs/lenet5-d2l.yaml
exit $status
