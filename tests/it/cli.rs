//! The command line as a user meets it: help texts, exit codes of commands not built yet, and the
//! generated completions and man pages being up to date with the clap definitions.

use std::path::Path;
use std::process::{Command, Output};

pub fn ferry(args: &[&str], dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args(args)
        .current_dir(dir)
        .env_remove("FERRY_CONFIG")
        .env_remove("FERRY_STORE")
        .env("NO_COLOR", "1")
        .output()
        .expect("the ferry binary runs")
}

fn text(out: &Output) -> (String, String) {
    (String::from_utf8_lossy(&out.stdout).into(), String::from_utf8_lossy(&out.stderr).into())
}

const COMMANDS: [&str; 7] =
    ["watch", "push", "backfill", "inspect-store", "export", "migrate", "check-config"];

#[test]
fn help_lists_the_seven_commands_and_exit_codes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = ferry(&["--help"], dir.path());
    assert!(out.status.success());
    let (stdout, _) = text(&out);
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
        let out = ferry(&[cmd, "--help"], dir.path());
        let (stdout, stderr) = text(&out);
        assert!(out.status.success(), "`ferry {cmd} --help` failed: {stderr}");
        assert!(stdout.contains("Examples:"), "`ferry {cmd} --help` has no examples:\n{stdout}");
        assert!(stdout.contains(&format!("ferry {cmd}")), "examples do not show `ferry {cmd}`");
    }
}

#[test]
fn a_bad_command_line_exits_2() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = ferry(&["push", "--timeout", "soon"], dir.path());
    assert_eq!(out.status.code(), Some(2));
    let out = ferry(&["frobnicate"], dir.path());
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn flags_not_built_yet_are_not_offered() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("ferry.yaml"),
        "chains:\n  local:\n    chain_id: 31337\n    rpc: [\"http://127.0.0.1:1\"]\n",
    )
    .expect("write config");
    let args = ["watch", "--metrics-addr", "127.0.0.1:9464"];
    let out = ferry(&args, dir.path());
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "`ferry {args:?}`: {stderr}");
    assert!(stderr.contains("unexpected argument '--metrics-addr'"), "`ferry {args:?}`: {stderr}");
    assert!(stdout.is_empty(), "`ferry {args:?}` printed a result: {stdout}");
    let help = ferry(&["watch", "--help"], dir.path());
    assert!(!text(&help).0.contains("metrics"), "`watch --help` advertises metrics: {}", text(&help).0);
}

#[test]
fn a_bad_config_wins_over_not_built() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("ferry.yaml"), "chains:\n  local:\n    chain_idd: 1\n")
        .expect("write config");
    let out = ferry(&["watch"], dir.path());
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("ferry.yaml:3:"), "no line in: {stderr}");
}

#[test]
fn completions_and_man_pages_are_up_to_date() {
    let fresh = tempfile::tempdir().expect("tempdir");
    let out = ferry(&["generate", "--out-dir", &fresh.path().display().to_string()], fresh.path());
    assert!(out.status.success(), "generate failed: {}", text(&out).1);
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
