#!/usr/bin/env bash
# The main job on the shipped specs: check, compile (verified), generate source,
# export to ONNX, run on ONNX Runtime (verified against PyTorch) and benchmark.
# `make demo` runs it after setting up .venv. Outputs go to $ARCHSPEC_OUT (default out/).
set -euo pipefail
cd "$(dirname "$0")/.."
out=${ARCHSPEC_OUT:-out}
mkdir -p "$out"

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "check: every layer's figures, and the sources' published figures"
archspec check specs/

for spec in specs/*.yaml; do
  name=$(basename "$spec" .yaml)
  step "$name: compile --verify, codegen, export, diff, run --verify"
  archspec compile "$spec" --seed 0 --verify -o "$out/$name.safetensors"
  archspec codegen "$spec" -o "$out/$name.py"
  archspec export "$spec" --weights "$out/$name.safetensors" -o "$out/$name.onnx"
  archspec diff "$spec" "$out/$name.onnx" >/dev/null  # the exported graph is the spec's network
  archspec run "$out/$name.onnx" --spec "$spec" --weights "$out/$name.safetensors" \
    --batch 4 --provider auto --verify --top-k 3
done

# The benchmark times every engine for a second per spec and batch: the first stage's seven
# specs and the lineage's small ones (ARCHSPEC_BENCH_SPECS to choose others; VGG's 130 M
# weights take minutes on a small CPU).
bench_specs=${ARCHSPEC_BENCH_SPECS:-"specs/lenet5-*.yaml specs/alexnet.yaml specs/alexnet-*.yaml specs/resnet18.yaml specs/mobilenet-v2.yaml specs/squeezenet1.1.yaml"}
step "bench: ONNX Runtime against PyTorch eager, batch 1 and 8"
# shellcheck disable=SC2086  # the list is globbed on purpose
archspec bench $bench_specs --batch 1,8 --provider auto --baseline torch \
  -o "$out/bench.json" --plot "$out/bench.png"

step "bench: an ONNX file on its own (any model file; free axes fixed by --shape)"
archspec bench "$out/lenet5-d2l.onnx" --batch 1,8 --provider auto

step "done: outputs in $out/"
ls -l "$out"
