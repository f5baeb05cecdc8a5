#!/usr/bin/env bash
# Installs the pinned local-chain tools (anvil 1.7.1 and solc 0.8.37 from npm, see package.json and
# package-lock.json) into tests/devnet/node_modules. Idempotent: does nothing when the installed
# tree matches the lockfile. Needs only Node/npm.
#
#   bash tests/devnet/install.sh                  install if needed
#   bash tests/devnet/install.sh --print-anvil    install if needed, print the anvil binary's path
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
anvil="$here/node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil"
stamp="$here/node_modules/.ferry-lock.sha256"

lock_hash() { sha256sum "$here/package-lock.json" | cut -d' ' -f1; }

if [ ! -x "$anvil" ] || [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$(lock_hash)" ]; then
    command -v npm >/dev/null || { echo "install.sh: npm is needed to install anvil and solc" >&2; exit 1; }
    echo "installing pinned anvil and solc into tests/devnet/node_modules" >&2
    # A lock file next to the tree keeps parallel callers (test threads, CI jobs) from racing.
    exec 9>"$here/.install.lock"
    flock 9
    if [ ! -x "$anvil" ] || [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$(lock_hash)" ]; then
        (cd "$here" && npm ci --no-audit --no-fund --loglevel=error >&2)
        chmod +x "$anvil"
        lock_hash >"$stamp"
    fi
fi

if [ "${1:-}" = "--print-anvil" ]; then
    echo "$anvil"
else
    echo "anvil: $anvil ($("$anvil" --version | head -1))" >&2
fi
