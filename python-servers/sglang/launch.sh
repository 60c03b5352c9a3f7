#!/usr/bin/env bash
# Start SGLang serving DeepSeek-Prover-V2-7B for stepwise's policy (GPU 0 by default).
#
#   python-servers/sglang/launch.sh                 # model from the Hub cache, port 30000
#   MODEL=/models/DeepSeek-Prover-V2-7B PORT=30010 GPU=1 python-servers/sglang/launch.sh
#   GPUS=0,1,2,3 python-servers/sglang/launch.sh    # one server per GPU, ports 30000..30003
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
# DeepSeek-Prover-V2-7B's own context (32K, its config.json max_position_embeddings). Deep
# nodes carry every earlier tactic and the state; SGLang answers 400 to a prompt (plus
# max_new_tokens) longer than this, and stepwise bounds its prompts to the context the
# server reports at start.
CONTEXT=${CONTEXT:-32768}

# Several GPUs on one node: one independent server per GPU on consecutive ports (each is its
# own radix cache), logs in LOG_DIR; prints the `policy.urls` that lists them all. See
# python-servers/README.md for when SGLang's router in front is the better choice.
if [ -n "${GPUS:-}" ]; then
  IFS=, read -ra gpus <<< "$GPUS"
  LOG_DIR=${LOG_DIR:-.}
  pids=()
  urls=()
  for i in "${!gpus[@]}"; do
    GPUS='' GPU="${gpus[$i]}" PORT=$((PORT + i)) "$0" "$@" \
      > "$LOG_DIR/sglang-gpu${gpus[$i]}.log" 2>&1 &
    pids+=($!)
    urls+=("\"http://$HOST:$((PORT + i))\"")
  done
  echo "started ${#pids[@]} servers; logs in $LOG_DIR/sglang-gpu*.log"
  echo "policy.urls = [$(IFS=,; echo "${urls[*]}" | sed 's/,/, /g')]"
  trap 'kill "${pids[@]}" 2>/dev/null' INT TERM EXIT
  wait
  exit
fi

# The radix cache is on by default in SGLang (we never pass --disable-radix-cache): the 16
# samples of one node share their whole prompt, so only the first pays for prefill.
# --schedule-policy lpm (longest prefix match, managers/schedule_policy.py) queues requests
# that share a cached prefix together, so a node's 16 repeated prompts use one prefill;
# SGLang's default fcfs takes them in arrival order and can prefill each one.
# SGLANG_RETURN_ORIGINAL_LOGPROB=1: without it SGLang returns log-probs of the
# temperature-scaled distribution (log_softmax(logits / T), layers/sampler.py), vLLM of the
# raw one; with it both backends give the model's own log-probs, so node priorities are
# comparable across backends and temperatures.
exec env CUDA_VISIBLE_DEVICES="$GPU" SGLANG_RETURN_ORIGINAL_LOGPROB=1 python -m sglang.launch_server \
  --model-path "$MODEL" \
  --host "$HOST" \
  --port "$PORT" \
  --dtype bfloat16 \
  --context-length "$CONTEXT" \
  --mem-fraction-static "$MEM_FRACTION" \
  --max-running-requests "$MAX_RUNNING" \
  --schedule-policy lpm \
  --trust-remote-code \
  "$@"
