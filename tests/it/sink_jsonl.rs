//! The `jsonl` sink on real files: line-number acks across reopenings, a crash's partial last line
//! cut on connect, recovery from the file's tail, reopening on `SIGHUP` after logrotate's rename,
//! and the errors of a full disk, a missing directory and a path that is a directory.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::support::sink::acks;
use ferry::config::JsonlPlan;
use ferry::engine::sink::jsonl::{Jsonl, probe};
use ferry::engine::sink::{Message, Outcome, SinkError};

fn message(i: usize) -> Message {
    let key = format!("file/ev:8453:{}:{}", 500 + i / 4, i % 4);
    Message {
        body: format!(r#"{{"v":1,"key":"{key}","source":"s","event":"Transfer","n":{i}}}"#),
        key,
        source: "s".into(),
        event: "Transfer".into(),
    }
}

fn messages(range: std::ops::Range<usize>) -> Vec<Message> {
    range.map(message).collect()
}

fn plan(path: &Path) -> JsonlPlan {
    JsonlPlan { path: Some(path.to_path_buf()) }
}

fn connect(path: &Path) -> Jsonl {
    Jsonl::connect(&plan(path)).unwrap_or_else(|e| panic!("connect {}: {e}", path.display()))
}

fn lines(from: usize, to: usize) -> Vec<String> {
    (from..=to).map(|n| format!("line {n}")).collect()
}

/// The file's lines, each checked to be a JSON object; the keys in order.
fn keys_in(path: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(path).expect("the file");
    assert!(text.is_empty() || text.ends_with('\n'), "whole lines: {text:?}");
    text.lines()
        .map(|line| {
            let value: serde_json::Value =
                serde_json::from_str(line).unwrap_or_else(|e| panic!("a JSON line: {e}: {line}"));
            value["key"].as_str().expect("a key").to_string()
        })
        .collect()
}

fn keys(batch: &[Message]) -> Vec<String> {
    batch.iter().map(|m| m.key.clone()).collect()
}

#[tokio::test]
async fn lines_are_appended_with_their_line_numbers_across_reopenings() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("out.jsonl");
    let mut sink = connect(&path);
    assert_eq!(acks(&sink.send(&messages(0..3)).await), lines(1, 3));
    assert_eq!(acks(&sink.send(&messages(3..5)).await), lines(4, 5));
    drop(sink);

    let mut sink = connect(&path);
    assert_eq!(acks(&sink.send(&messages(5..6)).await), lines(6, 6), "existing lines counted on open");
    assert_eq!(keys_in(&path), keys(&messages(0..6)));
    let expected: String = messages(0..6).iter().map(|m| format!("{}\n", m.body)).collect();
    assert_eq!(
        std::fs::read_to_string(&path).expect("the file"),
        expected,
        "each body as it was, one a line"
    );
}

#[tokio::test]
async fn a_partial_last_line_is_cut_on_connect_and_written_whole_again() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("out.jsonl");
    let all = messages(0..3);
    let half = &all[2].body[..all[2].body.len() / 2];
    std::fs::write(&path, format!("{}\n{}\n{half}", all[0].body, all[1].body)).expect("a crashed file");

    let mut sink = connect(&path);
    let recovered = sink.recover(&all[2..], 0).await.expect("recover");
    assert_eq!(recovered, vec![None], "the partial line does not count as delivered");
    assert_eq!(acks(&sink.send(&all[2..]).await), lines(3, 3));
    assert_eq!(keys_in(&path), keys(&all), "valid JSON lines, nothing twice");
}

#[tokio::test]
async fn a_file_of_one_partial_line_is_emptied() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("out.jsonl");
    std::fs::write(&path, r#"{"v":1,"key":"file/ev:8453:1"#).expect("a crashed file");
    let mut sink = connect(&path);
    assert_eq!(acks(&sink.send(&messages(0..1)).await), lines(1, 1));
    assert_eq!(keys_in(&path), keys(&messages(0..1)));
}

