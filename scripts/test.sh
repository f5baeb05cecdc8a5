#!/usr/bin/env bash
# The whole test suite, on a fresh machine with only Rust, Node/npm and Python: installs the pinned
# local-chain tools (anvil, solc from npm) into tests/devnet/node_modules, then runs every test.
# Extra arguments go to `cargo test` (e.g. `scripts/test.sh --test it store`).
set -euo pipefail
cd "$(dirname "$0")/.."

bash tests/devnet/install.sh
cargo test --locked --all-targets "$@"
