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

/// Every example line of every `--help` is indented alike (a `"\` string continuation used to
/// eat the first one's indent), and every command lists the exit codes it can end with.
#[test]
fn help_examples_are_aligned_and_list_exit_codes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut commands: Vec<&str> = COMMANDS.to_vec();
    commands.push("completions");
    for cmd in commands.iter().map(|c| vec![*c, "--help"]).chain([vec!["--help"]]) {
        let out = run(dir.path(), &cmd);
        let help = output::stdout(&out);
        let examples = help.split("Examples:\n").nth(1).unwrap_or_else(|| panic!("{cmd:?}: no examples"));
        let (examples, codes) = examples.split_once("Exit codes:\n").expect("exit codes after the examples");
        let lines: Vec<&str> = examples.lines().take_while(|l| !l.is_empty()).collect();
        assert!(!lines.is_empty(), "{cmd:?}: no example lines");
        for line in lines {
            assert!(line.starts_with("  ferry"), "{cmd:?}: example not indented by two spaces: {line:?}");
        }
        let codes: Vec<&str> = codes.lines().filter_map(|l| l.split_whitespace().next()).collect();
        assert!(codes.contains(&"2"), "{cmd:?}: no exit code 2 in {codes:?}");
        for code in &codes {
            assert!(
                ["0", "1", "2", "3", "4", "5", "130"].contains(code),
                "{cmd:?}: unknown exit code {code}"
            );
        }
    }
    let push = output::stdout(&run(dir.path(), &["push", "--help"]));
    assert!(push.contains("  4    work left undone"), "{push}");
    assert!(push.contains("  5    store held by another ferry process"), "{push}");
}

/// `--version` names the release, the commit it was built from and the store schema.
#[test]
fn version_names_the_commit_and_the_store_schema() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = run(dir.path(), &["--version"]);
    assert!(out.status.success());
    let version = output::stdout(&out);
    let schema = ferry::store::tables::SCHEMA_VERSION;
    let rest = version
        .trim()
        .strip_prefix(&format!("ferry {} (commit ", env!("CARGO_PKG_VERSION")))
        .unwrap_or_else(|| panic!("{version}"));
    let commit = rest
        .strip_suffix(&format!(", store schema {schema})"))
        .unwrap_or_else(|| panic!("no store schema in {version}"));
    assert!(
        commit == "unknown" || (commit.len() >= 7 && commit.chars().all(|c| c.is_ascii_hexdigit())),
        "{version}"
    );
    // Built inside a git checkout (as the tests are), the commit is known.
    if Path::new(env!("CARGO_MANIFEST_DIR")).join(".git").exists() {
        assert_ne!(commit, "unknown", "{version}");
    }
}

/// `ferry completions SHELL` prints completions on stdout, without the hidden `generate`.
#[test]
fn completions_go_to_stdout_without_the_hidden_command() {
    let dir = tempfile::tempdir().expect("tempdir");
    for shell in ["bash", "zsh", "fish"] {
        let out = run(dir.path(), &["completions", shell]);
        assert_eq!(out.status.code(), Some(0), "{}", output::stderr(&out));
        let script = output::stdout(&out);
        assert!(script.contains("inspect-store") && script.contains("log-format"), "{shell}: {script}");
        assert!(!script.contains("generate"), "{shell} completions offer the hidden generate");
        let checked_in = Path::new(env!("CARGO_MANIFEST_DIR")).join("completions").join(match shell {
            "bash" => "ferry.bash",
            "zsh" => "_ferry",
            _ => "ferry.fish",
        });
        assert_eq!(std::fs::read_to_string(checked_in).expect("checked-in completions"), script, "{shell}");
    }
    let out = run(dir.path(), &["completions", "tcsh"]);
    assert_eq!(out.status.code(), Some(2), "an unknown shell is a bad command line");
}

/// A man page per command that exists and no other, each with EXIT STATUS and ENVIRONMENT.
#[test]
fn man_pages_exist_for_commands_only_with_environment_and_exit_status() {
    let man = Path::new(env!("CARGO_MANIFEST_DIR")).join("man");
    let mut pages: Vec<String> = std::fs::read_dir(&man)
        .expect("man/")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .collect();
    pages.sort();
    let mut expected: Vec<String> = COMMANDS.iter().map(|c| format!("ferry-{c}.1")).collect();
    expected.push("ferry-completions.1".into());
    expected.push("ferry.1".into());
    expected.sort();
    assert_eq!(pages, expected);
    for page in &pages {
        let text = std::fs::read_to_string(man.join(page)).expect("page");
        assert!(text.contains(".SH \"EXIT STATUS\""), "{page}: no EXIT STATUS");
        assert!(text.contains(".SH ENVIRONMENT"), "{page}: no ENVIRONMENT");
        for var in ["FERRY_CONFIG", "FERRY_STORE", "FERRY_LOG", "NO_COLOR"] {
            assert!(text.contains(var), "{page}: ENVIRONMENT lacks {var}");
        }
        // Every page it points to exists.
        for word in text.split_whitespace() {
            if let Some(name) = word.strip_suffix("(1)") {
                let name = name.replace("\\-", "-");
                assert!(
                    pages.contains(&format!("{name}.1")),
                    "{page} points to {name}(1), which does not exist"
                );
            }
        }
    }
    let inspect = std::fs::read_to_string(man.join("ferry-inspect-store.1")).expect("page");
    assert!(inspect.contains("ferry inspect\\-store deliveries"), "the views are described on the page");
}

/// `FERRY_LOG` is the log filter: it overrides the default level.
#[test]
fn ferry_log_filters_the_logs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out_dir = dir.path().display().to_string();
    let out = run(dir.path(), &["generate", "--out-dir", &out_dir]);
    assert!(output::stderr(&out).contains("wrote"), "info lines by default: {}", output::stderr(&out));
    let quiet = crate::support::command::ferry_command(dir.path())
        .args(["generate", "--out-dir", &out_dir])
        .env("FERRY_LOG", "error")
        .output()
        .expect("ferry runs");
    assert!(quiet.status.success());
    assert_eq!(output::stderr(&quiet), "", "FERRY_LOG=error keeps info lines out");
}

/// Tables wrap to `COLUMNS` (colour off, as when piped or under NO_COLOR); without it, piped
/// output keeps whole rows for grep.
#[test]
fn tables_wrap_to_columns_with_colour_off() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/store-v5.redb");
    std::fs::copy(store, dir.path().join("ferry.redb")).expect("copy fixture");
    let widest = |columns: Option<&str>| {
        let mut cmd = crate::support::command::ferry_command(dir.path());
        cmd.args(["inspect-store", "deliveries", "--color", "never"]).env_remove("COLUMNS");
        if let Some(c) = columns {
            cmd.env("COLUMNS", c);
        }
        let out = cmd.output().expect("ferry runs");
        assert!(out.status.success(), "{}", output::stderr(&out));
        output::stdout(&out).lines().map(|l| l.chars().count()).max().unwrap_or(0)
    };
    let whole = widest(None);
    assert!(whole > 80, "the fixture's rows are wider than 80 columns: {whole}");
    let wrapped = widest(Some("80"));
    assert!(wrapped <= 80, "a table wider than COLUMNS=80: {wrapped}");
}
