#!/usr/bin/env bash
# The demo, on a fresh machine with Rust, Node/npm and Python: brings up a source chain and three
# destination chains (anvil), deploys the test contracts, writes a ferry config for them and checks
# it against the chains with `ferry check-config --online` (and shows what the check says about a
# config with mistakes); then creates escrows and batches on the source, `ferry push` ingests them
# and delivers every batch to all three destinations at once, `ferry watch` keeps up with new ones
# for a few seconds while more keep coming, a JSONL sink gets every event of the source once, and
# `ferry inspect-store deliveries` shows where every batch is on every chain. Then the SEDA path: the test batching API (validators signing with real
# keys), a Prover on each destination, `ferry push` posting every signed batch to all three, a
# validator-set change, and `inspect-store provers` showing each chain's last batch. Everything it
# starts, it stops.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

bash tests/devnet/install.sh >/dev/null
echo "== building ferry"
cargo build --locked --quiet
ferry="$root/target/debug/ferry"
anvil=${FERRY_ANVIL:-$(bash tests/devnet/install.sh --print-anvil)}

work=$(mktemp -d "${TMPDIR:-/tmp}/ferry-demo.XXXXXX")
pids=()
cleanup() {
    # Newest first: the background activity stops before the chains it talks to.
    # Each one stopped before the next: the background activity finishes the call it is making
    # before the chains it talks to go away.
    for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
        kill "${pids[i]}" 2>/dev/null || true
        wait "${pids[i]}" 2>/dev/null || true
    done
    rm -rf "$work"
}
trap cleanup EXIT

