#!/usr/bin/env bash
# `make demo`: a local market end to end. Starts the chain, deploys the marketplace, starts
# three provider workers (Bob, Charlie, and Eve who cheats), and as renter Dave submits a
# Mandelbrot job (direct hire, always checked, PNG out), an auctioned matmul job (Eve
# underbids everyone, gets checked, is slashed) and a SHA-256 batch (Charlie). Ends with a summary
# and stops everything it started, also on Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."
export CAPACLOUD_HOME=${CAPACLOUD_HOME:-$HOME/.capacloud}
export CAPACLOUD_RPC_PORT=${CAPACLOUD_RPC_PORT:-9944}
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

cargo build --quiet --bin capacloud --bin capacloud-worker
cli="$target/debug/capacloud"
worker="$target/debug/capacloud-worker"
code="${CAPACLOUD_CONTRACT_DIR:-$target/ink}/marketplace.polkavm"
json() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }

echo "== starting the local chain"
export CAPACLOUD_URL=$(scripts/chain.sh start)
echo "   $CAPACLOUD_URL"
echo "== deploying the marketplace as //Alice"
export CAPACLOUD_CONTRACT=$("$cli" --json deploy --code "$code" | json 'd["deployment"]["address"]')
export CAPACLOUD_BLOBS="$work/blobs"
echo "   contract $CAPACLOUD_CONTRACT"
"$cli" set-params --accept-window 6 --bid-window 6 --reveal-window 10 >/dev/null

echo "== starting three providers (logs in $work)"
PRICE_BOB=1000000000000000   # 0.001 WND per work unit
"$worker" --suri //Bob --price $PRICE_BOB >"$work/bob.out" 2>"$work/bob.log" & pids+=($!)
"$worker" --suri //Charlie --price 800000000000000 >"$work/charlie.out" 2>"$work/charlie.log" & pids+=($!)
"$worker" --suri //Eve --price 500000000000000 --cheat >"$work/eve.out" 2>"$work/eve.log" & pids+=($!)
for _ in $(seq 1 240); do
  n=$("$cli" --json offers | json 'len(d["offers"])')
  [ "$n" = 3 ] && break
  sleep 0.5
done
"$cli" offers
offer_of() { "$cli" --json offers | json "[o['offer_id'] for o in d['offers'] if o['provider']=='$1'][0]"; }
bob_offer=$(offer_of 0x41dccbd49b26c50d34355ed86ff0fa9e489d1e01)
charlie_offer=$(offer_of 0xe2235a2ffe0354b27a6a1c543be6bf2920ff2134)

echo "== //Dave: Mandelbrot 700x500, direct hire of Bob, always checked"
"$cli" --suri //Dave job submit --workload mandelbrot --size 700 --offer "$bob_offer" \
  --max-price $PRICE_BOB --check-rate-bps 10000 --png mandelbrot.png
echo "== //Dave: matmul 256, auctioned (lowest bid wins), always checked"
"$cli" --suri //Dave job submit --workload matmul --size 256 --max-price $PRICE_BOB --check-rate-bps 10000
echo "== //Dave: SHA-256 of 65536 messages, direct hire of Charlie, default 10% check rate"
"$cli" --suri //Dave job submit --workload sha256 --size 65536 --offer "$charlie_offer" --max-price $PRICE_BOB

echo
echo "== summary: jobs"
"$cli" job list
echo "== summary: providers' offers and reputation"
"$cli" offers
echo "== summary: payouts"
for who in Bob Charlie Eve Dave; do
  out=$("$cli" --json --suri //$who withdraw 2>/dev/null || true)
  amount=$(echo "$out" | json 'd.get("amount", 0)' 2>/dev/null || echo 0)
  printf "   %-8s withdrew %s contract units\n" "$who" "$amount"
done
echo "   Mandelbrot image: $(pwd)/mandelbrot.png"
