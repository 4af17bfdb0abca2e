#!/usr/bin/env bash
# Install archspec with no extras into a fresh venv and show what the core does:
# `archspec check specs/` passes, and a command that needs an extra exits 2 with
# the one line that installs it.
#
#   bash scripts/core_only_venv.sh [VENV_DIR]     (default: a temporary directory)
#
# pip fetches the core's dependencies (pydantic, pyyaml, networkx, rich, numpy)
# from the configured index or cache; no framework is installed.
set -u
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
VENV="${1:-$(mktemp -d)/core-venv}"
PY="${PY:-python3}"

"$PY" -m venv "$VENV" || exit 1
"$VENV/bin/pip" install -q "$ROOT" || exit 1
cd "$ROOT" || exit 1
status=0
run() {  # show the command, its output and exit status; $1 is the expected status
  local want=$1; shift
  echo "\$ $*"
  "$@" 2>&1 | tail -n 3
  local got=${PIPESTATUS[0]}
  echo "[exit $got]"
  [ "$got" = "$want" ] || { echo "expected exit $want"; status=1; }
}
echo "installed: $("$VENV/bin/pip" list --format freeze 2>/dev/null | grep -iE '^(torch|onnx|onnxruntime|onnxruntime-gpu|safetensors|matplotlib)==' | tr '\n' ' ')(no framework when empty)"
export PATH="$VENV/bin:$PATH"
run 0 archspec check specs/
run 0 archspec codegen specs/lenet5-lecun1998.yaml -o /tmp/core-only-lenet.py
run 2 archspec compile specs/lenet5-lecun1998.yaml
run 2 archspec export specs/lenet5-lecun1998.yaml -o /tmp/core-only.onnx
run 2 archspec run specs/lenet5-lecun1998.yaml
exit $status
