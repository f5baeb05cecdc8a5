//! The command line: the clap definitions of ferry's commands, the flags they share, and
//! dispatch. Each command lives in its own file as `XArgs` with `async fn run(self, ctx)`.
//! Commands turn arguments into plain structs for the engine and the store, and return data that
//! `output` renders; nothing here decides what ferry does.

pub mod backfill;
pub mod chains;
pub mod check_config;
pub mod export;
pub mod filters;
pub mod generate;
pub mod inspect_store;
pub mod migrate;
pub mod monitor;
pub mod progress;
pub mod push;
pub mod watch;

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use clap::{ArgAction, Args, Parser, Subcommand, ValueEnum};
use tokio_util::sync::CancellationToken;

use crate::config::{self, ConfigError, Loaded};
use crate::exit::{EXIT_CODES, Exit, ExitError, exit_codes_help};
use crate::output::Output;
use crate::signals::{Reloads, Signals};
use crate::store::ReadStore;

const ABOUT: &str = "Watch EVM chains and SEDA batches, record them in one redb file, \
and deliver them to EVM chains and sinks exactly once in effect.";

const EXAMPLES: &str = "\
  ferry check-config                 check ferry.yaml offline
  ferry check-config --online        also talk to every chain's RPCs
  ferry watch                        run as a daemon: ingest and deliver continuously
  ferry push --json                  one-shot for cron: sync, deliver, wait, summarize
  ferry inspect-store summary        what the state file holds (works while watch runs)";

#[derive(Debug, Parser)]
#[command(
    name = "ferry",
    version = version(),
    about = ABOUT,
    after_help = after_help(EXAMPLES, EXIT_CODES),
    propagate_version = true,
    max_term_width = 100
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// Flags every command understands.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Global options")]
pub struct GlobalArgs {
    /// Config file.
    #[arg(
        short = 'c',
        long,
        global = true,
        env = "FERRY_CONFIG",
        default_value = "ferry.yaml",
        value_name = "FILE"
    )]
    pub config: PathBuf,

    /// State file; overrides `store:` in the config.
    #[arg(long, global = true, env = "FERRY_STORE", value_name = "FILE")]
    pub store: Option<PathBuf>,

    /// Log format on stderr.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// More log output (-v debug, -vv trace).
    #[arg(short, long, global = true, action = ArgAction::Count, conflicts_with = "quiet")]
    pub verbose: u8,

    /// Less log output (-q warnings only, -qq errors only).
    #[arg(short, long, global = true, action = ArgAction::Count)]
    pub quiet: u8,

    /// When to use colour.
    #[arg(long, global = true, value_enum, default_value_t = ColorChoice::Auto)]
    pub color: ColorChoice,

    /// Print results as JSON on stdout (logs stay on stderr).
    #[arg(long, global = true)]
    pub json: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ColorChoice {
    Auto,
    Always,
    Never,
}

