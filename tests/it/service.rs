//! The service files in `contrib/`: the systemd unit agrees with ferry's exit codes and stop
//! timeout, `systemd-analyze verify` finds nothing to say about it (where the tool is installed),
//! and the cron wrapper turns the real binary's exit codes into what cron should do.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use ferry::exit::Exit;

fn contrib(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("contrib").join(name)
}

fn unit() -> String {
    std::fs::read_to_string(contrib("ferry.service")).expect("contrib/ferry.service")
}

/// Every value of `key` in the unit (a key may be given more than once), comments left out.
fn values(unit: &str, key: &str) -> Vec<String> {
    unit.lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .filter(|(k, _)| k.trim() == key)
        .map(|(_, v)| v.trim().to_string())
        .collect()
}

fn codes(unit: &str, key: &str) -> BTreeSet<i32> {
    values(unit, key)
        .iter()
        .flat_map(|v| {
            v.split_whitespace().map(|c| c.parse::<i32>().expect("a numeric exit status")).collect::<Vec<_>>()
        })
        .collect()
}

/// A time span as systemd and ferry write it: a bare number is seconds.
fn seconds(text: &str) -> u64 {
    text.parse().unwrap_or_else(|_| humantime::parse_duration(text).expect("a duration").as_secs())
}

#[test]
fn the_unit_agrees_with_the_exit_codes_and_the_stop_timeout() {
    let unit = unit();
    // A clean stop on SIGTERM is a success; a bad config or an unusable store is not restarted.
    assert_eq!(codes(&unit, "SuccessExitStatus"), BTreeSet::from([Exit::Interrupted.code()]));
    assert_eq!(
        codes(&unit, "RestartPreventExitStatus"),
        BTreeSet::from([Exit::Usage.code(), Exit::Store.code()])
    );
    assert_eq!(values(&unit, "Restart"), ["on-failure"]);
    assert_eq!(values(&unit, "KillSignal"), ["SIGTERM"]);
    assert_eq!(values(&unit, "ExecReload"), ["/bin/kill -HUP $MAINPID"]);

    // systemd's SIGKILL comes after ferry's own bound and the second it adds to close the store.
    let exec = values(&unit, "ExecStart").pop().expect("ExecStart");
    let args: Vec<&str> = exec.split_whitespace().collect();
    assert_eq!(args.get(1), Some(&"watch"), "{exec}");
    let stop = args.iter().position(|a| *a == "--stop-timeout").map(|i| seconds(args[i + 1]));
    let stop = stop.unwrap_or(ferry::signals::DEFAULT_STOP_TIMEOUT.as_secs());
    let grace = ferry::signals::BACKSTOP_GRACE.as_secs();
    let timeout_stop = seconds(&values(&unit, "TimeoutStopSec").pop().expect("TimeoutStopSec"));
    assert!(timeout_stop > stop + grace + 2, "TimeoutStopSec={timeout_stop}s, --stop-timeout {stop}s");

    for key in ["NoNewPrivileges", "ProtectHome", "PrivateTmp", "DynamicUser"] {
        assert_eq!(values(&unit, key), ["yes"], "{key}");
    }
    assert_eq!(values(&unit, "ProtectSystem"), ["strict"]);
    assert_eq!(values(&unit, "StateDirectory"), ["ferry"]);
    assert_eq!(values(&unit, "RestrictAddressFamilies"), ["AF_UNIX AF_INET AF_INET6"]);
}

#[test]
fn systemd_analyze_verifies_the_unit_where_it_is_installed() {
    let Ok(found) = Command::new("systemd-analyze").arg("--version").output() else {
        println!("SKIPPED: systemd-analyze is not installed here; contrib/ferry.service was not verified");
        return;
    };
    assert!(found.status.success(), "systemd-analyze --version");
    // verify checks that ExecStart's program exists: point it at the binary under test.
    let dir = tempfile::tempdir().expect("tempdir");
    let unit = unit().replace("/usr/local/bin/ferry", env!("CARGO_BIN_EXE_ferry"));
    let path = dir.path().join("ferry.service");
    std::fs::write(&path, unit).expect("unit copy");
    // `--man=no`: the man page is in man/, not installed where man(1) looks.
    let out = Command::new("systemd-analyze").args(["verify", "--man=no"]).arg(&path).output().expect("runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    // Unknown keys and bad values are warnings ("…, ignoring") with exit 0: none is allowed.
    assert!(stderr.trim().is_empty(), "systemd-analyze verify: {stderr}");
}

/// The cron wrapper against the real binary: a run with nothing left to do is silent (exit 0)
/// and leaves its JSON report; a bad config is mailed (stderr) with ferry's own code.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cron_wrapper_passes_on_what_an_operator_must_see() {
    let net = crate::deliver::Net::start(1).await;
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("ferry.yaml"), crate::reload::config(&net, &[0], &[])).expect("config");
    let wrapper = |args: &[&str]| {
        let cmd = crate::support::command::ferry_command(dir.path());
        let mut wrapped = Command::new("sh");
        wrapped
            .arg(contrib("ferry-push-cron"))
            .args(args)
            .current_dir(dir.path())
            .env("FERRY", cmd.get_program())
            .env("FERRY_PUSH_REPORT", dir.path().join("last-push.json"));
        for (k, v) in cmd.get_envs() {
            match v {
                Some(v) => wrapped.env(k, v),
                None => wrapped.env_remove(k),
            };
        }
        wrapped
    };
    let out = crate::support::command::output_within(wrapper(&["--timeout", "60s"]), Duration::from_secs(90))
        .await
        .expect("the wrapper ends")
        .expect("its output");
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.stderr.is_empty(), "quiet when all is well: {}", String::from_utf8_lossy(&out.stderr));
    let report: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("last-push.json")).expect("the report"),
    )
    .expect("JSON");
    assert!(report.is_object(), "{report}");

    std::fs::write(dir.path().join("ferry.yaml"), "chains: [\n").expect("a broken config");
    let out = crate::support::command::output_within(wrapper(&[]), Duration::from_secs(60))
        .await
        .expect("the wrapper ends")
        .expect("its output");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(Exit::Usage.code()), "{stderr}");
    assert!(stderr.contains("ferry push failed (exit 2)") && stderr.contains("ferry.yaml"), "{stderr}");
}
