#!/usr/bin/env bash
# Builds the CapaCloud dev chain spec from the Asset Hub Westend runtime's `local_testnet`
# preset, patched for a standalone dev chain:
#   - staking.devStakers = [0, 0]   (else genesis derives 25,000 staker keys at every start)
#   - sudo = Alice
#   - revive.mappedAccounts = Alice..Ferdie (pallet-revive needs callers mapped to an H160)
# The preset already funds Alice..Ferdie and their //stash accounts with 10^6 WND each.
# Usage: chainspec.sh NODE RUNTIME_WASM OUT_RAW_JSON   (no-op when OUT is up to date)
set -euo pipefail
node=$1 wasm=$2 out=$3
stamp="$out.stamp"
want=$( (sha256sum "$wasm" | cut -d' ' -f1; sha256sum "$0" | cut -d' ' -f1) | sha256sum | cut -d' ' -f1)
if [ -f "$out" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
  echo "[chainspec] $out up to date" >&2
  exit 0
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "[chainspec] generating $out" >&2
"$node" chain-spec-builder -c "$tmp/plain.json" create -t development -n "CapaCloud Dev" -i capacloud-dev \
  --relay-chain westend-local --para-id 1000 --properties tokenSymbol=WND,tokenDecimals=12,ss58Format=42 \
  -r "$wasm" named-preset local_testnet 2>"$tmp/log" || { cat "$tmp/log" >&2; exit 1; }
# Python, not jq: jq 1.6 turns 10^18 balances into floats.
python3 - "$tmp/plain.json" "$tmp/dev.json" <<'PY'
import json, sys
DEV = {  # SS58 (prefix 42) of the sr25519 dev accounts //Alice .. //Ferdie
    "alice": "5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY",
    "bob": "5FHneW46xGXgs5mUiveU4sbTyGBzmstUspZC92UhjJM694ty",
    "charlie": "5FLSigC9HGRKVhB9FiEo4Y3koPsNmBmLJbpXg2mp1hXcS59Y",
    "dave": "5DAAnrj7VHTznn2AWBemMuyBwZWs6FNFjdyVXUeYum3PTXFy",
    "eve": "5HGjWAeFDfFCWPsjFQdVV2Msvz2XtMktvgocEZcCj68kUMaw",
    "ferdie": "5CiPPseXPECbkjWCa6MnjNokrgYjMqmKndv2rSnekmSK2DjL",
}
spec = json.load(open(sys.argv[1]))
patch = spec["genesis"]["runtimeGenesis"]["patch"]
funded = {acc for acc, _ in patch["balances"]["balances"]}
assert set(DEV.values()) <= funded, "local_testnet preset no longer funds the dev accounts"
patch["staking"]["devStakers"] = [0, 0]
patch["sudo"] = {"key": DEV["alice"]}
patch["revive"] = {"mappedAccounts": list(DEV.values())}
json.dump(spec, open(sys.argv[2], "w"))
PY
"$node" chain-spec-builder verify "$tmp/dev.json" 2>"$tmp/log" || { cat "$tmp/log" >&2; exit 1; }
"$node" chain-spec-builder -c "$tmp/raw.json" convert-to-raw "$tmp/dev.json" 2>"$tmp/log" || { cat "$tmp/log" >&2; exit 1; }
mkdir -p "$(dirname "$out")"
mv "$tmp/raw.json" "$out"
echo "$want" >"$stamp"
