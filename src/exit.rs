//! The exit-code contract shared by every command (`docs/architecture.md` §6), in one place.
//!
//! Library errors carry their own meaning (a config error, a store error, a panic); [`classify`]
//! reads an error chain once into the exit code and the way to print it, and `main` uses both.
//! Nothing in ferry calls `std::process::exit`.

use crate::config::ConfigError;
use crate::store::StoreError;

/// How a ferry process ends. The numbers are part of ferry's interface: scripts and cron rely on them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Done: everything asked for was done.
    Ok = 0,
    /// An unexpected failure (a bug, an I/O error, an RPC that never answered).
    Failure = 1,
    /// A bad command line or a bad config file.
    Usage = 2,
    /// The store is unusable: needs migration, newer, or damaged.
    Store = 3,
    /// Work left undone: deliveries failed or unconfirmed at `--timeout`, a range not finished.
    Incomplete = 4,
    /// The store is held by another ferry process (a `watch`, or a `push` that cron started
    /// while the previous one still runs): nothing is wrong with it, try again later. Apart from
    /// 3 so that cron can tell an overlap from a store an operator must repair.
    Busy = 5,
    /// Interrupted (SIGINT/SIGTERM) after a clean shutdown.
    Interrupted = 130,
}

impl Exit {
    pub fn code(self) -> i32 {
        self as i32
    }

    /// The stable `error.code` of a fatal error that ends with this exit code, under `--json`
    /// and `--log-format json` (README "JSON output"). A config with diagnostics
    /// (`config_invalid`) and a bug (`bug`) have codes of their own, see [`Fatal`].
    pub fn error_code(self) -> &'static str {
        match self {
            Exit::Ok => "ok",
            Exit::Failure => "failure",
            Exit::Usage => "usage",
            Exit::Store => "store_unusable",
            Exit::Incomplete => "incomplete",
            Exit::Busy => "store_busy",
            Exit::Interrupted => "interrupted",
        }
    }
}

/// The whole contract, as `ferry --help` and `ferry(1)` show it: every code any command can end
/// with. Each command's help lists the codes it can return, with what they mean for it.
pub const EXIT_CODES: &[(i32, &str)] = &[
    (0, "done"),
    (1, "unexpected failure"),
    (2, "bad command line or config"),
    (3, "store unusable (needs migration, newer, damaged)"),
    (4, "work left undone (deliveries failed or unconfirmed at --timeout, range not finished)"),
    (5, "store busy: held by another ferry process (e.g. an overlapping cron run); try again later"),
    (130, "interrupted, after a clean shutdown"),
];

/// The `Exit codes:` block of a help text, one aligned line per code.
pub fn exit_codes_help(codes: &[(i32, &str)]) -> String {
    let mut text = String::from("Exit codes:");
    for (code, meaning) in codes {
        text.push_str(&format!("\n  {code:<4} {meaning}"));
    }
    text
}

/// An error that already knows its exit code, for the CLI layer's own refusals
/// (e.g. "refusing to migrate without a TTY and without --yes").
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct ExitError {
    pub exit: Exit,
    pub message: String,
}

impl ExitError {
    pub fn new(exit: Exit, message: impl Into<String>) -> Self {
        Self { exit, message: message.into() }
    }
}

/// How an error is shown on stderr.
#[derive(Debug)]
pub enum Shown<'a> {
    /// A config that cannot be used: every diagnostic, compiler style, then the summary line.
    Diagnostics(&'a ConfigError),
    /// An expected situation said plainly, one line (a refusal, a store the operator must act
    /// on, a bad command line): no report sections, no backtrace.
    Plain(String),
    /// A bug (a panic): said as one, with what panicked, so that it gets reported.
    Bug(String),
    /// Anything else: the whole report, every cause.
    Report,
}

