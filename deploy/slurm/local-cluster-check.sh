#!/bin/bash
# Opt-in (not in CI), needs root: a one-node Slurm cluster on localhost runs a 4-task sweep
# array against the simulators, the merge job joins the shards, and the merged results must
# equal a one-machine sweep of the same file.
#   deploy/slurm/local-cluster-check.sh [path/to/stepwise]
# Installs Debian's slurm-wlm and munge when missing; Slurm's config, state and logs live in
# a temporary directory (kept on failure, printed at the end); the daemons it starts are
# stopped on exit.
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
STEPWISE=$(realpath "${1:-$repo/target/debug/stepwise}")
[ -x "$STEPWISE" ] || { echo "no stepwise binary at $STEPWISE (cargo build first)"; exit 1; }
[ "$(id -u)" = 0 ] || { echo "run as root (it starts munged, slurmctld, slurmd)"; exit 1; }
SHARDS=4
PORT=${PORT:-31500}
WORK=$(mktemp -d /tmp/stepwise-slurm.XXXXXX)
log() { echo "[$(date -u +%H:%M:%S)] $*"; }

if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null; then
  log "installing slurm-wlm and munge"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends slurm-wlm munge
fi

pids=()
cleanup() {
  local status=$?
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  local daemons=()
  for f in "$WORK/slurmctld.pid" "$WORK/slurmd.pid" "$WORK/munged.pid"; do
    [ -s "$f" ] && daemons+=("$(cat "$f")")
  done
  for pid in "${daemons[@]}"; do kill "$pid" 2>/dev/null || true; done
  # They write their state on the way out: wait before removing it.
  for _ in $(seq 50); do
    alive=0
    for pid in "${daemons[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
    [ $alive = 0 ] && break
    sleep 0.1
  done
  if [ $status = 0 ]; then rm -rf "$WORK"; else log "kept $WORK for inspection"; fi
}
trap cleanup EXIT

# munge: a key and a daemon of our own (its socket in $WORK).
mkdir -p "$WORK/munge"
dd if=/dev/urandom bs=1 count=1024 of="$WORK/munge/munge.key" status=none
chmod 400 "$WORK/munge/munge.key"
munged --force --key-file="$WORK/munge/munge.key" --socket="$WORK/munge/socket" \
  --pid-file="$WORK/munged.pid" --log-file="$WORK/munged.log" --seed-file="$WORK/munge/seed"
export MUNGE_SOCKET="$WORK/munge/socket"

host=$(hostname -s)
cpus=$(nproc)
mkdir -p "$WORK/spool/ctld" "$WORK/spool/d"
cat > "$WORK/slurm.conf" <<CONF
ClusterName=stepwise-check
SlurmctldHost=$host(127.0.0.1)
SlurmUser=root
AuthType=auth/munge
AuthInfo=socket=$WORK/munge/socket
CredType=cred/munge
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
MinJobAge=600
SlurmctldPort=$((PORT + 17))
SlurmdPort=$((PORT + 18))
SlurmctldPidFile=$WORK/slurmctld.pid
SlurmdPidFile=$WORK/slurmd.pid
SlurmctldLogFile=$WORK/slurmctld.log
SlurmdLogFile=$WORK/slurmd.log
StateSaveLocation=$WORK/spool/ctld
SlurmdSpoolDir=$WORK/spool/d
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus State=UNKNOWN
PartitionName=check Nodes=$host Default=YES MaxTime=INFINITE State=UP
CONF
export SLURM_CONF="$WORK/slurm.conf"
slurmctld -i
slurmd
for _ in $(seq 60); do
  sinfo -h -o '%t' 2>/dev/null | grep -q idle && break
  sleep 1
done
log "cluster up: $(sinfo -h -o '%P %D nodes %t, %c CPUs')"

# The simulated SGLang as a process, and a config whose Lean is the simulated REPL.
world="$repo/configs/demo/world.json"
theorems="$repo/configs/demo/theorems.jsonl"
"$STEPWISE" sim sglang --world "$world" --addr "127.0.0.1:$PORT" >"$WORK/sglang.log" 2>&1 &
pids+=($!)
cat > "$WORK/config.toml" <<CONF
[search]
max_nodes = 60
max_depth = 12
num_candidates = 8
timeout_per_theorem = 20

[policy]
urls = ["http://127.0.0.1:$PORT"]
request_timeout = 10

[lean]
command = ["$STEPWISE", "sim", "repl", "--world", "$world"]
workers = 2
header = "import Mathlib\nimport Aesop"
tactic_timeout = 5

[sweep]
concurrency = 2
CONF

log "submitting $SHARDS shards of $(wc -l <"$theorems") theorems"
STEPWISE="$STEPWISE" CONFIG="$WORK/config.toml" THEOREMS="$theorems" RUN_DIR="$WORK/run" \
  SHARDS=$SHARDS POLICY_URL="http://127.0.0.1:$PORT" LEAN_WORKERS=2 \
  "$repo/deploy/slurm/submit.sh"
read -r array merge < "$WORK/run/jobs"
for _ in $(seq 600); do
  states=$(squeue -h -t all -j "$array,$merge" -o '%T' | sort -u | tr '\n' ' ')
  case "$states" in *PENDING*|*RUNNING*|*CONFIGURING*|*COMPLETING*) sleep 1 ;; *) break ;; esac
done
log "jobs:"
squeue -t all -j "$array,$merge" -o '%.14i %.16j %.10T %.8M %R'
for out in "$WORK"/run/*.out; do echo "--- $(basename "$out")"; cat "$out"; done

log "one-machine sweep of the same file"
"$STEPWISE" sweep --config "$WORK/config.toml" --theorems "$theorems" --out "$WORK/single" 2>/dev/null

python3 - "$WORK/run/merged" "$WORK/single" "$theorems" <<'PY'
import json, sys
merged, single, theorems = sys.argv[1:]
keep = ["proved", "status", "proof", "nodes_expanded", "nodes_created",
        "candidates_generated", "candidates_passed_lean"]
def outcomes(d):
    lines = [json.loads(l) for l in open(f"{d}/results.jsonl") if l.strip()]
    names = [r["name"] for r in lines]
    assert len(names) == len(set(names)), f"{d}: a theorem has two lines"
    return {r["name"]: {k: r.get(k) for k in keep} for r in lines}
m, s = outcomes(merged), outcomes(single)
expected = {json.loads(l)["name"] for l in open(theorems) if l.strip()}
assert set(m) == expected, f"merged covers {sorted(set(m) ^ expected)} wrongly"
bad = [n for n in sorted(expected) if m[n] != s[n]]
proved = sum(1 for r in m.values() if r["proved"])
if bad:
    print(f"DIFFERENT: {bad}")
    sys.exit(1)
print(f"EQUAL: merged {len(m)} theorems (one line each, {proved} proved) == one-machine sweep")
manifest = json.load(open(f"{merged}/manifest.json"))
print("merged manifest runs:", [(r["merged_from"].rsplit("/", 1)[-1], r["host"]["name"]) for r in manifest["runs"]])
PY
