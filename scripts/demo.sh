#!/usr/bin/env bash
# `make demo`: a local market end to end, every party with its own disk and HTTP endpoint as
# if on separate machines. Starts the chain, deploys the marketplace, starts a renter's blob
# server and three provider workers (Bob, Charlie, and Eve who cheats), and as renter Dave
# submits a Mandelbrot image as 4 strips (direct hire, every strip checked, one PNG out), an auctioned matmul job
# (Eve underbids everyone, gets checked, is slashed) and a batch of 16 SHA-256 tasks
# (Charlie, a sample of them re-executed). The market indexer follows it all and serves its
# dashboard. Ends with the market's summary and stops everything it started, also on Ctrl-C;
# with KEEP=1 it keeps the market and the dashboard running until Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."
export CAPACLOUD_HOME=${CAPACLOUD_HOME:-$HOME/.capacloud}
export CAPACLOUD_RPC_PORT=${CAPACLOUD_RPC_PORT:-9944}
port_base=${CAPACLOUD_DEMO_PORT:-8700}
target=${CARGO_TARGET_DIR:-target}
work=$(mktemp -d -t capacloud-demo-XXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  scripts/chain.sh stop
}
trap cleanup EXIT
trap 'exit 130' INT TERM

cargo build --quiet --bin capacloud --bin capacloud-worker --bin capacloud-indexer
cli="$target/debug/capacloud"
worker="$target/debug/capacloud-worker"
code="${CAPACLOUD_CONTRACT_DIR:-$target/ink}/marketplace.polkavm"
json() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }
wait_http() { for _ in $(seq 1 240); do curl -sf "$1/healthz" >/dev/null && return 0; sleep 0.5; done; echo "$1 did not answer" >&2; return 1; }
height() {
  curl -sf -H 'Content-Type: application/json' -d '{"id":1,"jsonrpc":"2.0","method":"chain_getHeader","params":[]}' \
    "http://127.0.0.1:$CAPACLOUD_RPC_PORT" | json 'int(d["result"]["number"], 16)'
}
# Stake bonded in one epoch is drawn from the next (the draw reads the epoch's snapshot).
EPOCH=200
wait_next_epoch() {
  local target=$(( ($(height) / EPOCH + 1) * EPOCH ))
  echo "   waiting for block $target (next stake epoch) so the new providers can be drawn as verifiers"
  while [ "$(height)" -lt "$target" ]; do sleep 1; done
}

echo "== starting the local chain"
export CAPACLOUD_URL=$(scripts/chain.sh start)
echo "   $CAPACLOUD_URL"
echo "== deploying the marketplace as //Alice"
# Short windows for a local demo: 200-block stake epochs (they bound a job's compute window,
# here to 20 blocks), 6-block accept, bid and reveal windows, changes applying at once.
export CAPACLOUD_CONTRACT=$("$cli" --suri //Alice --json deploy --code "$code" --epoch-blocks $EPOCH --params-delay 0 \
  --accept-window 6 --bid-window 6 --reveal-window 6 | json 'd["deployment"]["address"]')
echo "   contract $CAPACLOUD_CONTRACT"

indexer_url="http://127.0.0.1:$((port_base + 9))"
echo "== the market indexer (SQLite in $work) with its API and dashboard on $indexer_url/"
"$target/debug/capacloud-indexer" --database-url "sqlite://$work/indexer.sqlite" run --contract "$CAPACLOUD_CONTRACT" \
  --listen "127.0.0.1:$((port_base + 9))" >"$work/indexer.out" 2>"$work/indexer.log" & pids+=($!)
for _ in $(seq 1 240); do curl -sf "$indexer_url/health" >/dev/null && break; sleep 0.5; done

echo "== Dave's blob server (specs and inputs) on :$port_base, taking uploads signed by Dave only"
"$cli" --suri //Dave blobs serve --dir "$work/dave-blobs" --listen "127.0.0.1:$port_base" 2>"$work/dave-blobs.log" & pids+=($!)
wait_http "http://127.0.0.1:$port_base"
export CAPACLOUD_BLOBS="http://127.0.0.1:$port_base"

