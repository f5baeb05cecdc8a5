//! The command line as a user meets it: help texts, exit codes of commands not built yet, and the
//! generated completions and man pages being up to date with the clap definitions.

use std::path::Path;

use crate::support::command::run;
use crate::support::output;

const COMMANDS: [&str; 7] =
    ["watch", "push", "backfill", "inspect-store", "export", "migrate", "check-config"];

#[test]
fn help_lists_the_seven_commands_and_exit_codes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = run(dir.path(), &["--help"]);
    assert!(out.status.success());
    let stdout = output::stdout(&out);
    for cmd in COMMANDS {
        assert!(stdout.contains(cmd), "--help does not list `{cmd}`:\n{stdout}");
    }
    assert!(!stdout.contains("generate"), "the hidden command shows in --help");
    for code in ["0 ", "1 ", "2 ", "3 ", "4 ", "130"] {
        assert!(stdout.contains(&format!("  {code}")), "exit code {code} missing:\n{stdout}");
    }
}

#[test]
fn every_command_help_has_examples() {
    let dir = tempfile::tempdir().expect("tempdir");
    for cmd in COMMANDS {
        let out = run(dir.path(), &[cmd, "--help"]);
        let (stdout, stderr) = (output::stdout(&out), output::stderr(&out));
        assert!(out.status.success(), "`ferry {cmd} --help` failed: {stderr}");
        assert!(stdout.contains("Examples:"), "`ferry {cmd} --help` has no examples:\n{stdout}");
        assert!(stdout.contains(&format!("ferry {cmd}")), "examples do not show `ferry {cmd}`");
    }
}

#[test]
fn a_bad_command_line_exits_2() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = run(dir.path(), &["push", "--timeout", "soon"]);
    assert_eq!(out.status.code(), Some(2));
    let out = run(dir.path(), &["frobnicate"]);
    assert_eq!(out.status.code(), Some(2));
}

/// `--metrics-addr` is built now (it was refused as not built before): `watch --help` offers
/// it, and a value that is not an address is a bad command line (exit 2) that prints no result.
#[test]
fn watch_offers_metrics_addr_and_refuses_a_bad_one() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("ferry.yaml"),
        "chains:\n  local:\n    chain_id: 31337\n    rpc: [\"http://127.0.0.1:1\"]\n",
    )
    .expect("write config");
    let args = ["watch", "--metrics-addr", "localhost"];
    let out = run(dir.path(), &args);
    let (stdout, stderr) = (output::stdout(&out), output::stderr(&out));
    assert_eq!(out.status.code(), Some(2), "`ferry {args:?}`: {stderr}");
    assert!(stderr.contains("--metrics-addr"), "`ferry {args:?}`: {stderr}");
    assert!(stdout.is_empty(), "`ferry {args:?}` printed a result: {stdout}");
    let help = output::stdout(&run(dir.path(), &["watch", "--help"]));
    assert!(help.contains("--metrics-addr <ADDR>"), "`watch --help` does not offer metrics: {help}");
}

#[test]
fn a_bad_config_wins_over_not_built() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("ferry.yaml"), "chains:\n  local:\n    chain_idd: 1\n")
        .expect("write config");
    let out = run(dir.path(), &["watch"]);
    let stderr = output::stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("ferry.yaml:3:"), "no line in: {stderr}");
}

#[test]
fn completions_and_man_pages_are_up_to_date() {
    let fresh = tempfile::tempdir().expect("tempdir");
    let out = run(fresh.path(), &["generate", "--out-dir", &fresh.path().display().to_string()]);
    assert!(out.status.success(), "generate failed: {}", output::stderr(&out));
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut stale = Vec::new();
    for sub in ["completions", "man"] {
        let generated = fresh.path().join(sub);
        let checked_in = repo.join(sub);
        let mut names: Vec<_> = std::fs::read_dir(&generated)
            .expect("generated dir")
            .filter_map(|e| e.ok().map(|e| e.file_name()))
            .collect();
        if let Ok(entries) = std::fs::read_dir(&checked_in) {
            names.extend(entries.filter_map(|e| e.ok().map(|e| e.file_name())));
        }
        names.sort();
        names.dedup();
        for name in names {
            let a = std::fs::read(generated.join(&name)).ok();
            let b = std::fs::read(checked_in.join(&name)).ok();
            if a != b {
                stale.push(format!("{sub}/{}", name.to_string_lossy()));
            }
        }
    }
    assert!(
        stale.is_empty(),
        "generated docs are stale: {stale:?}; run `cargo run -- generate` and commit the result"
    );
}
