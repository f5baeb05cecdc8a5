//! `ferry check-config`: validates the config offline (every problem at once, with file, line,
//! column and key), and with `--online` also asks every chain whether the config matches it.

use clap::Args;
use serde::Serialize;

use super::{Ctx, after_help, codes};
use crate::config::{Diagnostic, Loaded, Severity};
use crate::engine::preflight::{self, OnlineReport};
use crate::exit::Exit;
use crate::output::{Output, Paint, Render};

/// Check the config: offline by default, against the chains with --online.
#[derive(Debug, Args)]
#[command(after_help = after_help("\
  ferry check-config                     every problem in ferry.yaml, with line and key
  ferry check-config -c prod.yaml --json diagnostics as JSON, for CI
  ferry check-config --online            also check chain ids, code, balances, RPC latency
  ferry check-config --no-env            in CI, without secrets: unset variables are warnings", &[(0, "the config is usable (warnings allowed)"), codes::FAILURE, (2, "the config has errors (with --online: the chains disagree with it)")]))]
pub struct CheckConfigArgs {
    /// Also connect to every chain: chain id per RPC URL, contract code, signer balance, latency.
    #[arg(long, conflicts_with = "no_env")]
    pub online: bool,
    /// Check without the environment's secrets (in CI): a variable the config names that is not
    /// set is a warning naming it and its key, not an error, and what it stands for is not checked.
    #[arg(long)]
    pub no_env: bool,
}

impl CheckConfigArgs {
    pub async fn run(self, ctx: &Ctx) -> eyre::Result<Exit> {
        let file = ctx.global.config.display().to_string();
        let loaded = if self.no_env { ctx.load_config_without_env() } else { ctx.load_config() };
        let loaded = match loaded {
            Ok(loaded) => loaded,
            Err(error) => {
                let report = CheckReport { file, ok: false, diagnostics: error.diagnostics, online: None };
                ctx.out.emit(&report)?;
                return Ok(Exit::Usage);
            }
        };
        let mut report = CheckReport { file, ok: true, diagnostics: loaded.warnings.clone(), online: None };
        // A keystore opens only with its password: a wrong one is found now, not at start-up.
        let keystores = tokio::task::block_in_place(|| crate::config::signer::check_keystores(&loaded));
        if !keystores.is_empty() {
            report.ok = false;
            report.diagnostics.extend(keystores);
            ctx.out.emit(&report)?;
            return Ok(Exit::Usage);
        }
        if self.online {
            let clients = crate::engine::rpc::clients(&loaded.resolved.chains)?;
            let online = preflight::check(&loaded.resolved, &clients, &ctx.cancel).await;
            report.diagnostics.extend(online.findings().map(|f| finding_diagnostic(&loaded, f)));
            report.ok = !online.has_errors();
            report.online = Some(online);
        }
        ctx.out.emit(&report)?;
        Ok(if report.ok { Exit::Ok } else { Exit::Usage })
    }
}

/// An online finding placed at the line of the key it is about.
fn finding_diagnostic(loaded: &Loaded, f: &preflight::Finding) -> Diagnostic {
    let (line, column) = loaded.position(&f.key).unwrap_or((0, 0));
    Diagnostic {
        file: loaded.file_name(),
        line,
        column,
        key: f.key.clone(),
        severity: f.severity,
        message: f.message.clone(),
        suggestion: None,
    }
}

#[derive(Debug, Serialize)]
struct CheckReport {
    file: String,
    ok: bool,
    diagnostics: Vec<Diagnostic>,
    #[serde(skip_serializing_if = "Option::is_none")]
    online: Option<OnlineReport>,
}