echo "== starting three providers, each with its own data dir and endpoint (logs in $work)"
PRICE_BOB=1000000000000000   # 0.001 WND per work unit
start_worker() { # name suri port price [flags...]
  local name=$1 suri=$2 port=$3 price=$4; shift 4
  "$worker" --suri "$suri" --price "$price" --data-dir "$work/$name" --listen "127.0.0.1:$port" \
    --poll-secs 2 "$@" >"$work/$name.out" 2>"$work/$name.log" & pids+=($!)
}
start_worker bob //Bob $((port_base + 1)) $PRICE_BOB
start_worker charlie //Charlie $((port_base + 2)) 800000000000000 --withdraw-above-wnd 0.0001
start_worker eve //Eve $((port_base + 3)) 500000000000000 --cheat
for _ in $(seq 1 240); do
  n=$("$cli" --json offers | json 'len(d["offers"])')
  [ "$n" = 3 ] && break
  sleep 0.5
done
"$cli" offers
offer_of() { "$cli" --json offers | json "[o['offer_id'] for o in d['offers'] if o['provider']=='$1'][0]"; }
bob_offer=$(offer_of 0x41dccbd49b26c50d34355ed86ff0fa9e489d1e01)
charlie_offer=$(offer_of 0xe2235a2ffe0354b27a6a1c543be6bf2920ff2134)
wait_next_epoch

export CAPACLOUD_SURI=//Dave
echo "== //Dave: Mandelbrot 700x500 as a batch of 4 strips, direct hire of Bob, every strip checked"
"$cli" job submit --workload mandelbrot --size 700 --tasks 4 --offer "$bob_offer" \
  --max-price $PRICE_BOB --check-rate-bps 10000 --png mandelbrot.png
echo "== //Dave: matmul 256, auctioned (lowest bid wins), always checked"
"$cli" job submit --workload matmul --size 256 --max-price $PRICE_BOB --check-rate-bps 10000
echo "== //Dave: a batch of 16 SHA-256 tasks (4096 messages each), direct hire of Charlie, 25% of tasks checked"
"$cli" job submit --workload sha256 --size 4096 --tasks 16 --offer "$charlie_offer" --max-price $PRICE_BOB \
  --check-rate-bps 2500 --out "$work/sha256-outputs"

echo
echo "== summary"
"$cli" summary
echo
echo "== Bob's metrics (http://127.0.0.1:$((port_base + 1))/metrics)"
curl -sf "http://127.0.0.1:$((port_base + 1))/metrics" | grep -E '^capacloud_worker_(steps|jobs_finished|gpu_seconds)' || true
echo "== withdrawals (Charlie withdraws by himself above 0.0001 WND)"
for who in Bob Eve Dave; do
  out=$("$cli" --json --suri //$who withdraw 2>/dev/null || true)
  amount=$(echo "$out" | json 'd.get("amount", 0)' 2>/dev/null || echo 0)
  printf "   %-8s withdrew %s WND\n" "$who" "$(python3 -c "print(f'{$amount/1e18:.6f}')")"
done
sleep 3 # Charlie's worker withdraws on its next pass after his last payout
printf "   %-8s withdrew %s WND by himself (his /metrics: capacloud_worker_withdrawn_wnd_total)\n" Charlie \
  "$(curl -sf "http://127.0.0.1:$((port_base + 2))/metrics" | awk '/^capacloud_worker_withdrawn_wnd_total/ {printf "%.6f", $2}')"
echo "   Mandelbrot image: $(pwd)/mandelbrot.png"
echo "== the indexer's view (it followed every block): $indexer_url/api/stats"
for _ in $(seq 1 60); do curl -sf "$indexer_url/ready" >/dev/null && break; sleep 0.5; done
curl -sf "$indexer_url/api/stats" | python3 -m json.tool
"$cli" --indexer "$indexer_url" offers
echo "   dashboard: $indexer_url/"
if [ "${KEEP:-}" = 1 ]; then
  echo "== KEEP=1: the chain, providers and indexer keep running; open $indexer_url/ (Ctrl-C stops everything)"
  wait
fi
