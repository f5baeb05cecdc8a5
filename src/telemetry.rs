//! Logs: a tracing subscriber writing text or JSON to stderr only, its level set by `-v`/`-q`,
//! and overridable with `FERRY_LOG` (an `EnvFilter` directive such as `ferry=debug,alloy=warn`).
//!
//! Under `--log-format json` every stderr line is one JSON object with flat top-level fields
//! (`timestamp`, `level`, `message`, the event's own fields, `target`): no nested `fields` or
//! `span` objects, and numbers logged as numbers stay JSON numbers. A fatal error is one more such
//! line ([`fatal_lines`]), written by `main` after the subscriber has done its work.

use tracing_subscriber::EnvFilter;

use crate::cli::{GlobalArgs, LogFormat};
use crate::exit::Fatal;

/// The variable that overrides the log filter.
pub const LOG_ENV: &str = "FERRY_LOG";

/// Sets the global subscriber. Called once, by `main`.
pub fn init(global: &GlobalArgs, ansi: bool) {
    let level = match (global.verbose, global.quiet) {
        (0, 0) => "info",
        (1, _) => "debug",
        (v, _) if v >= 2 => "trace",
        (_, 1) => "warn",
        _ => "error",
    };
    // Our own crate at the chosen level; dependencies one notch quieter unless asked.
    let default = format!("{level},ferry={level},alloy=warn,hyper=warn,reqwest=warn");
    let filter = EnvFilter::try_from_env(LOG_ENV).unwrap_or_else(|_| EnvFilter::new(default));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    // Failing to install means one is already set (tests); keep the existing one.
    let _ = match global.log_format {
        LogFormat::Json => {
            builder.json().flatten_event(true).with_current_span(false).with_span_list(false).try_init()
        }
        LogFormat::Text => builder.with_ansi(ansi).with_target(false).try_init(),
    };
}

/// A fatal error as JSON log lines, shaped like the subscriber's: one line per config
/// diagnostic (so that each stays flat), then the error itself with its `code` and `exit`.
pub fn fatal_lines(fatal: &Fatal) -> Vec<String> {
    let timestamp = humantime::format_rfc3339_micros(std::time::SystemTime::now()).to_string();
    let mut lines = Vec::new();
    for d in &fatal.diagnostics {
        let level = match d.severity {
            crate::config::Severity::Error => "ERROR",
            crate::config::Severity::Warning => "WARN",
        };
        lines.push(
            serde_json::json!({
                "timestamp": timestamp,
                "level": level,
                "message": d.message,
                "file": d.file,
                "line": d.line,
                "column": d.column,
                "key": d.key,
                "suggestion": d.suggestion,
                "target": "ferry",
            })
            .to_string(),
        );
    }
    lines.push(
        serde_json::json!({
            "timestamp": timestamp,
            "level": "ERROR",
            "message": fatal.message,
            "code": fatal.code,
            "exit": fatal.exit.code(),
            "target": "ferry",
        })
        .to_string(),
    );
    lines
}
