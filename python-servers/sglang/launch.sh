#!/usr/bin/env bash
# Start SGLang serving DeepSeek-Prover-V2-7B for stepwise's policy (GPU 0 by default).
#
#   python-servers/sglang/launch.sh                 # model from the Hub cache, port 30000
#   MODEL=/models/DeepSeek-Prover-V2-7B PORT=30010 GPU=1 python-servers/sglang/launch.sh
#
# Then: stepwise doctor --config configs/minif2f.toml
set -euo pipefail

MODEL=${MODEL:-deepseek-ai/DeepSeek-Prover-V2-7B}
HOST=${HOST:-127.0.0.1}            # loopback unless you mean to expose it
PORT=${PORT:-30000}
GPU=${GPU:-0}
# Weights (~14 GiB bf16) + KV cache; leave headroom for CUDA graphs.
MEM_FRACTION=${MEM_FRACTION:-0.85}
# stepwise sends concurrency x batch_expansion_size x num_candidates prompts at a time
# (10 x 1 x 16 = 160 with the defaults); keep this above that so nothing queues client-side.
MAX_RUNNING=${MAX_RUNNING:-256}
CONTEXT=${CONTEXT:-4096}

# The radix cache is on by default in SGLang (we never pass --disable-radix-cache): the 16
# samples of one node share their whole prompt, so only the first pays for prefill.
exec env CUDA_VISIBLE_DEVICES="$GPU" python -m sglang.launch_server \
  --model-path "$MODEL" \
  --host "$HOST" \
  --port "$PORT" \
  --dtype bfloat16 \
  --context-length "$CONTEXT" \
  --mem-fraction-static "$MEM_FRACTION" \
  --max-running-requests "$MAX_RUNNING" \
  --trust-remote-code \
  "$@"
