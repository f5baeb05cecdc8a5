//! Logs: a tracing subscriber writing text or JSON to stderr only, its level set by `-v`/`-q`,
//! and overridable with `FERRY_LOG` (an `EnvFilter` directive such as `ferry=debug,alloy=warn`).

use tracing_subscriber::EnvFilter;

use crate::cli::{GlobalArgs, LogFormat};

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
    let filter = EnvFilter::try_from_env("FERRY_LOG").unwrap_or_else(|_| EnvFilter::new(default));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    // Failing to install means one is already set (tests); keep the existing one.
    let _ = match global.log_format {
        LogFormat::Json => builder.json().with_current_span(true).try_init(),
        LogFormat::Text => builder.with_ansi(ansi).with_target(false).try_init(),
    };
}
