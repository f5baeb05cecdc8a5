//! `ferry watch`: the daemon. Ingests every source and delivers to every target continuously
//! until SIGINT/SIGTERM.

use std::net::SocketAddr;

use clap::Args;

use super::{Ctx, after_help, not_built};
use crate::exit::Exit;

/// Run as a daemon: follow every source and deliver to every target until stopped.
#[derive(Debug, Args)]
#[command(after_help = after_help("\
  ferry watch                               follow everything in ferry.yaml
  ferry watch -c prod.yaml --log-format json
  ferry watch --metrics-addr 127.0.0.1:9464 serve Prometheus /metrics, /healthz, /readyz"))]
pub struct WatchArgs {
    /// Serve Prometheus metrics and health checks on this address.
    #[arg(long, value_name = "ADDR")]
    pub metrics_addr: Option<SocketAddr>,
}

impl WatchArgs {
    pub async fn run(self, ctx: &Ctx) -> eyre::Result<Exit> {
        // Validate what we can, so a bad config is still exit 2 rather than "not built".
        ctx.load_config()?;
        Err(not_built("`ferry watch` (continuous ingest and delivery)", "EVM ingest and delivery issues"))
    }
}
