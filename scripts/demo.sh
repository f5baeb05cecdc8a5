#!/usr/bin/env bash
# The demo, on a fresh machine with Rust, Node/npm and Python: brings up two local chains (anvil),
# deploys the test contracts, writes a ferry config for them and checks it against the chains with
# `ferry check-config --online`; then shows what the same check says about a config with mistakes.
# Later capabilities (ingest, delivery) extend this script. Everything it starts, it stops.
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
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

start_chain() { # chain_id url_variable: runs in this shell, so that `pids` sees the PID
    local port
    port=$(free_port)
    "$anvil" --port "$port" --chain-id "$1" --silent >"$work/anvil-$1.log" 2>&1 &
    pids+=($!)
    node scripts/devnet.mjs wait "http://127.0.0.1:$port"
    printf -v "$2" 'http://127.0.0.1:%s' "$port"
}

echo "== starting two local chains"
start_chain 31337 src_url
start_chain 31338 dst_url
echo "source      chain 31337 at $src_url"
echo "destination chain 31338 at $dst_url"

echo "== deploying the test contracts"
emitter=$(node scripts/devnet.mjs deploy "$src_url" EventEmitter)
factory=$(node scripts/devnet.mjs deploy "$src_url" EscrowFactory)
receiver=$(node scripts/devnet.mjs deploy "$dst_url" BatchReceiver)
echo "EventEmitter $emitter, EscrowFactory $factory (source); BatchReceiver $receiver (destination)"

# anvil's well-known development key #1: funded with 10,000 ETH on every anvil chain.
export DEMO_SIGNER_KEY=0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d

write_config() { # file dst_chain_id receiver_address key_env
    cat >"$1" <<EOF
chains:
  source:
    chain_id: 31337
    rpc: [$src_url]
    confirmations: 2
    poll_interval: 1s
  destination:
    chain_id: $2
    rpc: [$dst_url]
    signer: { key_env: $4 }
    min_balance: 1
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
      - address: "$factory"
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
    already_done:
      view: function lastBatchHeight() view returns (uint64)
      compare: ">= height"
      revert_errors: [error BatchAlreadyExists(uint64 height)]
  archive:
    kind: jsonl
    path: items.jsonl

routes:
  - source: escrows
    targets: [receiver, archive]
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
echo
echo "demo done; the chains are stopped."