start_chain() { # chain_id url_variable: runs in this shell, so that `pids` sees the PID
    # Port 0: the system picks a free port when anvil binds, and anvil says which; probing a port
    # and releasing it first would let another process take it in between.
    local log="$work/anvil-$1.log" port="" tries=0
    # The log exists before anvil starts: the background shell may open it after the first read.
    : >"$log"
    "$anvil" --port 0 --chain-id "$1" >>"$log" 2>&1 &
    pids+=($!)
    while [ -z "$port" ]; do
        port=$(sed -n 's/^Listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$log" | head -n 1)
        tries=$((tries + 1))
        if [ -z "$port" ] && [ "$tries" -gt 200 ]; then
            echo "anvil for chain $1 did not say where it listens:" >&2
            cat "$log" >&2
            exit 1
        fi
        [ -n "$port" ] || sleep 0.1
    done
    node scripts/devnet.mjs wait "http://127.0.0.1:$port"
    printf -v "$2" 'http://127.0.0.1:%s' "$port"
}

echo "== starting four local chains"
start_chain 31337 src_url
start_chain 31338 dst_url
start_chain 31339 dst2_url
start_chain 31340 dst3_url
echo "source       chain 31337 at $src_url"
echo "destinations chains 31338, 31339, 31340 at $dst_url, $dst2_url, $dst3_url"

echo "== deploying the test contracts"
emitter=$(node scripts/devnet.mjs deploy "$src_url" EventEmitter)
factory=$(node scripts/devnet.mjs deploy "$src_url" EscrowFactory)
receiver=$(node scripts/devnet.mjs deploy "$dst_url" BatchReceiver)
receiver2=$(node scripts/devnet.mjs deploy "$dst2_url" BatchReceiver)
receiver3=$(node scripts/devnet.mjs deploy "$dst3_url" BatchReceiver)
echo "EventEmitter $emitter, EscrowFactory $factory (source); a BatchReceiver on each destination"

# anvil's well-known development key #1: funded with 10,000 ETH on every anvil chain.
export DEMO_SIGNER_KEY=0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d

write_config() { # file dst_chain_id receiver_address key_env
    cat >"$1" <<EOF
chains:
  source:
    chain_id: 31337
    rpc: [$src_url]
    confirmations: 0
    poll_interval: 500ms
  destination:
    chain_id: $2
    rpc: [$dst_url]
    signer: { key_env: $4 }
    confirmations: 1
    poll_interval: 500ms
    min_balance: 1
    gas: { max_fee_gwei: 100 }
  destination-2:
    chain_id: 31339
    rpc: [$dst2_url]
    confirmations: 1
    poll_interval: 500ms
    signer: { key_env: $4 }
    gas: { max_fee_gwei: 100 }
  destination-3:
    chain_id: 31340
    rpc: [$dst3_url]
    confirmations: 1
    poll_interval: 500ms
    signer: { key_env: $4 }
    gas: { max_fee_gwei: 100 }

sources:
  escrows:
    kind: evm
    chain: source
    contracts:
      - name: emitter
        address: "$emitter"
        events:
          - event BatchReady(uint64 indexed height, bytes32 root)
    factories:
      - name: escrow-factory
        address: "$factory"
        event: event EscrowDeployed(address indexed escrow, address indexed buyer, address indexed seller, uint256 amount)
        child_param: escrow
        child_events:
          - event Approved(address indexed by)
          - event EscrowReleased(address indexed to, uint256 amount)
          - event EscrowRefunded(address indexed to, uint256 amount)

targets:
  receiver:
    kind: evm-call
    function: function postBatch(uint64 height, bytes32 root)
    args:
      height: { field: height }
      root: { field: root }
    chains:
      destination: "$3"
      destination-2: "$receiver2"
      destination-3: "$receiver3"
    already_done:
      view: function lastBatchHeight() view returns (uint64)
      compare: ">= height"
      revert_errors: [error BatchAlreadyExists(uint64 height)]
  archive:
    kind: jsonl
    path: events.jsonl

routes:
  - source: escrows
    targets: [receiver]
    events: [BatchReady]
  - source: escrows
    targets: [archive]
EOF
}

write_config "$work/ferry.yaml" 31338 "$receiver" DEMO_SIGNER_KEY
echo
echo "== ferry check-config --online (a sound config)"
"$ferry" check-config --online -c "$work/ferry.yaml" --color never

# The same config with three mistakes: the destination's second RPC URL serves another chain,
# the receiver address has no code, and the signer is a fresh key that holds no ether.
export DEMO_EMPTY_KEY=0x$(python3 -c 'import secrets; print(secrets.token_hex(32))')
write_config "$work/broken.yaml" 31338 0x000000000000000000000000000000000000dEaD DEMO_EMPTY_KEY
sed -i "s|rpc: \[$dst_url\]|rpc: [$dst_url, $src_url]|" "$work/broken.yaml"
echo
echo "== ferry check-config --online (an RPC of the wrong chain, no code at the receiver, unfunded signer)"
set +e
"$ferry" check-config --online -c "$work/broken.yaml" --color never
code=$?
set -e
echo "exit code $code (2 = the config does not match the chains)"
[ "$code" -eq 2 ]

call() { node "$root/scripts/devnet.mjs" call "$src_url" "$@" >/dev/null; }
seller=0x00000000000000000000000000000000005e11e7

echo
echo "== escrows and batches on the source chain"
call EscrowFactory "$factory" 'createEscrows(uint256)' 25
for i in 1 2 3; do call EscrowFactory "$factory" 'createAndApprove(address,uint256)' "$seller" "$i"; done
call EventEmitter "$emitter" 'emitBatches(uint64,uint64)' 1 5
cd "$work"
echo
echo "== ferry push: ingest the source up to its safe head, deliver every batch to the three destinations"
"$ferry" push --timeout 2m --color never

# More escrows, approvals and batches while ferry follows the chain: a new block every ~half second.
activity() {
    trap 'exit 0' TERM
    local n=100
    while true; do
        call EscrowFactory "$factory" 'createAndApprove(address,uint256)' "$seller" "$n"
        call EventEmitter "$emitter" 'emitBatches(uint64,uint64)' "$n" 2
        n=$((n + 1))
        sleep 0.3
    done
}
activity &
pids+=($!)
echo
echo "== ferry watch, for 10 seconds, while escrows and batches keep coming: it ingests and delivers"
echo "   (then SIGTERM: exit 130 after a clean stop)"
set +e
"$ferry" watch --color never &
watch_pid=$!
sleep 10
kill -TERM "$watch_pid"
wait "$watch_pid"
code=$?
set -e
echo "ferry watch exit code $code"
[ "$code" -eq 130 ]

echo
echo "== ferry inspect-store"
"$ferry" inspect-store --color never
echo "== ferry inspect-store events --chain source --event BatchReady --limit 5"
"$ferry" inspect-store events --chain source --event BatchReady --limit 5 --color never
echo "== ferry inspect-store deliveries --matrix: which batch reached which chain"
"$ferry" inspect-store deliveries --matrix --limit 12 --color never
echo "== ferry inspect-store txs --limit 6"
"$ferry" inspect-store txs --limit 6 --color never
echo "== the JSONL sink: every event of the source once, one JSON line each (the first one here)"
echo "events.jsonl: $(wc -l <"$work/events.jsonl") lines"
head -1 "$work/events.jsonl"
echo "== the receivers' own count of posted batches, read from each destination chain"
for pair in "destination $dst_url $receiver" "destination-2 $dst2_url $receiver2" "destination-3 $dst3_url $receiver3"; do
    read -r name url address <<<"$pair"
    echo "$name: postedCount() = $(node "$root/scripts/devnet.mjs" view "$url" BatchReceiver "$address" 'postedCount()')"
done

echo
echo "== SEDA: a batching API with 10 validators signing with real keys, and a Prover on each destination"
cd "$root"
cargo build --locked --quiet --example seda-devnet
"$root/target/debug/examples/seda-devnet" serve --validators 10 --batches 20 >"$work/seda.out" 2>"$work/seda.err" &
pids+=($!)
for _ in $(seq 1 200); do
    [ -s "$work/seda.out" ] && break
    sleep 0.1
done
[ -s "$work/seda.out" ] || { echo "the SEDA test API did not start:" >&2; cat "$work/seda.err" >&2; exit 1; }
seda_url=$(python3 -c 'import json, sys; print(json.loads(open(sys.argv[1]).readline())["url"])' "$work/seda.out")
# The Prover is deployed with batch 0 (its first validator set) and a max batch age of 10,000:
# constructor(Batch(batchHeight, blockHeight, validatorsRoot, resultsRoot, provingMetadata), maxBatchAge),
# ABI-encoded as six words. Batch 0 has no proving metadata: its hash is 32 zero bytes.
prover_args=$(python3 -c '
import json, sys
b = json.loads(open(sys.argv[1]).readline())["genesis"]["batch"]
assert not b.get("proving_metadata"), "the demo deploys a batch without proving metadata"
words = [int(b["batch_number"]), int(b["block_height"]), int(b["validator_root"], 16), int(b["data_result_root"], 16), 0, 10000]
print("".join(format(w, "064x") for w in words))
' "$work/seda.out")
dst_urls=("$dst_url" "$dst2_url" "$dst3_url")
provers=()
for url in "${dst_urls[@]}"; do
    provers+=("$(node scripts/devnet.mjs deploy "$url" SedaProver "$prover_args")")
done
echo "batching API at $seda_url (batches 0..20 signed); a SedaProver on each destination: ${provers[*]}"
{
    echo "store: seda.redb"
    echo "chains:"
    for i in 0 1 2; do
        name=destination$([ "$i" -eq 0 ] || echo "-$((i + 1))")
        echo "  $name: { chain_id: $((31338 + i)), rpc: [${dst_urls[i]}], confirmations: 1, poll_interval: 500ms, signer: { key_env: DEMO_SIGNER_KEY } }"
    done
    echo "sources:"
    echo "  seda: { kind: seda, url: $seda_url, start_batch: 1, poll_interval: 500ms }"
    echo "targets:"
    echo "  provers:"
    echo "    kind: seda-prover"
    echo "    chains:"
    echo "      destination: { prover: \"${provers[0]}\" }"
    echo "      destination-2: { prover: \"${provers[1]}\" }"
    echo "      destination-3: { prover: \"${provers[2]}\" }"
    echo "routes:"
    echo "  - { source: seda, targets: [provers] }"
} >"$work/seda.yaml"
control() { # POST a control route of the test API
    python3 -c 'import sys, urllib.request; urllib.request.urlopen(urllib.request.Request(sys.argv[1], method="POST")).read()' "$seda_url/control/$1"
}
cd "$work"
echo "== ferry push -c seda.yaml: fetch and check every signed batch, post each to the three Provers"
"$ferry" push -c seda.yaml --timeout 2m --color never
echo
echo "== a validator-set change: 4 validators get new keys and the powers change; 10 more batches"
control "rotate_keys?k=4"
control "set_powers?powers=20000000,15000000,15000000,10000000,10000000,10000000,5000000,5000000,5000000,5000000"
control "produce?n=10"
echo "== ferry push -c seda.yaml: the Provers follow the new validator set"
"$ferry" push -c seda.yaml --timeout 2m --color never
echo "== ferry inspect-store provers: each destination's last batch"
"$ferry" inspect-store provers -c seda.yaml --color never
echo "== each Prover's own last batch height, read from its chain"
for i in 0 1 2; do
    height=$(node "$root/scripts/devnet.mjs" view "${dst_urls[i]}" SedaProver "${provers[i]}" 'getLastBatchHeight()')
    echo "SedaProver ${provers[i]} on chain $((31338 + i)): getLastBatchHeight() = $height"
    [ "$height" -eq 30 ]
done

echo
echo "demo done; the chains are stopped."