impl ColorChoice {
    /// Whether to colour a stream, given whether it is a terminal. `NO_COLOR` turns `auto` off.
    pub fn enabled(self, is_terminal: bool) -> bool {
        match self {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => is_terminal && std::env::var_os("NO_COLOR").is_none(),
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    Watch(watch::WatchArgs),
    Push(push::PushArgs),
    Backfill(backfill::BackfillArgs),
    InspectStore(inspect_store::InspectStoreArgs),
    Export(export::ExportArgs),
    Migrate(migrate::MigrateArgs),
    CheckConfig(check_config::CheckConfigArgs),
    Completions(generate::CompletionsArgs),
    #[command(hide = true)]
    Generate(generate::GenerateArgs),
}

/// What every command gets besides its own arguments.
pub struct Ctx {
    pub global: GlobalArgs,
    pub cancel: CancellationToken,
    /// SIGHUP's reload requests; only `watch` subscribes.
    pub reloads: Reloads,
    pub out: Output,
}

impl Ctx {
    pub fn new(global: GlobalArgs, signals: &Signals) -> Self {
        let out = Output::new(global.json, global.color.enabled(std::io::stdout().is_terminal()));
        Self { global, cancel: signals.cancel.clone(), reloads: signals.reloads.clone(), out }
    }

    /// Loads and validates the config; any error-severity problem is a [`ConfigError`] (exit 2).
    pub fn load_config(&self) -> Result<Loaded, ConfigError> {
        config::load_and_validate(&self.global.config)
    }

    /// Loads the config for its names and paths only: variables it names that are not set are
    /// warnings, not errors (read-only commands need no secret). Never for running deliveries.
    pub fn load_config_without_env(&self) -> Result<Loaded, ConfigError> {
        config::load_without_env(&self.global.config)
    }

    /// The state file: `--store`, else the config's `store:`, else `ferry.redb` beside the config.
    pub fn store_path(&self, loaded: Option<&Loaded>) -> PathBuf {
        if let Some(path) = &self.global.store {
            return path.clone();
        }
        match loaded {
            Some(loaded) => loaded.store_path(),
            None => config_dir(&self.global.config).join("ferry.redb"),
        }
    }

    /// The state file for commands that do not need the config (inspect-store, export, migrate):
    /// `--store` wins; otherwise the config is read only to find `store:`, and a missing config
    /// file falls back to `ferry.redb` beside where it would be. The config's secrets are not
    /// needed for that: unset variables do not stop it.
    pub fn store_path_without_config(&self) -> Result<PathBuf, ConfigError> {
        if self.global.store.is_some() || !self.global.config.exists() {
            return Ok(self.store_path(None));
        }
        let loaded = self.load_config_without_env()?;
        Ok(self.store_path(Some(&loaded)))
    }

    /// The state file opened read-only for a command that only reads it (`inspect-store` views,
    /// `export`). A file a killed writer left unclean is read from a repaired copy, and the
    /// operator is told, once, on stderr.
    pub fn open_read_store(&self) -> eyre::Result<ReadStore> {
        let path = self.store_path_without_config()?;
        let store = ReadStore::open(&path)?;
        if store.is_recovered_copy() {
            tracing::warn!(
                store = %path.display(),
                "the store was not closed cleanly (a killed writer?): reading a recovered copy, \
                 the original is left as it is; figures may lag the last moments before the stop"
            );
        }
        Ok(store)
    }
}

fn config_dir(config: &Path) -> PathBuf {
    match config.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

impl Command {
    /// How long the command may take to stop cleanly after SIGINT/SIGTERM.
    pub fn stop_timeout(&self) -> std::time::Duration {
        match self {
            Command::Watch(args) => args.stop_timeout.0,
            Command::Push(args) => args.stop_timeout.0,
            _ => crate::signals::DEFAULT_STOP_TIMEOUT,
        }
    }

    /// When `main` drops the command after SIGINT/SIGTERM: at its stop timeout, or, for `watch`,
    /// which keeps the bound itself (and says what it abandoned), a grace later as a backstop.
    pub fn stop_backstop(&self) -> std::time::Duration {
        match self {
            Command::Watch(_) => self.stop_timeout() + crate::signals::BACKSTOP_GRACE,
            _ => self.stop_timeout(),
        }
    }
}

/// Runs one command to its end and says how the process should exit.
pub async fn dispatch(command: Command, ctx: Ctx) -> eyre::Result<Exit> {
    match command {
        Command::Watch(args) => args.run(&ctx).await,
        Command::Push(args) => args.run(&ctx).await,
        Command::Backfill(args) => args.run(&ctx).await,
        Command::InspectStore(args) => args.run(&ctx).await,
        Command::Export(args) => args.run(&ctx).await,
        Command::Migrate(args) => args.run(&ctx).await,
        Command::CheckConfig(args) => args.run(&ctx).await,
        Command::Completions(args) => args.run(&ctx),
        Command::Generate(args) => args.run(&ctx),
    }
}

/// The sources named with `--source`, or every source; at least one.
fn select_sources(loaded: &Loaded, names: &[String]) -> Result<Vec<crate::config::SourcePlan>, ExitError> {
    let plans = loaded.resolved.sources_named(names).map_err(|name| {
        if loaded.resolved.seda_sources.iter().any(|s| s.name == name) {
            return ExitError::new(
                Exit::Usage,
                format!(
                    "--source {name} is a seda source: backfill reads block ranges of evm sources; \
                     `ferry push` and `ferry watch` fetch its batches"
                ),
            );
        }
        let known: Vec<&str> = loaded.resolved.sources.iter().map(|s| s.name.as_str()).collect();
        ExitError::new(
            Exit::Usage,
            format!(
                "--source {name}: {} has no such source (it has: {})",
                loaded.file_name(),
                known.join(", ")
            ),
        )
    })?;
    if plans.is_empty() {
        return Err(ExitError::new(
            Exit::Usage,
            format!("{} has no `evm` source to read", loaded.file_name()),
        ));
    }
    Ok(plans)
}

/// What `--version` says: the release, the commit it was built from (`unknown` outside git)
/// and the store schema this ferry reads and writes.
pub fn version() -> String {
    format!(
        "{} (commit {}, store schema {})",
        env!("CARGO_PKG_VERSION"),
        env!("FERRY_COMMIT"),
        crate::store::tables::SCHEMA_VERSION
    )
}

/// The `after_help` of a command: its examples, then the exit codes it can end with and what
/// they mean for it.
///
/// Every example line is indented by two spaces here, whatever the source says: the examples
/// are written as `"\` string continuations, which drop the first line's leading spaces.
/// Other lines (notes after the examples) are kept as written.
fn after_help(examples: &str, codes: &[(i32, &str)]) -> String {
    let examples: Vec<String> = examples
        .lines()
        .map(|line| {
            let trimmed = line.trim_start();
            if trimmed.starts_with("ferry ") || trimmed == "ferry" {
                format!("  {trimmed}")
            } else {
                line.to_string()
            }
        })
        .collect();
    format!("Examples:\n{}\n\n{}", examples.join("\n"), exit_codes_help(codes))
}

/// Exit codes shared by the commands' help lists.
mod codes {
    pub const OK: (i32, &str) = (0, "done");
    pub const FAILURE: (i32, &str) =
        (1, "unexpected failure (a bug, an I/O error, an RPC that never answered)");
    pub const USAGE: (i32, &str) = (2, "bad command line or config");
    pub const STORE: (i32, &str) = (3, "store unusable (needs migration, newer, damaged)");
    pub const BUSY: (i32, &str) = (5, "store held by another ferry process (e.g. a running watch)");
    pub const INTERRUPTED: (i32, &str) = (130, "interrupted (SIGINT/SIGTERM), after a clean shutdown");
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn clap_definitions_are_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn global_flags_parse_after_the_command() {
        let cli = Cli::try_parse_from([
            "ferry",
            "check-config",
            "-c",
            "x.yaml",
            "--json",
            "-vv",
            "--color",
            "never",
        ])
        .expect("parses");
        assert_eq!(cli.global.config, PathBuf::from("x.yaml"));
        assert!(cli.global.json);
        assert_eq!(cli.global.verbose, 2);
        assert_eq!(cli.global.color, ColorChoice::Never);
    }

    #[test]
    fn verbose_and_quiet_conflict() {
        assert!(Cli::try_parse_from(["ferry", "-v", "-q", "check-config"]).is_err());
    }

    #[test]
    fn every_command_has_examples() {
        let cmd = Cli::command();
        for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
            let help = sub.get_after_help().map(|h| h.to_string()).unwrap_or_default();
            assert!(help.contains("Examples:"), "`ferry {}` has no examples", sub.get_name());
            assert!(help.contains("Exit codes:"), "`ferry {}` lists no exit codes", sub.get_name());
        }
    }
}
