//! `ferry watch`: the daemon. Follows every source from its cursor to the head and on, and next to
//! them runs one delivery worker per destination chain (and per sink target), continuously; a
//! chain whose RPC fails backs off alone, a source that fails for good (a reorg deeper than its
//! window) stops alone while the others go on.
//!
//! Sources and workers run as a [`Generation`] of one config:
//! - **SIGHUP** reloads the config: the file is loaded and validated again, and made ready
//!   (clients, signers, targets) before anything stops. A config that cannot be used is one WARN
//!   saying why, and the generation running goes on untouched. A usable one ends the running
//!   generation (each source finishes its range, each worker its round) and starts the next from
//!   the new config; state stays in the store, and what was in flight is reconciled by the new
//!   workers as after a restart. An unchanged config (logrotate's SIGHUP) changes nothing.
//! - **SIGINT/SIGTERM** end the last generation within `--stop-timeout`; what still runs then is
//!   dropped and named, and the process exits 130.
//!
//! What outlives generations (the store, and servers such as metrics or a control socket) is set
//! up in [`WatchArgs::run`] before the first one starts.

mod generation;

use std::io::IsTerminal;
use std::sync::Arc;

use clap::Args;

use self::generation::{Ended, Generation, Prepared};
use super::progress::Style;
use super::push::parse_duration;
use super::{Ctx, after_help, codes};
use crate::config::values::Duration;
use crate::config::{ConfigError, Loaded};
use crate::engine::operator::{Registry, server};
use crate::exit::{Exit, ExitError};
use crate::store::Store;

/// Run as a daemon: follow every source and deliver to every target until stopped.
///
/// SIGHUP reloads the config (`kill -HUP <pid>`, `systemctl reload ferry`): an invalid one is a
/// warning and the running one goes on. SIGINT/SIGTERM stop cleanly within --stop-timeout.
#[derive(Debug, Args)]
#[command(after_help = after_help("\
  ferry watch                               follow everything in ferry.yaml
  ferry watch -c prod.yaml --log-format json
  ferry watch --metrics-addr 127.0.0.1:9187 serve /metrics, /healthz and /readyz
  ferry watch --stop-timeout 30s            give a clean stop 30s before dropping what runs", &[codes::FAILURE, codes::USAGE, codes::STORE, codes::BUSY, codes::INTERRUPTED]))]
pub struct WatchArgs {
    /// After SIGINT/SIGTERM (or on a reload), stop within this long: sources finish their range
    /// and workers their round until then; what still runs after it is dropped (exit 130).
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub stop_timeout: Duration,
    /// Serve Prometheus /metrics, /healthz and /readyz on this address (host:port); overrides
    /// `health.metrics_addr`.
    #[arg(long, value_name = "ADDR", value_parser = crate::config::health::parse_addr)]
    pub metrics_addr: Option<std::net::SocketAddr>,
}

impl WatchArgs {
    pub async fn run(self, ctx: &Ctx) -> eyre::Result<Exit> {
        // Listening before anything else: a SIGHUP from here on is a reload, none is lost.
        let mut reloads = ctx.reloads.subscribe();
        let loaded = ctx.load_config()?;
        if let Some(why) = unwatchable(&loaded) {
            return Err(ExitError::new(Exit::Usage, why).into());
        }
        let store_path = ctx.store_path(Some(&loaded));
        let store = Arc::new(Store::create_or_open(&store_path, Some(loaded.fingerprint()))?);
        // Servers that outlive generations start here, once. Monitoring reads what sources and
        // workers report, whatever generation runs.
        let health = &loaded.resolved.health;
        let addr = self.metrics_addr.or(health.metrics_addr);
        super::monitor::start(addr, store.path().to_path_buf(), health, ctx.cancel.clone()).await?;
        // Operators' actions reach the workers through the control socket beside the store;
        // workers of every generation register in the one registry.
        let registry = Registry::default();
        let _control = server::start_or_warn(&store, &registry);
        let style =
            if std::io::stderr().is_terminal() && !ctx.global.json { Style::Live } else { Style::Log };
        let bound = self.stop_timeout.0;

        let mut prepared = Prepared::new(loaded, &store)?;
        let mut listening = true;
        let ended = loop {
            let fingerprint = prepared.loaded.fingerprint().to_string();
            let current = prepared.loaded.clone();
            let mut generation = Generation::start(prepared, &store, &ctx.cancel, style, &registry).await?;
            let next = loop {
                if generation.must_end() {
                    break None;
                }
                tokio::select! {
                    () = generation.step() => {}
                    () = ctx.cancel.cancelled() => break None,
                    changed = reloads.changed(), if listening => {
                        if changed.is_err() {
                            // No sender, no reloads: nothing to listen for.
                            listening = false;
                            continue;
                        }
                        if let Some(next) = reload(ctx, &store, &current) {
                            break Some(next);
                        }
                    }
                }
            };
            let ended = generation.end(bound).await;
            let Some(next) = next else { break ended };
            if failed(&ended) || ctx.cancel.is_cancelled() {
                break ended;
            }
            store.set_config_fingerprint(next.loaded.fingerprint())?;
            next.observe();
            tracing::info!(from = %fingerprint, to = %next.loaded.fingerprint(), "config reloaded");
            prepared = next;
        };
        finish(ended, ctx)
    }
}

