#!/usr/bin/env bash
# Side-by-side measurements for the README's Performance table: our servers
# beside the reference servers, driven by the shared load tools
# (../shared/bench/compare.mjs starts every server once and runs each
# workload against them in turn, A B C A B C ..., and reports medians and each
# server's ratio to the first, which is the reference).
#
# Run from anywhere:  bash bench/compare.sh            (about 30 minutes)
#                     ROUNDS=2 bash bench/compare.sh   (fewer rounds)
#                     ONLY=calc bash bench/compare.sh  (one group: chat, idle, calc, udp)
#                     SRC=. bash bench/compare.sh      (our servers as they are in this folder)
# By default our servers run from a snapshot of the last commit (git archive
# HEAD), so the figures belong to one commit and edits made meanwhile in the
# working tree cannot change a server halfway through a run.
# Needs: deno, node, python3, and the shared bench folder (REFS, default ../shared/bench).
# Writes bench/results/<group>.json (compare.mjs --json-out) and <group>.txt
# (its table); then prints the README rows (bench/compare_table.ts).
set -euo pipefail
cd "$(dirname "$0")/.."

REFS=$(realpath "${REFS:-../shared/bench}")
if [ -z "${SRC:-}" ]; then
  SRC=$(mktemp -d)
  trap 'rm -rf "$SRC"' EXIT
  git archive HEAD | tar -x -C "$SRC"
  git rev-parse --short HEAD > "$SRC/COMMIT"
fi
SRC=$(realpath "$SRC")
ROUNDS=${ROUNDS:-3}
ONLY=${ONLY:-chat idle calc udp}
OUT=bench/results
mkdir -p "$OUT"

# Our servers, exactly as their deno.json tasks run them (`deno task
# chat-server` and so on; not through `deno task` itself, whose process
# would be the one measured); the chat servers may hold the 5000 idle
# clients (each server's default is 4096).
task() { node -p "require('$SRC/deno.json').tasks['$1']"; }
OURS="cd $SRC && exec"
OURS_CHAT="$OURS $(task chat-server) --max-clients 20000 --host 127.0.0.1 --port 0"
OURS_CALC="$OURS $(task calc-server) --host 127.0.0.1 --port 0"
OURS_TIME="$OURS $(task udp-time-server) --host 127.0.0.1 --port 0"
NODE_CHAT="node $REFS/chat_server_node.mjs --max-clients 20000 --host 127.0.0.1 --port 0"
PY_CHAT="python3 $REFS/chat_server.py --max-clients 20000 --host 127.0.0.1 --port 0"

compare() { # compare GROUP ROUNDS compare.mjs-flags...
  local group=$1 rounds=$2
  shift 2
  echo "== $group ($rounds rounds) ==" >&2
  node "$REFS/compare.mjs" --rounds "$rounds" --json-out "$OUT/$group.json" "$@" \
    > "$OUT/$group.full" || echo "compare.mjs failed for $group (exit $?)" >&2
  head -n -1 "$OUT/$group.full" > "$OUT/$group.txt" # its last line is the JSON again
  rm -f "$OUT/$group.full"
  cat "$OUT/$group.txt"
}

for group in $ONLY; do
  case $group in
  chat) # node-b, a second copy of the Node reference, is the control: how far
    # apart one server lands from itself in the same run (the noise floor the
    # README's "same server twice" column shows beside each chat row).
    compare chat "$ROUNDS" \
      --server "node=$NODE_CHAT" --server "ours=$OURS_CHAT" --server "py=$PY_CHAT" \
      --server "node-b=$NODE_CHAT" \
      --workload 'fanout100=loadgen.mjs --clients 100 --senders 10 --messages 500 --size 100 --rate 0' \
      --workload 'fanout1000=loadgen.mjs --clients 1000 --senders 1 --messages 200 --size 100 --rate 0' \
      --workload 'paced=loadgen.mjs --clients 100 --senders 10 --messages 200 --size 100 --rate 20' \
      --workload 'storm=loadgen.mjs --connect-storm 2000 --concurrency 100'
    ;;
  idle) # fresh servers: memory per client is read from a process that did nothing else.
    # Held 20 s: the memory right after the N^2/2 JOINED lines is mostly garbage
    # not yet collected (kib_per_client); kib_per_client_held is what the clients keep.
    # No py: its thread per client makes the JOINED storm take minutes.
    compare idle 2 \
      --server "node=$NODE_CHAT" --server "ours=$OURS_CHAT" \
      --workload 'idle5000=loadgen.mjs --idle 5000 --concurrency 100 --hold 20 --timeout 300'
    ;;
  calc)
    compare calc "$ROUNDS" \
      --server "node=node $REFS/calc_server_node.mjs --host 127.0.0.1 --port 0" \
      --server "ours=$OURS_CALC" \
      --server "py=python3 $REFS/calc_server.py --host 127.0.0.1 --port 0" \
      --workload 'calc-seq=calcload.mjs --clients 50 --requests 1000 --pipeline 1' \
      --workload 'calc-pipe8=calcload.mjs --clients 50 --requests 1000 --pipeline 8'
    ;;
  udp) # the Python reference is the faster one: it goes first
    compare udp "$ROUNDS" \
      --server "py=python3 $REFS/time_server.py --host 127.0.0.1 --port 0" \
      --server "ours=$OURS_TIME" \
      --server "node=node $REFS/time_server_node.mjs --host 127.0.0.1 --port 0" \
      --workload 'udp64=udpload.mjs --window 64 --duration 15'
    ;;
  *)
    echo "unknown group: $group (chat, idle, calc, udp)" >&2
    exit 2
    ;;
  esac
done

{
  echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //')," \
    "$(deno --version | head -1), node $(node --version), $(python3 --version)"
  if [ -f "$SRC/COMMIT" ]; then
    echo "our servers: commit $(cat "$SRC/COMMIT")"
  else
    echo "our servers: $SRC as it was (commit $(git -C "$SRC" rev-parse --short HEAD)," \
      "$(git -C "$SRC" status --porcelain -- chat tcp udp lib | wc -l) files changed since)"
  fi
  echo "finished: $(date -u +%Y-%m-%dT%H:%MZ)"
} | tee "$OUT/machine.txt"
deno fmt --quiet "$OUT" # the JSON as the repository formats it (deno task test checks)
deno run --allow-read bench/compare_table.ts "$OUT"
