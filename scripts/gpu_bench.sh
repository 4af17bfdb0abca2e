#!/usr/bin/env bash
# The GPU benchmark, in one run under 10 minutes on one GPU (make gpu-bench):
#   ORT CUDA and TensorRT, fp32 and fp16, against torch eager and torch.compile:
#   AlexNet at batch 1 and 256; LeNet-5 at batch 1 with and without CUDA graphs.
# Then rewrites docs/benchmarks.md's GPU table from the JSON reports (device name included).
# Targets (issue 15): ORT CUDA fp16 AlexNet b256 ≥ torch eager fp16 throughput in the same run;
# LeNet-5 b1 ≤ 50 µs with a CUDA graph. Needs a GPU and onnxruntime-gpu; refuses plainly without.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${ARCHSPEC_OUT:-out/gpu}
mkdir -p "$out"
if ! python -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)'; then
  echo "gpu_bench: no CUDA device: nothing measured (docs/benchmarks.md keeps 'not measured')" >&2
  exit 2
fi
common=(--baseline torch,torch-compile --min-time 2 --quiet --strict)
for provider in cuda tensorrt; do
  for precision in fp32 fp16; do
    archspec bench specs/alexnet.yaml --batch 1,256 --provider "$provider" --precision "$precision" \
      "${common[@]}" -o "$out/alexnet-$provider-$precision.json" || true
  done
  archspec bench specs/lenet5-lecun1998.yaml --batch 1 --provider "$provider" "${common[@]}" \
    -o "$out/lenet5-$provider.json" || true
  archspec bench specs/lenet5-lecun1998.yaml --batch 1 --provider "$provider" --cuda-graph \
    "${common[@]}" -o "$out/lenet5-$provider-graph.json" || true
done
python scripts/bench_all.py docs --gpu "$out"/*.json
echo "gpu_bench: reports in $out/, docs/benchmarks.md's GPU table rewritten"