/// Why a config cannot be watched, if it cannot.
fn unwatchable(loaded: &Loaded) -> Option<String> {
    let r = &loaded.resolved;
    (r.sources.is_empty() && r.seda_sources.is_empty())
        .then(|| format!("{} has no source to watch", loaded.file_name()))
}

/// Whether a generation ended on a failure that ends the command (not on a reload's stop).
fn failed(ended: &Ended) -> bool {
    ended.store_error.is_some() || !matches!(ended.delivered, Ok(Ok(_)))
}

/// A SIGHUP: the new config, ready to run, or `None` (said in one WARN) when it cannot be used
/// or is the one running.
fn reload(ctx: &Ctx, store: &Store, current: &Loaded) -> Option<Prepared> {
    let refuse = |why: String| {
        tracing::warn!("SIGHUP: not reloading, the running config stays: {why}");
        None
    };
    let loaded = match ctx.load_config() {
        Ok(loaded) => loaded,
        Err(e) => return refuse(compact(&e)),
    };
    if loaded.fingerprint() == current.fingerprint() {
        tracing::info!("SIGHUP: the config is unchanged, nothing to reload");
        return None;
    }
    if let Some(why) = unwatchable(&loaded) {
        return refuse(why);
    }
    let path = ctx.store_path(Some(&loaded));
    if path != store.path() {
        return refuse(format!(
            "the store would move to {}; a running watch keeps {} (restart it to change stores)",
            path.display(),
            store.path().display()
        ));
    }
    let changes = Changes::between(current, &loaded);
    match Prepared::new(loaded, store) {
        Ok(prepared) => {
            tracing::info!(
                added = ?changes.added,
                removed = ?changes.removed,
                "SIGHUP: the new config is valid, switching to it"
            );
            Some(prepared)
        }
        Err(e) => refuse(format!("{e:#}")),
    }
}

/// A config's problems on one line: `file:line:col: key: message; …`.
fn compact(e: &ConfigError) -> String {
    let problems: Vec<String> = e
        .diagnostics
        .iter()
        .filter(|d| d.severity == crate::config::Severity::Error)
        .map(|d| {
            let place =
                if d.line == 0 { d.file.clone() } else { format!("{}:{}:{}", d.file, d.line, d.column) };
            let key = if d.key.is_empty() { String::new() } else { format!("{}: ", d.key) };
            format!("{place}: {key}{}", d.message)
        })
        .collect();
    format!("{e}: {}", problems.join("; "))
}

/// Names of chains, sources and targets a reload adds and removes, for its log line.
#[derive(Debug, Default, PartialEq)]
struct Changes {
    added: Vec<String>,
    removed: Vec<String>,
}

impl Changes {
    fn between(old: &Loaded, new: &Loaded) -> Self {
        let names = |l: &Loaded| -> std::collections::BTreeSet<String> {
            let c = &l.config;
            c.chains
                .keys()
                .map(|n| format!("chain {n}"))
                .chain(c.sources.keys().map(|n| format!("source {n}")))
                .chain(c.targets.keys().map(|n| format!("target {n}")))
                .collect()
        };
        let (old, new) = (names(old), names(new));
        Changes {
            added: new.difference(&old).cloned().collect(),
            removed: old.difference(&new).cloned().collect(),
        }
    }
}

/// How the command ends, from how its last generation ended.
fn finish(ended: Ended, ctx: &Ctx) -> eyre::Result<Exit> {
    // A panicked worker is a bug (exit 1); a store that failed under delivery is exit 3.
    let statuses = ended.delivered??;
    for (chain, s) in &statuses {
        tracing::info!(chain = %chain, confirmed = s.counts.confirmed, left = s.counts.left(), txs = s.sent_txs, "delivery stopped");
    }
    if let Some(e) = ended.store_error {
        return Err(e.into());
    }
    if !ctx.cancel.is_cancelled() {
        return Err(ExitError::new(
            Exit::Failure,
            format!("every source stopped: {}", ended.stopped.join("; ")),
        )
        .into());
    }
    Ok(if ended.stopped.is_empty() { Exit::Ok } else { Exit::Failure })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Diagnostic, Severity};

    fn diagnostic(line: usize, key: &str, severity: Severity, message: &str) -> Diagnostic {
        Diagnostic {
            file: "ferry.yaml".into(),
            line,
            column: 3,
            key: key.into(),
            severity,
            message: message.into(),
            suggestion: Some("a hint".into()),
        }
    }

    #[test]
    fn a_refused_reload_says_every_error_on_one_line_and_leaves_warnings_out() {
        let error = ConfigError {
            path: "ferry.yaml".into(),
            diagnostics: vec![
                diagnostic(4, "chains.d1.rpc", Severity::Error, "not a URL"),
                diagnostic(9, "routes[0]", Severity::Warning, "routed twice"),
                diagnostic(0, "", Severity::Error, "cannot read the config file"),
            ],
        };
        let line = compact(&error);
        assert_eq!(
            line,
            "config ferry.yaml has 3 problem(s): ferry.yaml:4:3: chains.d1.rpc: not a URL; \
             ferry.yaml: cannot read the config file"
        );
        assert!(!line.contains('\n'));
    }
}