impl Render for CheckReport {
    fn kind(&self) -> &'static str {
        "check-config"
    }

    fn human(&self, out: &Output) -> String {
        let mut text = String::new();
        if let Some(online) = &self.online {
            text.push_str(&online_tables(online, out));
        }
        if !self.diagnostics.is_empty() {
            let mut table = out.table(["where", "key", "severity", "problem", "fix"]);
            for d in &self.diagnostics {
                let severity = match d.severity {
                    Severity::Error => out.paint("error", Paint::Red),
                    Severity::Warning => out.paint("warning", Paint::Yellow),
                };
                table.add_row([
                    format!("{}:{}:{}", d.file, d.line, d.column),
                    d.key.clone(),
                    severity,
                    d.message.clone(),
                    d.suggestion.clone().unwrap_or_default(),
                ]);
            }
            text.push_str(&format!("{table}\n"));
        }
        let errors = self.diagnostics.iter().filter(|d| d.severity == Severity::Error).count();
        let warnings = self.diagnostics.len() - errors;
        let verdict = if self.ok { out.paint("ok", Paint::Green) } else { out.paint("not ok", Paint::Red) };
        text.push_str(&format!("{}: {verdict} ({errors} error(s), {warnings} warning(s))\n", self.file));
        text
    }
}

fn online_tables(online: &OnlineReport, out: &Output) -> String {
    let mut rpcs = out.table(["chain", "rpc", "chain id", "head", "latency"]);
    let mut contracts = out.table(["chain", "key", "address", "code"]);
    let mut signers = out.table(["chain", "signer", "balance (ETH)", "minimum (ETH)"]);
    let dash = || "-".to_string();
    for chain in &online.chains {
        for rpc in &chain.rpcs {
            let id = match rpc.chain_id {
                Some(id) if id != chain.chain_id => {
                    out.paint(&format!("{id} (want {})", chain.chain_id), Paint::Red)
                }
                Some(id) => id.to_string(),
                None => out.paint("unreachable", Paint::Red),
            };
            rpcs.add_row([
                chain.chain.clone(),
                rpc.url.clone(),
                id,
                rpc.head.map_or_else(dash, |h| h.to_string()),
                rpc.latency_ms.map_or_else(dash, |ms| format!("{ms:.1} ms")),
            ]);
        }
        for c in &chain.contracts {
            let code = match c.has_code {
                Some(true) => out.paint("yes", Paint::Green),
                Some(false) => out.paint("none", Paint::Red),
                None => dash(),
            };
            contracts.add_row([chain.chain.clone(), c.key.clone(), c.address.to_string(), code]);
        }
        if let Some(s) = &chain.signer {
            let ether =
                |wei: &str| wei.parse().map(preflight::format_ether).unwrap_or_else(|_| wei.to_string());
            signers.add_row([
                chain.chain.clone(),
                s.address.map_or_else(dash, |a| a.to_string()),
                s.balance_wei.as_deref().map_or_else(dash, ether),
                ether(&s.min_balance_wei),
            ]);
        }
    }
    let mut text = format!("{rpcs}\n");
    if !online.apis.is_empty() {
        let mut apis = out.table(["source", "batching API", "latest signed", "latency"]);
        for api in &online.apis {
            apis.add_row([
                api.source.clone(),
                api.url.clone(),
                match (api.reachable, api.latest_signed) {
                    (false, _) => out.paint("unreachable", Paint::Red),
                    (true, Some(n)) => n.to_string(),
                    (true, None) => "none yet".into(),
                },
                api.latency_ms.map_or_else(dash, |ms| format!("{ms:.1} ms")),
            ]);
        }
        text.push_str(&format!("{apis}\n"));
    }
    if !online.sinks.is_empty() {
        let mut sinks = out.table(["target", "kind", "sink", "latency"]);
        for sink in &online.sinks {
            sinks.add_row([
                sink.target.clone(),
                sink.kind.to_string(),
                if sink.reachable { sink.detail.clone() } else { out.paint(&sink.detail, Paint::Red) },
                sink.latency_ms.map_or_else(dash, |ms| format!("{ms:.1} ms")),
            ]);
        }
        text.push_str(&format!("{sinks}\n"));
    }
    if !contracts.is_empty() {
        text.push_str(&format!("{contracts}\n"));
    }
    if !signers.is_empty() {
        text.push_str(&format!("{signers}\n"));
    }
    text
}