#[tokio::test]
async fn recover_finds_the_keys_in_the_tail_and_not_others() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("out.jsonl");
    let mut sink = connect(&path);
    for chunk in messages(0..400).chunks(50) {
        acks(&sink.send(chunk).await);
    }
    drop(sink);

    // A new process after a crash: the last round (350..400) was written, its outcome was not.
    let mut sink = connect(&path);
    let mut asked = messages(395..400);
    asked.push(message(1000));
    asked.push(message(360));
    let found = sink.recover(&asked, 0).await.expect("recover");
    let mut expected: Vec<Option<String>> = (396..=400).map(|n| Some(format!("line {n}"))).collect();
    expected.push(None);
    expected.push(Some("line 361".into()));
    assert_eq!(found, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reopens_the_path_after_logrotate_renames_the_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("out.jsonl");
    let rotated = dir.path().join("out.jsonl.1");
    // Connecting installs the SIGHUP listener, so the signal below cannot end the test binary.
    let mut sink = connect(&path);
    assert_eq!(acks(&sink.send(&messages(0..2)).await), lines(1, 2));
    std::fs::rename(&path, &rotated).expect("logrotate's rename");

    let status = std::process::Command::new("kill")
        .args(["-HUP", &std::process::id().to_string()])
        .status()
        .expect("kill to run");
    assert!(status.success(), "kill -HUP");

    // Until the sink has seen the signal, lines still go to the renamed file; one send at a time
    // until the path is there again.
    let mut sent = 2;
    let deadline = Instant::now() + Duration::from_secs(10);
    let reopened_ack = loop {
        assert!(Instant::now() < deadline, "the path was not reopened within 10 s of SIGHUP");
        let ack = acks(&sink.send(&messages(sent..sent + 1)).await).remove(0);
        sent += 1;
        if path.exists() {
            break ack;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(reopened_ack, "line 1", "a fresh file, counted from 1");
    assert_eq!(acks(&sink.send(&messages(sent..sent + 2)).await), lines(2, 3));
    sent += 2;

    let old = keys_in(&rotated);
    let new = keys_in(&path);
    assert_eq!(new.len(), 3);
    let all: Vec<String> = old.iter().chain(&new).cloned().collect();
    assert_eq!(all, keys(&messages(0..sent)), "every line once, in order, across both files");
}

#[tokio::test]
async fn a_full_disk_is_a_retry() {
    let full = PathBuf::from("/dev/full");
    assert!(full.exists(), "this test needs Linux's /dev/full");
    let mut sink = connect(&full);
    for outcome in sink.send(&messages(0..3)).await {
        match outcome {
            Outcome::Retry { reason, after: None } => {
                assert!(reason.contains("/dev/full") && reason.contains("No space left"), "{reason}")
            }
            other => panic!("expected a retry, got {other:?}"),
        }
    }
    let found = sink.recover(&messages(0..1), 0).await.expect("recover");
    assert_eq!(found, vec![None], "a device is not searched");
}

#[tokio::test]
async fn a_missing_directory_or_a_directory_path_is_a_config_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = dir.path().join("no-such-dir").join("out.jsonl");
    for path in [missing.as_path(), dir.path()] {
        match Jsonl::connect(&plan(path)) {
            Err(SinkError::Config(reason)) => {
                assert!(reason.contains(&path.display().to_string()), "{reason}")
            }
            Err(other) => panic!("{}: expected a config error, got {other}", path.display()),
            Ok(_) => panic!("{}: expected a config error, opened", path.display()),
        }
        assert!(matches!(probe(&plan(path)), Err(SinkError::Config(_))), "probe {}", path.display());
    }
    assert!(!missing.parent().expect("a parent").exists(), "no directory is created");
}

#[tokio::test]
async fn probe_says_where_it_appends() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("out.jsonl");
    let shown = path.display();
    assert_eq!(probe(&plan(&path)).expect("probe"), format!("appends to {shown} (a new file)"));
    std::fs::write(&path, "{}\n{}\n").expect("written");
    assert_eq!(probe(&plan(&path)).expect("probe"), format!("appends to {shown} (6 bytes)"));
    let left: Vec<_> =
        std::fs::read_dir(dir.path()).expect("the dir").map(|e| e.expect("an entry").file_name()).collect();
    assert_eq!(left.len(), 1, "the probe's scratch file is removed: {left:?}");
    assert_eq!(probe(&JsonlPlan { path: None }).expect("probe"), "writes to stdout");
}

#[tokio::test]
async fn stdout_acks_stdout_and_recovers_nothing() {
    let mut sink = Jsonl::connect(&JsonlPlan { path: None }).expect("stdout");
    let batch = messages(0..1);
    assert_eq!(acks(&sink.send(&batch).await), ["stdout"]);
    assert_eq!(sink.recover(&batch, 0).await.expect("recover"), vec![None]);
}
