#!/usr/bin/env bash
# Starts or stops the local dev chain (polkadot-omni-node, 1 s blocks, instant finality).
#   chain.sh start   -> waits until RPC answers, prints the URL
#   chain.sh stop
# State lives in $CAPACLOUD_HOME/run (wiped at each start: a dev chain starts at genesis).
set -euo pipefail
CAPACLOUD_HOME=${CAPACLOUD_HOME:-$HOME/.capacloud}
PORT=${CAPACLOUD_RPC_PORT:-9944}
node=$CAPACLOUD_HOME/bin/polkadot-omni-node
spec=$CAPACLOUD_HOME/chain/capacloud-dev-raw.json
run=$CAPACLOUD_HOME/run
pidfile=$run/node.pid

running() { [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; }

case "${1:-}" in
start)
  if running; then echo "ws://127.0.0.1:$PORT"; exit 0; fi
  [ -x "$node" ] && [ -f "$spec" ] || { echo "chain not installed: run \`make setup\`" >&2; exit 1; }
  rm -rf "$run" && mkdir -p "$run"
  setsid "$node" --chain "$spec" --base-path "$run/data" --dev --dev-block-time 1000 \
    --state-pruning archive --no-prometheus --no-telemetry --no-mdns \
    --rpc-port "$PORT" --port $((PORT + 20000)) >"$run/node.log" 2>&1 </dev/null &
  echo $! >"$pidfile"
  for _ in $(seq 1 360); do
    if ! running; then echo "node exited; log:" >&2; tail -30 "$run/node.log" >&2; exit 1; fi
    if grep -q "Imported #1" "$run/node.log"; then echo "ws://127.0.0.1:$PORT"; exit 0; fi
    sleep 0.25
  done
  echo "node did not produce a block within 90 s; log: $run/node.log" >&2
  exit 1
  ;;
stop)
  if running; then
    pid=$(cat "$pidfile")
    kill "$pid"
    for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
    kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$pidfile"
  ;;
*)
  echo "usage: $0 start|stop" >&2
  exit 2
  ;;
esac
