#!/usr/bin/env bash
# `make demo` (foundation stage): starts the local chain, deploys the marketplace as
# //Alice, reads its parameters, changes one as admin, shows the decoded event, shows that
# a non-admin is refused without a transaction, and stops the chain (also on Ctrl-C).
set -euo pipefail
cd "$(dirname "$0")/.."
export CAPACLOUD_HOME=${CAPACLOUD_HOME:-$HOME/.capacloud}
export CAPACLOUD_RPC_PORT=${CAPACLOUD_RPC_PORT:-9944}
trap 'scripts/chain.sh stop' EXIT INT TERM

cargo build --quiet --bin capacloud
cli="${CARGO_TARGET_DIR:-target}/debug/capacloud"
code="${CAPACLOUD_CONTRACT_DIR:-${CARGO_TARGET_DIR:-target}/ink}/marketplace.polkavm"

echo "== starting the local chain"
url=$(scripts/chain.sh start)
export CAPACLOUD_URL=$url
echo "   $url"

echo "== deploying the marketplace as //Alice"
addr=$("$cli" --json deploy --code "$code" | python3 -c 'import json,sys; print(json.load(sys.stdin)["deployment"]["address"])')
"$cli" --json params --contract "$addr" >/dev/null
echo "   contract $addr"

echo "== parameters"
"$cli" params --contract "$addr"

echo "== set protocol fee to 1.5% (admin)"
"$cli" set-params --contract "$addr" --protocol-fee-bps 150

echo "== the same as //Bob (not admin): refused by the dry-run, nothing signed"
set +e
"$cli" --suri //Bob set-params --contract "$addr" --protocol-fee-bps 100
rc=$?
set -e
echo "   exit code $rc (2 = refused input)"
[ "$rc" = 2 ]

echo "== parameters after"
"$cli" params --contract "$addr"
