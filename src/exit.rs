//! The exit-code contract shared by every command (DESIGN.md §9), in one place.
//!
//! Library errors carry their own meaning (a config error, a store error); `main` maps the first
//! one it finds in an error chain to a code with [`code_for`]. Nothing else in ferry calls
//! `std::process::exit`.

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
    /// The store is unusable: held by another writer, needs migration, newer, or damaged.
    Store = 3,
    /// Work left undone: deliveries failed or unconfirmed at `--timeout`, a range not finished.
    Incomplete = 4,
    /// Interrupted (SIGINT/SIGTERM) after a clean shutdown.
    Interrupted = 130,
}

impl Exit {
    pub fn code(self) -> i32 {
        self as i32
    }
}

/// The text `--help` and the man pages show for the contract.
pub const EXIT_CODES_HELP: &str = "\
Exit codes:
  0    done
  1    unexpected failure
  2    bad command line or config
  3    store unusable (held by another writer, needs migration, newer, damaged)
  4    work left undone (deliveries failed or unconfirmed at --timeout, range not finished)
  130  interrupted, after a clean shutdown";

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

/// The exit code for an error: the first error in the chain that carries a meaning decides.
pub fn code_for(report: &eyre::Report) -> Exit {
    for cause in report.chain() {
        if let Some(e) = cause.downcast_ref::<ExitError>() {
            return e.exit;
        }
        if cause.downcast_ref::<ConfigError>().is_some() {
            return Exit::Usage;
        }
        if cause.downcast_ref::<StoreError>().is_some() {
            return Exit::Store;
        }
        if let Some(e) = cause.downcast_ref::<crate::engine::deliver::DeliverError>()
            && e.is_config()
        {
            return Exit::Usage;
        }
        if cause.downcast_ref::<clap::Error>().is_some() {
            return Exit::Usage;
        }
    }
    Exit::Failure
}
