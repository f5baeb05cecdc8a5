# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_ferry_global_optspecs
    string join \n c/config= store= log-format= v/verbose q/quiet color= json h/help V/version
end

function __fish_ferry_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_ferry_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_ferry_using_subcommand
    set -l cmd (__fish_ferry_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c ferry -n "__fish_ferry_needs_command" -s c -l config -d 'Config file' -r -F
complete -c ferry -n "__fish_ferry_needs_command" -l store -d 'State file; overrides `store:` in the config' -r -F
complete -c ferry -n "__fish_ferry_needs_command" -l log-format -d 'Log format on stderr' -r -f -a "text\t''
json\t''"
complete -c ferry -n "__fish_ferry_needs_command" -l color -d 'When to use colour' -r -f -a "auto\t''
always\t''
never\t''"
complete -c ferry -n "__fish_ferry_needs_command" -s v -l verbose -d 'More log output (-v debug, -vv trace)'
complete -c ferry -n "__fish_ferry_needs_command" -s q -l quiet -d 'Less log output (-q warnings only, -qq errors only)'
complete -c ferry -n "__fish_ferry_needs_command" -l json -d 'Print results as JSON on stdout (logs stay on stderr)'
complete -c ferry -n "__fish_ferry_needs_command" -s h -l help -d 'Print help'
complete -c ferry -n "__fish_ferry_needs_command" -s V -l version -d 'Print version'
complete -c ferry -n "__fish_ferry_needs_command" -f -a "watch" -d 'Run as a daemon: follow every source and deliver to every target until stopped'
complete -c ferry -n "__fish_ferry_needs_command" -f -a "push" -d 'One-shot for cron: sync sources, deliver everything pending, wait for confirmations'
complete -c ferry -n "__fish_ferry_needs_command" -f -a "backfill" -d 'Ingest a historical range of blocks, resumably; deliver only with --deliver'
complete -c ferry -n "__fish_ferry_needs_command" -f -a "inspect-store" -d 'Show what the state file holds (read-only; works while `watch` runs)'
complete -c ferry -n "__fish_ferry_needs_command" -f -a "export" -d 'Export events, contracts, deliveries, transactions or SEDA batches as JSON lines or CSV, or raw tables as JSON lines (read-only; works while `watch` runs)'
complete -c ferry -n "__fish_ferry_needs_command" -f -a "migrate" -d 'Upgrade the state file to this ferry\'s schema (backup first, one transaction)'
complete -c ferry -n "__fish_ferry_needs_command" -f -a "check-config" -d 'Check the config: offline by default, against the chains with --online'
complete -c ferry -n "__fish_ferry_needs_command" -f -a "completions" -d 'Print shell completions to stdout'
complete -c ferry -n "__fish_ferry_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c ferry -n "__fish_ferry_using_subcommand watch" -l stop-timeout -d 'After SIGINT/SIGTERM (or on a reload), stop within this long: sources finish their range and workers their round until then; what still runs after it is dropped (exit 130)' -r
complete -c ferry -n "__fish_ferry_using_subcommand watch" -l metrics-addr -d 'Serve Prometheus /metrics, /healthz and /readyz on this address (host:port); overrides `health.metrics_addr`' -r
complete -c ferry -n "__fish_ferry_using_subcommand watch" -s c -l config -d 'Config file' -r -F
complete -c ferry -n "__fish_ferry_using_subcommand watch" -l store -d 'State file; overrides `store:` in the config' -r -F
complete -c ferry -n "__fish_ferry_using_subcommand watch" -l log-format -d 'Log format on stderr' -r -f -a "text\t''
json\t''"
complete -c ferry -n "__fish_ferry_using_subcommand watch" -l color -d 'When to use colour' -r -f -a "auto\t''
always\t''
never\t''"
complete -c ferry -n "__fish_ferry_using_subcommand watch" -s v -l verbose -d 'More log output (-v debug, -vv trace)'
complete -c ferry -n "__fish_ferry_using_subcommand watch" -s q -l quiet -d 'Less log output (-q warnings only, -qq errors only)'
complete -c ferry -n "__fish_ferry_using_subcommand watch" -l json -d 'Print results as JSON on stdout (logs stay on stderr)'
complete -c ferry -n "__fish_ferry_using_subcommand watch" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c ferry -n "__fish_ferry_using_subcommand push" -l timeout -d 'A deadline for the whole command, sync included (exit 4 if work is left)' -r
complete -c ferry -n "__fish_ferry_using_subcommand push" -l target -d 'Only deliveries to this target (repeatable)' -r
complete -c ferry -n "__fish_ferry_using_subcommand push" -l chain -d 'Only deliveries to this chain (repeatable)' -r
complete -c ferry -n "__fish_ferry_using_subcommand push" -l limit -d 'At most this many deliveries' -r
complete -c ferry -n "__fish_ferry_using_subcommand push" -l stop-timeout -d 'After SIGINT/SIGTERM, stop within this long; what still waits then is dropped (exit 130)' -r
complete -c ferry -n "__fish_ferry_using_subcommand push" -s c -l config -d 'Config file' -r -F
complete -c ferry -n "__fish_ferry_using_subcommand push" -l store -d 'State file; overrides `store:` in the config' -r -F
complete -c ferry -n "__fish_ferry_using_subcommand push" -l log-format -d 'Log format on stderr' -r -f -a "text\t''
json\t''"
complete -c ferry -n "__fish_ferry_using_subcommand push" -l color -d 'When to use colour' -r -f -a "auto\t''
always\t''
never\t''"
complete -c ferry -n "__fish_ferry_using_subcommand push" -l no-sync -d 'Skip ingesting sources first; deliver only what the store holds'
complete -c ferry -n "__fish_ferry_using_subcommand push" -l dry-run -d 'Simulate every delivery and print what would be sent; send nothing'
complete -c ferry -n "__fish_ferry_using_subcommand push" -s v -l verbose -d 'More log output (-v debug, -vv trace)'
complete -c ferry -n "__fish_ferry_using_subcommand push" -s q -l quiet -d 'Less log output (-q warnings only, -qq errors only)'
complete -c ferry -n "__fish_ferry_using_subcommand push" -l json -d 'Print results as JSON on stdout (logs stay on stderr)'
complete -c ferry -n "__fish_ferry_using_subcommand push" -s h -l help -d 'Print help'
complete -c ferry -n "__fish_ferry_using_subcommand backfill" -l source -d 'Only this source (repeatable); all sources when absent' -r
complete -c ferry -n "__fish_ferry_using_subcommand backfill" -l from -d 'First block of the range' -r
complete -c ferry -n "__fish_ferry_using_subcommand backfill" -l to -d 'Last block of the range: a number, `safe` or `latest`' -r
complete -c ferry -n "__fish_ferry_using_subcommand backfill" -s c -l config -d 'Config file' -r -F
complete -c ferry -n "__fish_ferry_using_subcommand backfill" -l store -d 'State file; overrides `store:` in the config' -r -F
complete -c ferry -n "__fish_ferry_using_subcommand backfill" -l log-format -d 'Log format on stderr' -r -f -a "text\t''
json\t''"
complete -c ferry -n "__fish_ferry_using_subcommand backfill" -l color -d 'When to use colour' -r -f -a "auto\t''
always\t''
never\t''"
complete -c ferry -n "__fish_ferry_using_subcommand backfill" -l deliver -d 'Also deliver the items found to their routes\' targets'
complete -c ferry -n "__fish_ferry_using_subcommand backfill" -s v -l verbose -d 'More log output (-v debug, -vv trace)'
complete -c ferry -n "__fish_ferry_using_subcommand backfill" -s q -l quiet -d 'Less log output (-q warnings only, -qq errors only)'
complete -c ferry -n "__fish_ferry_using_subcommand backfill" -l json -d 'Print results as JSON on stdout (logs stay on stderr)'
complete -c ferry -n "__fish_ferry_using_subcommand backfill" -s h -l help -d 'Print help'
complete -c ferry -n "__fish_ferry_using_subcommand inspect-store; and not __fish_seen_subcommand_from summary cursors contracts events reorgs deliveries txs batches provers retry skip cancel resync manage help" -s c -l config -d 'Config file' -r -F
complete -c ferry -n "__fish_ferry_using_subcommand inspect-store; and not __fish_seen_subcommand_from summary cursors contracts events reorgs deliveries txs batches provers retry skip cancel resync manage help" -l store -d 'State file; overrides `store:` in the config' -r -F
complete -c ferry -n "__fish_ferry_using_subcommand inspect-store; and not __fish_seen_subcommand_from summary cursors contracts events reorgs deliveries txs batches provers retry skip cancel resync manage help" -l log-format -d 'Log format on stderr' -r -f -a "text\t''
json\t''"
complete -c ferry -n "__fish_ferry_using_subcommand inspect-store; and not __fish_seen_subcommand_from summary cursors contracts events reorgs deliveries txs batches provers retry skip cancel resync manage help" -l color -d 'When to use colour' -r -f -a "auto\t''
always\t''
never\t''"
complete -c ferry -n "__fish_ferry_using_subcommand inspect-store; and not __fish_seen_subcommand_from summary cursors contracts events reorgs deliveries txs batches provers retry skip cancel resync manage help" -s v -l verbose -d 'More log output (-v debug, -vv trace)'
complete -c ferry -n "__fish_ferry_using_subcommand inspect-store; and not __fish_seen_subcommand_from summary cursors contracts events reorgs deliveries txs batches provers retry skip cancel resync manage help" -s q -l quiet -d 'Less log output (-q warnings only, -qq errors only)'
complete -c ferry -n "__fish_ferry_using_subcommand inspect-store; and not __fish_seen_subcommand_from summary cursors contracts events reorgs deliveries txs batches provers retry skip cancel resync manage help" -l json -d 'Print results as JSON on stdout (logs stay on stderr)'
complete -c ferry -n "__fish_ferry_using_subcommand inspect-store; and not __fish_seen_subcommand_from summary cursors contracts events reorgs deliveries txs batches provers retry skip cancel resync manage help" -s h -l help -d 'Print help'
complete -c ferry -n "__fish_ferry_using_subcommand inspect-store; and not __fish_seen_subcommand_from summary cursors contracts events reorgs deliveries txs batches provers retry skip cancel resync manage help" -f -a "summary" -d 'Schema version, file size, rows per table and source cursors (the default)'
complete -c ferry -n "__fish_ferry_using_subcommand inspect-store; and not __fish_seen_subcommand_from summary cursors contracts events reorgs deliveries txs batches provers retry skip cancel resync manage help" -f -a "cursors" -d 'Where each source stands: the range of blocks it holds'
complete -c ferry -n "__fish_ferry_using_subcommand inspect-store; and not __fish_seen_subcommand_from summary cursors contracts events reorgs deliveries txs batches provers retry skip cancel resync manage help" -f -a "contracts" -d 'Watched contracts: configured ones and factory children'
complete -c ferry -n "__fish_ferry_using_subcommand inspect-store; and not __fish_seen_subcommand_from summary cursors contracts events reorgs deliveries txs batches provers retry skip cancel resync manage help" -f -a "events" -d 'Ingested events, newest filters first: chain, address, event name, block range'
complete -c ferry -n "__fish_ferry_using_subcommand inspect-store; and not __fish_seen_subcommand_from summary cursors contracts events reorgs deliveries txs batches provers retry skip cancel resync manage help" -f -a "reorgs" -d 'Reorgs seen under `confirmations: 0` (or deeper than the confirmations), and what they undid'
complete -c ferry -n "__fish_ferry_using_subcommand inspect-store; and not __fish_seen_subcommand_from summary cursors contracts events reorgs deliveries txs batches provers retry skip cancel resync manage help" -f -a "deliveries" -d 'Deliveries: one row per (target, destination chain, item), with the id to pass to `ferry inspect-store retry`'
complete -c ferry -n "__fish_ferry_using_subcommand inspect-store; and not __fish_seen_subcommand_from summary cursors contracts events reorgs deliveries txs batches provers retry skip cancel resync manage help" -f -a "txs" -d 'Transaction intents: each nonce ferry signed, per chain and signer, newest nonces last'
complete -c ferry -n "__fish_ferry_using_subcommand inspect-store; and not __fish_seen_subcommand_from summary cursors contracts events reorgs deliveries txs batches provers retry skip cancel resync manage help" -f -a "batches" -d 'Stored SEDA batches: one row per batch, the newest kept by `--limit`'
complete -c ferry -n "__fish_ferry_using_subcommand inspect-store; and not __fish_seen_subcommand_from summary cursors contracts events reorgs deliveries txs batches provers retry skip cancel resync manage help" -f -a "provers" -d 'What each `seda-prover` destination\'s Prover last said, and how far it is behind'
complete -c ferry -n "__fish_ferry_using_subcommand inspect-store; and not __fish_seen_subcommand_from summary cursors contracts events reorgs deliveries txs batches provers retry skip cancel resync manage help" -f -a "retry" -d 'Put failed (or skipped) deliveries back to pending (read-write; while `watch` runs, done by it through its control socket)'
complete -c ferry -n "__fish_ferry_using_subcommand inspect-store; and not __fish_seen_subcommand_from summary cursors contracts events reorgs deliveries txs batches provers retry skip cancel resync manage help" -f -a "skip" -d 'Mark pending or failed deliveries skipped, never to be sent (read-write, or by a running `watch`)'
complete -c ferry -n "__fish_ferry_using_subcommand inspect-store; and not __fish_seen_subcommand_from summary cursors contracts events reorgs deliveries txs batches provers retry skip cancel resync manage help" -f -a "cancel" -d 'Replace a stuck transaction with a zero-value send to itself at the same nonce (read-write, or by a running `watch`)'
complete -c ferry -n "__fish_ferry_using_subcommand inspect-store; and not __fish_seen_subcommand_from summary cursors contracts events reorgs deliveries txs batches provers retry skip cancel resync manage help" -f -a "resync" -d 'Drop signed transactions no node holds and sign their deliveries again (read-write, or by a running `watch`)'
complete -c ferry -n "__fish_ferry_using_subcommand inspect-store; and not __fish_seen_subcommand_from summary cursors contracts events reorgs deliveries txs batches provers retry skip cancel resync manage help" -f -a "manage" -d 'Retry, skip, cancel or resync from menus, on a terminal (read-write, or by a running `watch`)'
complete -c ferry -n "__fish_ferry_using_subcommand inspect-store; and not __fish_seen_subcommand_from summary cursors contracts events reorgs deliveries txs batches provers retry skip cancel resync manage help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c ferry -n "__fish_ferry_using_subcommand inspect-store; and __fish_seen_subcommand_from summary" -s c -l config -d 'Config file' -r -F
complete -c ferry -n "__fish_ferry_using_subcommand inspect-store; and __fish_seen_subcommand_from summary" -l store -d 'State file; overrides `store:` in the config' -r -F
complete -c ferry -n "__fish_ferry_using_subcommand inspect-store; and __fish_seen_subcommand_from summary" -l log-format -d 'Log format on stderr' -r -f -a "text\t''
json\t''"
complete -c ferry -n "__fish_ferry_using_subcommand inspect-store; and __fish_seen_subcommand_from summary" -l color -d 'When to use colour' -r -f -a "auto\t''
always\t''
never\t''"
complete -c ferry -n "__fish_ferry_using_subcommand inspect-store; and __fish_seen_subcommand_from summary" -s v -l verbose -d 'More log output (-v debug, -vv trace)'
complete -c ferry -n "__fish_ferry_using_subcommand inspect-store; and __fish_seen_subcommand_from summary" -s q -l quiet -d 'Less log output (-q warnings only, -qq errors only)'
complete -c ferry -n "__fish_ferry_using_subcommand inspect-store; and __fish_seen_subcommand_from summary" -l json -d 'Print results as JSON on stdout (logs stay on stderr)'
complete -c ferry -n "__fish_ferry_using_subcommand inspect-store; and __fish_seen_subcommand_from summary" -s h -l help -d 'Print help'
complete -c ferry -n "__fish_ferry_using_subcommand inspect-store; and __fish_seen_subcommand_from cursors" -s c -l config -d 'Config file' -r -F
complete -c ferry -n "__fish_ferry_using_subcommand inspect-store; and __fish_seen_subcommand_from cursors" -l store -d 'State file; overrides `store:` in the config' -r -F
complete -c ferry -n "__fish_ferry_using_subcommand inspect-store; and __fish_seen_subcommand_from cursors" -l log-format -d 'Log format on stderr' -r -f -a "text\t''
json\t''"
complete -c ferry -n "__fish_ferry_using_subcommand inspect-store; and __fish_seen_subcommand_from cursors" -l color -d 'When to use colour' -r -f -a "auto\t''
always\t''
never\t''"
complete -c ferry -n "__fish_ferry_using_subcommand inspect-store; and __fish_seen_subcommand_from cursors" -s v -l verbose -d 'More log output (-v debug, -vv trace)'
complete -c ferry -n "__fish_ferry_using_subcommand inspect-store; and __fish_seen_subcommand_from cursors" -s q -l quiet -d 'Less log output (-q warnings only, -qq errors only)'
complete -c ferry -n "__fish_ferry_using_subcommand inspect-store; and __fish_seen_subcommand_from cursors" -l json -d 'Print results as JSON on stdout (logs stay on stderr)'
complete -c ferry -n "__fish_ferry_using_subcommand inspect-store; and __fish_seen_subcommand_from cursors" -s h -l help -d 'Print help'
complete -c ferry -n "__fish_ferry_using_subcommand inspect-store; and __fish_seen_subcommand_from contracts" -l chain -d 'Only this chain: a chain id, or a chain name from the config' -r
complete -c ferry -n "__fish_ferry_using_subcommand inspect-store; and __fish_seen_subcommand_from contracts" -l address -d 'Only this address' -r
complete -c ferry -n "__fish_ferry_using_subcommand inspect-store; and __fish_seen_subcommand_from contracts" -l limit -d 'At most this many rows' -r
complete -c ferry -n "__fish_ferry_using_subcommand inspect-store; and __fish_seen_subcommand_from contracts" -s c -l config -d 'Config file' -r -F
complete -c ferry -n "__fish_ferry_using_subcommand inspect-store; and __fish_seen_subcommand_from contracts" -l store -d 'State file; overrides `store:` in the config' -r -F
complete -c ferry -n "__fish_ferry_using_subcommand inspect-store; and __fish_seen_subcommand_from contracts" -l log-format -d 'Log format on stderr' -r -f -a "text\t''
json\t''"
complete -c ferry -n "__fish_ferry_using_subcommand inspect-store; and __fish_seen_subcommand_from contracts" -l color -d 'When to use colour' -r -f -a "auto\t''
always\t''
never\t''"
complete -c ferry -n "__fish_ferry_using_subcommand inspect-store; and __fish_seen_subcommand_from contracts" -s v -l verbose -d 'More log output (-v debug, -vv trace)'
complete -c ferry -n "__fish_ferry_using_subcommand inspect-store; and __fish_seen_subcommand_from contracts" -s q -l quiet -d 'Less log output (-q warnings only, -qq errors only)'
complete -c ferry -n "__fish_ferry_using_subcommand inspect-store; and __fish_seen_subcommand_from contracts" -l json -d 'Print results as JSON on stdout (logs stay on stderr)'
complete -c ferry -n "__fish_ferry_using_subcommand inspect-store; and __fish_seen_subcommand_from contracts" -s h -l help -d 'Print help'
complete -c ferry -n "__fish_ferry_using_subcommand inspect-store; and __fish_seen_subcommand_from events" -l chain -d 'Only this chain: a chain id, or a chain name from the config' -r
complete -c ferry -n "__fish_ferry_using_subcommand inspect-store; and __fish_seen_subcommand_from events" -l source -d 'Only items (events, batches) of this source' -r
complete -c ferry -n "__fish_ferry_using_subcommand inspect-store; and __fish_seen_subcommand_from events" -l address -d 'Only events emitted by this address' -r
complete -c ferry -n "__fish_ferry_using_subcommand inspect-store; and __fish_seen_subcommand_from events" -l event -d 'Only this event (by name), or `undecoded` for logs that no declaration decoded' -r
complete -c ferry -n "__fish_ferry_using_subcommand inspect-store; and __fish_seen_subcommand_from events" -l from-block -d 'Only events at or after this block' -r
complete -c ferry -n "__fish_ferry_using_subcommand inspect-store; and __fish_seen_subcommand_from events" -l to-block -d 'Only events at or before this block' -r
complete -c ferry -n "__fish_ferry_using_subcommand inspect-store; and __fish_seen_subcommand_from events" -l limit -d 'At most this many rows' -r
complete -c ferry -n "__fish_ferry_using_subcommand inspect-store; and __fish_seen_subcommand_from events" -s c -l config -d 'Config file' -r -F
complete -c ferry -n "__fish_ferry_using_subcommand inspect-store; and __fish_seen_subcommand_from events" -l store -d 'State file; overrides `store:` in the config' -r -F
complete -c ferry -n "__fish_ferry_using_subcommand inspect-store; and __fish_seen_subcommand_from events" -l log-format -d 'Log format on stderr' -r -f -a "text\t''
json\t''"
complete -c ferry -n "__fish_ferry_using_subcommand inspect-store; and __fish_seen_subcommand_from events" -l color -d 'When to use colour' -r -f -a "auto\t''
always\t''
never\t''"
complete -c ferry -n "__fish_ferry_using_subcommand inspect-store; and __fish_seen_subcommand_from events" -s v -l verbose -d 'More log output (-v debug, -vv trace)'
complete -c ferry -n "__fish_ferry_using_subcommand inspect-store; and __fish_seen_subcommand_from events" -s q -l quiet -d 'Less log output (-q warnings only, -qq errors only)'
complete -c ferry -n "__fish_ferry_using_subcommand inspect-store; and __fish_seen_subcommand_from events" -l json -d 'Print results as JSON on stdout (logs stay on stderr)'
complete -c ferry -n "__fish_ferry_using_subcommand inspect-store; and __fish_seen_subcommand_from events" -s h -l help -d 'Print help'
complete -c ferry -n "__fish_ferry_using_subcommand inspect-store; and __fish_seen_subcommand_from reorgs" -l chain -d 'Only this chain: a chain id, or a chain name from the config' -r
complete -c ferry -n "__fish_ferry_using_subcommand inspect-store; and __fish_seen_subcommand_from reorgs" -s c -l config -d 'Config file' -r -F
complete -c ferry -n "__fish_ferry_using_subcommand inspect-store; and __fish_seen_subcommand_from reorgs" -l store -d 'State file; overrides `store:` in the config' -r -F
complete -c ferry -n "__fish_ferry_using_subcommand inspect-store; and __fish_seen_subcommand_from reorgs" -l log-format -d 'Log format on stderr' -r -f -a "text\t''
json\t''"
complete -c ferry -n "__fish_ferry_using_subcommand inspect-store; and __fish_seen_subcommand_from reorgs" -l color -d 'When to use colour' -r -f -a "auto\t''
always\t''
never\t''"
complete -c ferry -n "__fish_ferry_using_subcommand inspect-store; and __fish_seen_subcommand_from reorgs" -s v -l verbose -d 'More log output (-v debug, -vv trace)'
complete -c ferry -n "__fish_ferry_using_subcommand inspect-store; and __fish_seen_subcommand_from reorgs" -s q -l quiet -d 'Less log output (-q warnings only, -qq errors only)'
complete -c ferry -n "__fish_ferry_using_subcommand inspect-store; and __fish_seen_subcommand_from reorgs" -l json -d 'Print results as JSON on stdout (logs stay on stderr)'
complete -c ferry -n "__fish_ferry_using_subcommand inspect-store; and __fish_seen_subcommand_from reorgs" -s h -l help -d 'Print help'
complete -c ferry -n "__fish_ferry_using_subcommand inspect-store; and __fish_seen_subcommand_from deliveries" -l target -d 'Only deliveries to this target' -r
complete -c ferry -n "__fish_ferry_using_subcommand inspect-store; and __fish_seen_subcommand_from deliveries" -l chain -d 'Only this chain: a chain id, or a chain name from the config' -r
complete -c ferry -n "__fish_ferry_using_subcommand inspect-store; and __fish_seen_subcommand_from deliveries" -l state -d 'Only deliveries in this state (read from the status index: cheap on a large store)' -r -f -a "pending\t''
sending\t''
sent\t''
confirmed\t''
skipped\t''
failed\t''"
complete -c ferry -n "__fish_ferry_using_subcommand inspect-store; and __fish_seen_subcommand_from deliveries" -l limit -d 'At most this many rows; the footer still counts every match' -r
complete -c ferry -n "__fish_ferry_using_subcommand inspect-store; and __fish_seen_subcommand_from deliveries" -s c -l config -d 'Config file' -r -F
complete -c ferry -n "__fish_ferry_using_subcommand inspect-store; and __fish_seen_subcommand_from deliveries" -l store -d 'State file; overrides `store:` in the config' -r -F
complete -c ferry -n "__fish_ferry_using_subcommand inspect-store; and __fish_seen_subcommand_from deliveries" -l log-format -d 'Log format on stderr' -r -f -a "text\t''
json\t''"
complete -c ferry -n "__fish_ferry_using_subcommand inspect-store; and __fish_seen_subcommand_from deliveries" -l color -d 'When to use colour' -r -f -a "auto\t''
always\t''
never\t''"
complete -c ferry -n "__fish_ferry_using_subcommand inspect-store; and __fish_seen_subcommand_from deliveries" -l matrix -d 'One row per item, one column per destination chain: which item reached which chain'
complete -c ferry -n "__fish_ferry_using_subcommand inspect-store; and __fish_seen_subcommand_from deliveries" -s v -l verbose -d 'More log output (-v debug, -vv trace)'
complete -c ferry -n "__fish_ferry_using_subcommand inspect-store; and __fish_seen_subcommand_from deliveries" -s q -l quiet -d 'Less log output (-q warnings only, -qq errors only)'
complete -c ferry -n "__fish_ferry_using_subcommand inspect-store; and __fish_seen_subcommand_from deliveries" -l json -d 'Print results as JSON on stdout (logs stay on stderr)'
complete -c ferry -n "__fish_ferry_using_subcommand inspect-store; and __fish_seen_subcommand_from deliveries" -s h -l help -d 'Print help'
complete -c ferry -n "__fish_ferry_using_subcommand inspect-store; and __fish_seen_subcommand_from txs" -l chain -d 'Only this chain: a chain id, or a chain name from the config' -r
complete -c ferry -n "__fish_ferry_using_subcommand inspect-store; and __fish_seen_subcommand_from txs" -l limit -d 'At most this many rows, the newest; the footer still counts every match' -r
complete -c ferry -n "__fish_ferry_using_subcommand inspect-store; and __fish_seen_subcommand_from txs" -s c -l config -d 'Config file' -r -F
complete -c ferry -n "__fish_ferry_using_subcommand inspect-store; and __fish_seen_subcommand_from txs" -l store -d 'State file; overrides `store:` in the config' -r -F
complete -c ferry -n "__fish_ferry_using_subcommand inspect-store; and __fish_seen_subcommand_from txs" -l log-format -d 'Log format on stderr' -r -f -a "text\t''
json\t''"
complete -c ferry -n "__fish_ferry_using_subcommand inspect-store; and __fish_seen_subcommand_from txs" -l color -d 'When to use colour' -r -f -a "auto\t''
always\t''
never\t''"
complete -c ferry -n "__fish_ferry_using_subcommand inspect-store; and __fish_seen_subcommand_from txs" -l open -d 'Only transactions not mined yet (signed or sent)'
complete -c ferry -n "__fish_ferry_using_subcommand inspect-store; and __fish_seen_subcommand_from txs" -s v -l verbose -d 'More log output (-v debug, -vv trace)'
complete -c ferry -n "__fish_ferry_using_subcommand inspect-store; and __fish_seen_subcommand_from txs" -s q -l quiet -d 'Less log output (-q warnings only, -qq errors only)'
complete -c ferry -n "__fish_ferry_using_subcommand inspect-store; and __fish_seen_subcommand_from txs" -l json -d 'Print results as JSON on stdout (logs stay on stderr)'
complete -c ferry -n "__fish_ferry_using_subcommand inspect-store; and __fish_seen_subcommand_from txs" -s h -l help -d 'Print help'
complete -c ferry -n "__fish_ferry_using_subcommand inspect-store; and __fish_seen_subcommand_from batches" -l source -d 'Only batches of this seda source' -r
complete -c ferry -n "__fish_ferry_using_subcommand inspect-store; and __fish_seen_subcommand_from batches" -l from -d 'Only batches numbered at or above this' -r
complete -c ferry -n "__fish_ferry_using_subcommand inspect-store; and __fish_seen_subcommand_from batches" -l to -d 'Only batches numbered at or below this' -r
complete -c ferry -n "__fish_ferry_using_subcommand inspect-store; and __fish_seen_subcommand_from batches" -l limit -d 'At most this many rows, the newest; the footer still counts every match' -r
complete -c ferry -n "__fish_ferry_using_subcommand inspect-store; and __fish_seen_subcommand_from batches" -s c -l config -d 'Config file' -r -F
complete -c ferry -n "__fish_ferry_using_subcommand inspect-store; and __fish_seen_subcommand_from batches" -l store -d 'State file; overrides `store:` in the config' -r -F
complete -c ferry -n "__fish_ferry_using_subcommand inspect-store; and __fish_seen_subcommand_from batches" -l log-format -d 'Log format on stderr' -r -f -a "text\t''
json\t''"
complete -c ferry -n "__fish_ferry_using_subcommand inspect-store; and __fish_seen_subcommand_from batches" -l color -d 'When to use colour' -r -f -a "auto\t''
always\t''
never\t''"
complete -c ferry -n "__fish_ferry_using_subcommand inspect-store; and __fish_seen_subcommand_from batches" -s v -l verbose -d 'More log output (-v debug, -vv trace)'
complete -c ferry -n "__fish_ferry_using_subcommand inspect-store; and __fish_seen_subcommand_from batches" -s q -l quiet -d 'Less log output (-q warnings only, -qq errors only)'
complete -c ferry -n "__fish_ferry_using_subcommand inspect-store; and __fish_seen_subcommand_from batches" -l json -d 'Print results as JSON on stdout (logs stay on stderr)'
complete -c ferry -n "__fish_ferry_using_subcommand inspect-store; and __fish_seen_subcommand_from batches" -s h -l help -d 'Print help'
complete -c ferry -n "__fish_ferry_using_subcommand inspect-store; and __fish_seen_subcommand_from provers" -l target -d 'Only this seda-prover target' -r
complete -c ferry -n "__fish_ferry_using_subcommand inspect-store; and __fish_seen_subcommand_from provers" -l chain -d 'Only this chain: a chain id, or a chain name from the config' -r
complete -c ferry -n "__fish_ferry_using_subcommand inspect-store; and __fish_seen_subcommand_from provers" -s c -l config -d 'Config file' -r -F
complete -c ferry -n "__fish_ferry_using_subcommand inspect-store; and __fish_seen_subcommand_from provers" -l store -d 'State file; overrides `store:` in the config' -r -F
complete -c ferry -n "__fish_ferry_using_subcommand inspect-store; and __fish_seen_subcommand_from provers" -l log-format -d 'Log format on stderr' -r -f -a "text\t''
json\t''"
complete -c ferry -n "__fish_ferry_using_subcommand inspect-store; and __fish_seen_subcommand_from provers" -l color -d 'When to use colour' -r -f -a "auto\t''
always\t''
never\t''"
complete -c ferry -n "__fish_ferry_using_subcommand inspect-store; and __fish_seen_subcommand_from provers" -s v -l verbose -d 'More log output (-v debug, -vv trace)'
complete -c ferry -n "__fish_ferry_using_subcommand inspect-store; and __fish_seen_subcommand_from provers" -s q -l quiet -d 'Less log output (-q warnings only, -qq errors only)'
complete -c ferry -n "__fish_ferry_using_subcommand inspect-store; and __fish_seen_subcommand_from provers" -l json -d 'Print results as JSON on stdout (logs stay on stderr)'
complete -c ferry -n "__fish_ferry_using_subcommand inspect-store; and __fish_seen_subcommand_from provers" -s h -l help -d 'Print help'
complete -c ferry -n "__fish_ferry_using_subcommand inspect-store; and __fish_seen_subcommand_from retry" -l all-failed -d 'Every failed delivery on this chain, or of this sink target (with --target, of that target only)' -r
complete -c ferry -n "__fish_ferry_using_subcommand inspect-store; and __fish_seen_subcommand_from retry" -l target -d 'With --all-failed: only this target' -r
complete -c ferry -n "__fish_ferry_using_subcommand inspect-store; and __fish_seen_subcommand_from retry" -s c -l config -d 'Config file' -r -F
complete -c ferry -n "__fish_ferry_using_subcommand inspect-store; and __fish_seen_subcommand_from retry" -l store -d 'State file; overrides `store:` in the config' -r -F
complete -c ferry -n "__fish_ferry_using_subcommand inspect-store; and __fish_seen_subcommand_from retry" -l log-format -d 'Log format on stderr' -r -f -a "text\t''
json\t''"
complete -c ferry -n "__fish_ferry_using_subcommand inspect-store; and __fish_seen_subcommand_from retry" -l color -d 'When to use colour' -r -f -a "auto\t''
always\t''
never\t''"
complete -c ferry -n "__fish_ferry_using_subcommand inspect-store; and __fish_seen_subcommand_from retry" -s y -l yes -d 'Do not ask for confirmation (needed when not on a terminal)'
complete -c ferry -n "__fish_ferry_using_subcommand inspect-store; and __fish_seen_subcommand_from retry" -s v -l verbose -d 'More log output (-v debug, -vv trace)'
complete -c ferry -n "__fish_ferry_using_subcommand inspect-store; and __fish_seen_subcommand_from retry" -s q -l quiet -d 'Less log output (-q warnings only, -qq errors only)'
complete -c ferry -n "__fish_ferry_using_subcommand inspect-store; and __fish_seen_subcommand_from retry" -l json -d 'Print results as JSON on stdout (logs stay on stderr)'
complete -c ferry -n "__fish_ferry_using_subcommand inspect-store; and __fish_seen_subcommand_from retry" -s h -l help -d 'Print help'
complete -c ferry -n "__fish_ferry_using_subcommand inspect-store; and __fish_seen_subcommand_from skip" -l all-failed -d 'Every failed delivery on this chain, or of this sink target (with --target, of that target only)' -r
complete -c ferry -n "__fish_ferry_using_subcommand inspect-store; and __fish_seen_subcommand_from skip" -l target -d 'With --all-failed: only this target' -r
complete -c ferry -n "__fish_ferry_using_subcommand inspect-store; and __fish_seen_subcommand_from skip" -l reason -d 'Why, kept with the delivery' -r
complete -c ferry -n "__fish_ferry_using_subcommand inspect-store; and __fish_seen_subcommand_from skip" -s c -l config -d 'Config file' -r -F
complete -c ferry -n "__fish_ferry_using_subcommand inspect-store; and __fish_seen_subcommand_from skip" -l store -d 'State file; overrides `store:` in the config' -r -F
complete -c ferry -n "__fish_ferry_using_subcommand inspect-store; and __fish_seen_subcommand_from skip" -l log-format -d 'Log format on stderr' -r -f -a "text\t''
json\t''"
complete -c ferry -n "__fish_ferry_using_subcommand inspect-store; and __fish_seen_subcommand_from skip" -l color -d 'When to use colour' -r -f -a "auto\t''
always\t''
never\t''"
complete -c ferry -n "__fish_ferry_using_subcommand inspect-store; and __fish_seen_subcommand_from skip" -s y -l yes -d 'Do not ask for confirmation (needed when not on a terminal)'
complete -c ferry -n "__fish_ferry_using_subcommand inspect-store; and __fish_seen_subcommand_from skip" -s v -l verbose -d 'More log output (-v debug, -vv trace)'
complete -c ferry -n "__fish_ferry_using_subcommand inspect-store; and __fish_seen_subcommand_from skip" -s q -l quiet -d 'Less log output (-q warnings only, -qq errors only)'
complete -c ferry -n "__fish_ferry_using_subcommand inspect-store; and __fish_seen_subcommand_from skip" -l json -d 'Print results as JSON on stdout (logs stay on stderr)'
complete -c ferry -n "__fish_ferry_using_subcommand inspect-store; and __fish_seen_subcommand_from skip" -s h -l help -d 'Print help'
complete -c ferry -n "__fish_ferry_using_subcommand inspect-store; and __fish_seen_subcommand_from cancel" -l chain -d 'The destination chain (a name from the config)' -r
complete -c ferry -n "__fish_ferry_using_subcommand inspect-store; and __fish_seen_subcommand_from cancel" -l nonce -d 'The nonce to cancel (see `inspect-store txs --open`)' -r
complete -c ferry -n "__fish_ferry_using_subcommand inspect-store; and __fish_seen_subcommand_from cancel" -l max-fee-gwei -d 'Offer this max fee per gas instead of the old one + the bump percent (or the market)' -r
complete -c ferry -n "__fish_ferry_using_subcommand inspect-store; and __fish_seen_subcommand_from cancel" -s c -l config -d 'Config file' -r -F
complete -c ferry -n "__fish_ferry_using_subcommand inspect-store; and __fish_seen_subcommand_from cancel" -l store -d 'State file; overrides `store:` in the config' -r -F
complete -c ferry -n "__fish_ferry_using_subcommand inspect-store; and __fish_seen_subcommand_from cancel" -l log-format -d 'Log format on stderr' -r -f -a "text\t''
json\t''"
complete -c ferry -n "__fish_ferry_using_subcommand inspect-store; and __fish_seen_subcommand_from cancel" -l color -d 'When to use colour' -r -f -a "auto\t''
always\t''
never\t''"
complete -c ferry -n "__fish_ferry_using_subcommand inspect-store; and __fish_seen_subcommand_from cancel" -s y -l yes -d 'Do not ask for confirmation (needed when not on a terminal)'
complete -c ferry -n "__fish_ferry_using_subcommand inspect-store; and __fish_seen_subcommand_from cancel" -s v -l verbose -d 'More log output (-v debug, -vv trace)'
complete -c ferry -n "__fish_ferry_using_subcommand inspect-store; and __fish_seen_subcommand_from cancel" -s q -l quiet -d 'Less log output (-q warnings only, -qq errors only)'
complete -c ferry -n "__fish_ferry_using_subcommand inspect-store; and __fish_seen_subcommand_from cancel" -l json -d 'Print results as JSON on stdout (logs stay on stderr)'
complete -c ferry -n "__fish_ferry_using_subcommand inspect-store; and __fish_seen_subcommand_from cancel" -s h -l help -d 'Print help'
complete -c ferry -n "__fish_ferry_using_subcommand inspect-store; and __fish_seen_subcommand_from resync" -l chain -d 'The destination chain (a name from the config)' -r
complete -c ferry -n "__fish_ferry_using_subcommand inspect-store; and __fish_seen_subcommand_from resync" -s c -l config -d 'Config file' -r -F
complete -c ferry -n "__fish_ferry_using_subcommand inspect-store; and __fish_seen_subcommand_from resync" -l store -d 'State file; overrides `store:` in the config' -r -F
complete -c ferry -n "__fish_ferry_using_subcommand inspect-store; and __fish_seen_subcommand_from resync" -l log-format -d 'Log format on stderr' -r -f -a "text\t''
json\t''"
complete -c ferry -n "__fish_ferry_using_subcommand inspect-store; and __fish_seen_subcommand_from resync" -l color -d 'When to use colour' -r -f -a "auto\t''
always\t''
never\t''"
complete -c ferry -n "__fish_ferry_using_subcommand inspect-store; and __fish_seen_subcommand_from resync" -s y -l yes -d 'Do not ask for confirmation (needed when not on a terminal)'
complete -c ferry -n "__fish_ferry_using_subcommand inspect-store; and __fish_seen_subcommand_from resync" -s v -l verbose -d 'More log output (-v debug, -vv trace)'
complete -c ferry -n "__fish_ferry_using_subcommand inspect-store; and __fish_seen_subcommand_from resync" -s q -l quiet -d 'Less log output (-q warnings only, -qq errors only)'
complete -c ferry -n "__fish_ferry_using_subcommand inspect-store; and __fish_seen_subcommand_from resync" -l json -d 'Print results as JSON on stdout (logs stay on stderr)'
complete -c ferry -n "__fish_ferry_using_subcommand inspect-store; and __fish_seen_subcommand_from resync" -s h -l help -d 'Print help'
complete -c ferry -n "__fish_ferry_using_subcommand inspect-store; and __fish_seen_subcommand_from manage" -s c -l config -d 'Config file' -r -F
complete -c ferry -n "__fish_ferry_using_subcommand inspect-store; and __fish_seen_subcommand_from manage" -l store -d 'State file; overrides `store:` in the config' -r -F
complete -c ferry -n "__fish_ferry_using_subcommand inspect-store; and __fish_seen_subcommand_from manage" -l log-format -d 'Log format on stderr' -r -f -a "text\t''
json\t''"
complete -c ferry -n "__fish_ferry_using_subcommand inspect-store; and __fish_seen_subcommand_from manage" -l color -d 'When to use colour' -r -f -a "auto\t''
always\t''
never\t''"
complete -c ferry -n "__fish_ferry_using_subcommand inspect-store; and __fish_seen_subcommand_from manage" -s v -l verbose -d 'More log output (-v debug, -vv trace)'
complete -c ferry -n "__fish_ferry_using_subcommand inspect-store; and __fish_seen_subcommand_from manage" -s q -l quiet -d 'Less log output (-q warnings only, -qq errors only)'
complete -c ferry -n "__fish_ferry_using_subcommand inspect-store; and __fish_seen_subcommand_from manage" -l json -d 'Print results as JSON on stdout (logs stay on stderr)'
complete -c ferry -n "__fish_ferry_using_subcommand inspect-store; and __fish_seen_subcommand_from manage" -s h -l help -d 'Print help'
complete -c ferry -n "__fish_ferry_using_subcommand inspect-store; and __fish_seen_subcommand_from help" -f -a "summary" -d 'Schema version, file size, rows per table and source cursors (the default)'
complete -c ferry -n "__fish_ferry_using_subcommand inspect-store; and __fish_seen_subcommand_from help" -f -a "cursors" -d 'Where each source stands: the range of blocks it holds'
complete -c ferry -n "__fish_ferry_using_subcommand inspect-store; and __fish_seen_subcommand_from help" -f -a "contracts" -d 'Watched contracts: configured ones and factory children'
complete -c ferry -n "__fish_ferry_using_subcommand inspect-store; and __fish_seen_subcommand_from help" -f -a "events" -d 'Ingested events, newest filters first: chain, address, event name, block range'
complete -c ferry -n "__fish_ferry_using_subcommand inspect-store; and __fish_seen_subcommand_from help" -f -a "reorgs" -d 'Reorgs seen under `confirmations: 0` (or deeper than the confirmations), and what they undid'
complete -c ferry -n "__fish_ferry_using_subcommand inspect-store; and __fish_seen_subcommand_from help" -f -a "deliveries" -d 'Deliveries: one row per (target, destination chain, item), with the id to pass to `ferry inspect-store retry`'
complete -c ferry -n "__fish_ferry_using_subcommand inspect-store; and __fish_seen_subcommand_from help" -f -a "txs" -d 'Transaction intents: each nonce ferry signed, per chain and signer, newest nonces last'
complete -c ferry -n "__fish_ferry_using_subcommand inspect-store; and __fish_seen_subcommand_from help" -f -a "batches" -d 'Stored SEDA batches: one row per batch, the newest kept by `--limit`'
complete -c ferry -n "__fish_ferry_using_subcommand inspect-store; and __fish_seen_subcommand_from help" -f -a "provers" -d 'What each `seda-prover` destination\'s Prover last said, and how far it is behind'
complete -c ferry -n "__fish_ferry_using_subcommand inspect-store; and __fish_seen_subcommand_from help" -f -a "retry" -d 'Put failed (or skipped) deliveries back to pending (read-write; while `watch` runs, done by it through its control socket)'
complete -c ferry -n "__fish_ferry_using_subcommand inspect-store; and __fish_seen_subcommand_from help" -f -a "skip" -d 'Mark pending or failed deliveries skipped, never to be sent (read-write, or by a running `watch`)'
complete -c ferry -n "__fish_ferry_using_subcommand inspect-store; and __fish_seen_subcommand_from help" -f -a "cancel" -d 'Replace a stuck transaction with a zero-value send to itself at the same nonce (read-write, or by a running `watch`)'
complete -c ferry -n "__fish_ferry_using_subcommand inspect-store; and __fish_seen_subcommand_from help" -f -a "resync" -d 'Drop signed transactions no node holds and sign their deliveries again (read-write, or by a running `watch`)'
complete -c ferry -n "__fish_ferry_using_subcommand inspect-store; and __fish_seen_subcommand_from help" -f -a "manage" -d 'Retry, skip, cancel or resync from menus, on a terminal (read-write, or by a running `watch`)'
complete -c ferry -n "__fish_ferry_using_subcommand inspect-store; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c ferry -n "__fish_ferry_using_subcommand export" -l format -d 'Row format' -r -f -a "jsonl\t''
csv\t''"
complete -c ferry -n "__fish_ferry_using_subcommand export" -l chain -d 'Only this chain: a chain id, or a chain name from the config' -r
complete -c ferry -n "__fish_ferry_using_subcommand export" -l source -d 'Only items (events, batches) of this source' -r
complete -c ferry -n "__fish_ferry_using_subcommand export" -l address -d 'Only events emitted by this address' -r
complete -c ferry -n "__fish_ferry_using_subcommand export" -l event -d 'Only this event (by name), or `undecoded` for logs that no declaration decoded' -r
complete -c ferry -n "__fish_ferry_using_subcommand export" -l from-block -d 'Only events at or after this block' -r
complete -c ferry -n "__fish_ferry_using_subcommand export" -l to-block -d 'Only events at or before this block' -r
complete -c ferry -n "__fish_ferry_using_subcommand export" -l target -d 'Only deliveries to this target (`deliveries`)' -r
complete -c ferry -n "__fish_ferry_using_subcommand export" -l state -d 'Only deliveries in this state (`deliveries`)' -r -f -a "pending\t''
sending\t''
sent\t''
confirmed\t''
skipped\t''
failed\t''"
complete -c ferry -n "__fish_ferry_using_subcommand export" -l limit -d 'At most this many rows' -r
complete -c ferry -n "__fish_ferry_using_subcommand export" -l table -d 'Only this raw table (repeatable). Default: `meta` and every table that has rows' -r -f -a "meta\t''
source_ids\t''
target_ids\t''
cursors\t''
block_hashes\t''
contracts\t''
events\t''
batches\t''
deliveries\t''
delivery_status\t''
tx_intents\t''
reorgs\t''
provers\t''
sink_acks\t''"
complete -c ferry -n "__fish_ferry_using_subcommand export" -l out -d 'Write to this file (atomically: a temp file renamed when complete) instead of stdout' -r -F
complete -c ferry -n "__fish_ferry_using_subcommand export" -s c -l config -d 'Config file' -r -F
complete -c ferry -n "__fish_ferry_using_subcommand export" -l store -d 'State file; overrides `store:` in the config' -r -F
complete -c ferry -n "__fish_ferry_using_subcommand export" -l log-format -d 'Log format on stderr' -r -f -a "text\t''
json\t''"
complete -c ferry -n "__fish_ferry_using_subcommand export" -l color -d 'When to use colour' -r -f -a "auto\t''
always\t''
never\t''"
complete -c ferry -n "__fish_ferry_using_subcommand export" -s v -l verbose -d 'More log output (-v debug, -vv trace)'
complete -c ferry -n "__fish_ferry_using_subcommand export" -s q -l quiet -d 'Less log output (-q warnings only, -qq errors only)'
complete -c ferry -n "__fish_ferry_using_subcommand export" -l json -d 'Print results as JSON on stdout (logs stay on stderr)'
complete -c ferry -n "__fish_ferry_using_subcommand export" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c ferry -n "__fish_ferry_using_subcommand migrate" -s c -l config -d 'Config file' -r -F
complete -c ferry -n "__fish_ferry_using_subcommand migrate" -l store -d 'State file; overrides `store:` in the config' -r -F
complete -c ferry -n "__fish_ferry_using_subcommand migrate" -l log-format -d 'Log format on stderr' -r -f -a "text\t''
json\t''"
complete -c ferry -n "__fish_ferry_using_subcommand migrate" -l color -d 'When to use colour' -r -f -a "auto\t''
always\t''
never\t''"
complete -c ferry -n "__fish_ferry_using_subcommand migrate" -l dry-run -d 'Print what would be done and change nothing'
complete -c ferry -n "__fish_ferry_using_subcommand migrate" -s y -l yes -d 'Do not ask for confirmation (needed when not on a terminal)'
complete -c ferry -n "__fish_ferry_using_subcommand migrate" -s v -l verbose -d 'More log output (-v debug, -vv trace)'
complete -c ferry -n "__fish_ferry_using_subcommand migrate" -s q -l quiet -d 'Less log output (-q warnings only, -qq errors only)'
complete -c ferry -n "__fish_ferry_using_subcommand migrate" -l json -d 'Print results as JSON on stdout (logs stay on stderr)'
complete -c ferry -n "__fish_ferry_using_subcommand migrate" -s h -l help -d 'Print help'
complete -c ferry -n "__fish_ferry_using_subcommand check-config" -s c -l config -d 'Config file' -r -F
complete -c ferry -n "__fish_ferry_using_subcommand check-config" -l store -d 'State file; overrides `store:` in the config' -r -F
complete -c ferry -n "__fish_ferry_using_subcommand check-config" -l log-format -d 'Log format on stderr' -r -f -a "text\t''
json\t''"
complete -c ferry -n "__fish_ferry_using_subcommand check-config" -l color -d 'When to use colour' -r -f -a "auto\t''
always\t''
never\t''"
complete -c ferry -n "__fish_ferry_using_subcommand check-config" -l online -d 'Also connect to every chain: chain id per RPC URL, contract code, signer balance, latency'
complete -c ferry -n "__fish_ferry_using_subcommand check-config" -l no-env -d 'Check without the environment\'s secrets (in CI): a variable the config names that is not set is a warning naming it and its key, not an error, and what it stands for is not checked'
complete -c ferry -n "__fish_ferry_using_subcommand check-config" -s v -l verbose -d 'More log output (-v debug, -vv trace)'
complete -c ferry -n "__fish_ferry_using_subcommand check-config" -s q -l quiet -d 'Less log output (-q warnings only, -qq errors only)'
complete -c ferry -n "__fish_ferry_using_subcommand check-config" -l json -d 'Print results as JSON on stdout (logs stay on stderr)'
complete -c ferry -n "__fish_ferry_using_subcommand check-config" -s h -l help -d 'Print help'
complete -c ferry -n "__fish_ferry_using_subcommand completions" -s c -l config -d 'Config file' -r -F
complete -c ferry -n "__fish_ferry_using_subcommand completions" -l store -d 'State file; overrides `store:` in the config' -r -F
complete -c ferry -n "__fish_ferry_using_subcommand completions" -l log-format -d 'Log format on stderr' -r -f -a "text\t''
json\t''"
complete -c ferry -n "__fish_ferry_using_subcommand completions" -l color -d 'When to use colour' -r -f -a "auto\t''
always\t''
never\t''"
complete -c ferry -n "__fish_ferry_using_subcommand completions" -s v -l verbose -d 'More log output (-v debug, -vv trace)'
complete -c ferry -n "__fish_ferry_using_subcommand completions" -s q -l quiet -d 'Less log output (-q warnings only, -qq errors only)'
complete -c ferry -n "__fish_ferry_using_subcommand completions" -l json -d 'Print results as JSON on stdout (logs stay on stderr)'
complete -c ferry -n "__fish_ferry_using_subcommand completions" -s h -l help -d 'Print help'
complete -c ferry -n "__fish_ferry_using_subcommand help; and not __fish_seen_subcommand_from watch push backfill inspect-store export migrate check-config completions help" -f -a "watch" -d 'Run as a daemon: follow every source and deliver to every target until stopped'
complete -c ferry -n "__fish_ferry_using_subcommand help; and not __fish_seen_subcommand_from watch push backfill inspect-store export migrate check-config completions help" -f -a "push" -d 'One-shot for cron: sync sources, deliver everything pending, wait for confirmations'
complete -c ferry -n "__fish_ferry_using_subcommand help; and not __fish_seen_subcommand_from watch push backfill inspect-store export migrate check-config completions help" -f -a "backfill" -d 'Ingest a historical range of blocks, resumably; deliver only with --deliver'
complete -c ferry -n "__fish_ferry_using_subcommand help; and not __fish_seen_subcommand_from watch push backfill inspect-store export migrate check-config completions help" -f -a "inspect-store" -d 'Show what the state file holds (read-only; works while `watch` runs)'
complete -c ferry -n "__fish_ferry_using_subcommand help; and not __fish_seen_subcommand_from watch push backfill inspect-store export migrate check-config completions help" -f -a "export" -d 'Export events, contracts, deliveries, transactions or SEDA batches as JSON lines or CSV, or raw tables as JSON lines (read-only; works while `watch` runs)'
complete -c ferry -n "__fish_ferry_using_subcommand help; and not __fish_seen_subcommand_from watch push backfill inspect-store export migrate check-config completions help" -f -a "migrate" -d 'Upgrade the state file to this ferry\'s schema (backup first, one transaction)'
complete -c ferry -n "__fish_ferry_using_subcommand help; and not __fish_seen_subcommand_from watch push backfill inspect-store export migrate check-config completions help" -f -a "check-config" -d 'Check the config: offline by default, against the chains with --online'
complete -c ferry -n "__fish_ferry_using_subcommand help; and not __fish_seen_subcommand_from watch push backfill inspect-store export migrate check-config completions help" -f -a "completions" -d 'Print shell completions to stdout'
complete -c ferry -n "__fish_ferry_using_subcommand help; and not __fish_seen_subcommand_from watch push backfill inspect-store export migrate check-config completions help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c ferry -n "__fish_ferry_using_subcommand help; and __fish_seen_subcommand_from inspect-store" -f -a "summary" -d 'Schema version, file size, rows per table and source cursors (the default)'
complete -c ferry -n "__fish_ferry_using_subcommand help; and __fish_seen_subcommand_from inspect-store" -f -a "cursors" -d 'Where each source stands: the range of blocks it holds'
complete -c ferry -n "__fish_ferry_using_subcommand help; and __fish_seen_subcommand_from inspect-store" -f -a "contracts" -d 'Watched contracts: configured ones and factory children'
complete -c ferry -n "__fish_ferry_using_subcommand help; and __fish_seen_subcommand_from inspect-store" -f -a "events" -d 'Ingested events, newest filters first: chain, address, event name, block range'
complete -c ferry -n "__fish_ferry_using_subcommand help; and __fish_seen_subcommand_from inspect-store" -f -a "reorgs" -d 'Reorgs seen under `confirmations: 0` (or deeper than the confirmations), and what they undid'
complete -c ferry -n "__fish_ferry_using_subcommand help; and __fish_seen_subcommand_from inspect-store" -f -a "deliveries" -d 'Deliveries: one row per (target, destination chain, item), with the id to pass to `ferry inspect-store retry`'
complete -c ferry -n "__fish_ferry_using_subcommand help; and __fish_seen_subcommand_from inspect-store" -f -a "txs" -d 'Transaction intents: each nonce ferry signed, per chain and signer, newest nonces last'
complete -c ferry -n "__fish_ferry_using_subcommand help; and __fish_seen_subcommand_from inspect-store" -f -a "batches" -d 'Stored SEDA batches: one row per batch, the newest kept by `--limit`'
complete -c ferry -n "__fish_ferry_using_subcommand help; and __fish_seen_subcommand_from inspect-store" -f -a "provers" -d 'What each `seda-prover` destination\'s Prover last said, and how far it is behind'
complete -c ferry -n "__fish_ferry_using_subcommand help; and __fish_seen_subcommand_from inspect-store" -f -a "retry" -d 'Put failed (or skipped) deliveries back to pending (read-write; while `watch` runs, done by it through its control socket)'
complete -c ferry -n "__fish_ferry_using_subcommand help; and __fish_seen_subcommand_from inspect-store" -f -a "skip" -d 'Mark pending or failed deliveries skipped, never to be sent (read-write, or by a running `watch`)'
complete -c ferry -n "__fish_ferry_using_subcommand help; and __fish_seen_subcommand_from inspect-store" -f -a "cancel" -d 'Replace a stuck transaction with a zero-value send to itself at the same nonce (read-write, or by a running `watch`)'
complete -c ferry -n "__fish_ferry_using_subcommand help; and __fish_seen_subcommand_from inspect-store" -f -a "resync" -d 'Drop signed transactions no node holds and sign their deliveries again (read-write, or by a running `watch`)'
complete -c ferry -n "__fish_ferry_using_subcommand help; and __fish_seen_subcommand_from inspect-store" -f -a "manage" -d 'Retry, skip, cancel or resync from menus, on a terminal (read-write, or by a running `watch`)'
