#!/usr/bin/env bash
# The GPU measurements the CPU benchmarks cannot make, as one short job for a CUDA machine without network access.
#
#   bash scripts/gpu_checks.sh prepare        # where pip works: wheels + tokenizer into .gpu-bundle/ (about 50 MB)
#   bash scripts/gpu_checks.sh run [DIR]      # on the GPU machine, with .gpu-bundle/ copied beside the checkout
#
# `run` installs the bundled wheels into a private folder (nothing of the machine's own Python is changed; its
# torch, transformers, peft and lightning are used), then, within about 11 minutes on one H100/H200, runs three
# registered benchmarks (`lmrec-bench list`; docs/benchmarks.md §12 and §14, docs/rerankers.md):
#   1. llm_gpu: a 494M-parameter decoder (Qwen2.5-0.5B's shape, random weights) encoding the bundled catalogue in
#      bf16 through lmrec and through a plain transformers loop, the same in 4-bit NF4 (bitsandbytes), and LoRA /
#      QLoRA training-step times (docs/llm_encoders.md);
#   2. rerank_gpu: a 1.5B-parameter decoder (Qwen2.5-1.5B's shape, random weights) as a reranker: choice scoring
#      of 20 candidates through lmrec and a plain transformers loop, LoRA training-step time, peak memory;
#   3. sasrec --gpu --jobs 3: lmrec's SASRec against RecBole 1.2.1's on one temporal leave-one-out split, seeds
#      0-2 to convergence (docs/sequential_results.md).
# Their records (llm_gpu.json, rerank_gpu.json, sasrec.json: figures, command, commit, machine, load) and logs go to
# DIR (default docs/results); `lmrec-bench tables` then puts them into docs/benchmarks.md.
set -euo pipefail
cd "$(dirname "$0")/.."
BUNDLE=.gpu-bundle

prepare() {
  mkdir -p "$BUNDLE/wheels"
  # Pure-Python or manylinux wheels for Python 3.12 on x86-64: what lmrec and RecBole import beyond a CUDA image
  # with torch, transformers, peft, pytorch-lightning, pandas and scipy.
  python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_24_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    -d "$BUNDLE/wheels" bitsandbytes==0.50.2 recbole==1.2.1 texttable colorlog colorama \
    hydra-core==1.3.2 omegaconf==2.3.0
  # antlr4-python3-runtime 4.9.3 (omegaconf's parser) is published as a source archive only: build its wheel;
  # then lmrec itself, with its configs and bundled data.
  python3 -m pip wheel --no-deps -w "$BUNDLE/wheels" antlr4-python3-runtime==4.9.3 .
  python3 -c "import sys; from lmrec.bench.decoders import save_packaged_tokenizer as save; save(sys.argv[1])" \
    "$BUNDLE/tokenizer"
  du -sh "$BUNDLE"
}

run() {
  local out="${1:-docs/results}"
  mkdir -p "$out"
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/lmrec-site \
    "$BUNDLE"/wheels/*.whl
  export PYTHONPATH=/tmp/lmrec-site HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$out/gpu.txt"
  timeout 240 python3 -m lmrec.bench.cli run llm_gpu --tokenizer "$BUNDLE/tokenizer" --out "$out" \
    2>&1 | tee "$out/llm_gpu.log" || echo "llm_gpu failed or timed out (see $out/llm_gpu.log)"
  timeout 120 python3 -m lmrec.bench.cli run rerank_gpu --shape qwen2.5-1.5b --tokenizer "$BUNDLE/tokenizer" \
    --out "$out" 2>&1 | tee "$out/rerank_gpu.log" || echo "rerank_gpu failed or timed out (see $out/rerank_gpu.log)"
  timeout 300 python3 -m lmrec.bench.cli run sasrec --gpu --jobs 3 --seeds 0 1 2 --out "$out" \
    2>&1 | tee "$out/sasrec.log" || echo "sasrec failed or timed out (see $out/sasrec.log)"
}

case "${1:-}" in
  prepare) prepare ;;
  run) shift; run "$@" ;;
  *) echo "usage: bash scripts/gpu_checks.sh prepare | run [DIR]" >&2; exit 2 ;;
esac