/// The one reading of an error report: its exit code and how to print it. The first error in the
/// chain that carries a meaning decides both, so the two can never disagree.
pub fn classify(report: &eyre::Report) -> (Exit, Shown<'_>) {
    for cause in report.chain() {
        if let Some(e) = cause.downcast_ref::<ExitError>() {
            return (e.exit, Shown::Plain(e.to_string()));
        }
        if let Some(e) = cause.downcast_ref::<ConfigError>() {
            return (Exit::Usage, Shown::Diagnostics(e));
        }
        if let Some(e) = cause.downcast_ref::<tokio::task::JoinError>()
            && e.is_panic()
        {
            return (Exit::Failure, Shown::Bug(e.to_string()));
        }
        if let Some(e) = cause.downcast_ref::<StoreError>() {
            // A store the operator must act on is their situation, not a bug: the message says
            // what to do. A bug inside the store layer is still a bug.
            return store_exit(e);
        }
        if let Some(e) = cause.downcast_ref::<crate::engine::deliver::DeliverError>() {
            if let crate::engine::deliver::DeliverError::Store(store) = e {
                return store_exit(store);
            }
            if e.is_config() {
                return (Exit::Usage, Shown::Plain(e.to_string()));
            }
        }
        if let Some(e) = cause.downcast_ref::<crate::engine::ingest::IngestError>() {
            match e {
                crate::engine::ingest::IngestError::Store(store) => return store_exit(store),
                // A range the command line asked for that the store or the chain cannot give.
                crate::engine::ingest::IngestError::BadRange(_) => {
                    return (Exit::Usage, Shown::Plain(e.to_string()));
                }
                _ => {}
            }
        }
        if cause.downcast_ref::<clap::Error>().is_some() {
            return (Exit::Usage, Shown::Report);
        }
    }
    (Exit::Failure, Shown::Report)
}

/// A store error's exit code: busy (another ferry holds it, try later), unusable (the operator
/// must act), or a bug inside the store layer.
fn store_exit(e: &StoreError) -> (Exit, Shown<'_>) {
    match e {
        StoreError::Bug { .. } => (Exit::Failure, Shown::Bug(e.to_string())),
        StoreError::Locked { .. } => (Exit::Busy, Shown::Plain(e.to_string())),
        _ => (Exit::Store, Shown::Plain(e.to_string())),
    }
}

/// What a panic says, for the "this is a bug" line.
pub fn panic_text(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "a panic without a message".into())
}

/// A fatal error read once for every way it is shown: the exit code, a stable code for
/// scripts, one line of text, and a config's diagnostics when that is what it was.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Fatal {
    #[serde(skip)]
    pub exit: Exit,
    /// `config_invalid`, `bug`, or the [`Exit::error_code`] of the exit code.
    pub code: &'static str,
    /// One line: the error and its causes joined by `: `.
    pub message: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub diagnostics: Vec<crate::config::Diagnostic>,
}

impl Fatal {
    /// How `report` is said in one line and as JSON; the exit code is [`classify`]'s.
    pub fn from_report(report: &eyre::Report) -> Self {
        let (exit, shown) = classify(report);
        match shown {
            Shown::Diagnostics(config) => Fatal {
                exit,
                code: "config_invalid",
                message: config.to_string(),
                diagnostics: config.diagnostics.clone(),
            },
            Shown::Plain(message) => Fatal::new(exit, message),
            Shown::Bug(what) => Fatal::bug(&what),
            Shown::Report => Fatal::new(exit, one_line(report)),
        }
    }

    pub fn new(exit: Exit, message: impl Into<String>) -> Self {
        let message =
            message.into().lines().map(str::trim).filter(|l| !l.is_empty()).collect::<Vec<_>>().join(" ");
        Fatal { exit, code: exit.error_code(), message, diagnostics: Vec::new() }
    }

    /// A panic: exit 1, said as a bug.
    pub fn bug(what: &str) -> Self {
        Fatal { code: "bug", ..Fatal::new(Exit::Failure, format!("this is a bug in ferry: {what}")) }
    }
}

/// An error and its causes on one line, `outer: inner: root`, each said once.
pub fn one_line(report: &eyre::Report) -> String {
    let mut parts: Vec<String> = Vec::new();
    for cause in report.chain() {
        let text = cause.to_string();
        // A wrapper that repeats its cause's text adds nothing.
        if parts.last().is_none_or(|last| !last.contains(&text)) {
            parts.push(text);
        }
    }
    parts.join(": ")
}

/// The line printed for a bug: what happened, and what to do with it.
pub fn bug_line(what: &str) -> String {
    format!(
        "error: this is a bug in ferry: {what}\n  please report it with the command and the log; the store was left as the last commit wrote it"
    )
}
