//! What `watch` serves to monitoring: Prometheus `/metrics`, `/healthz` (200 while the process
//! lives) and `/readyz` (200 `ready`, or 503 with one reason per line), on one small hyper HTTP/1
//! server. It reads only the engine's board and the metrics recorder, both process-wide, so it
//! starts once, before any source or worker, and keeps answering whatever they do (a stuck
//! chain, a restarted generation of workers).
//!
//! Without an address nothing listens and no recorder is installed; the board is enabled all the
//! same, since the per-chain heartbeat reads it.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::config::HealthPlan;
use crate::engine::observe::{self, ready};
use crate::exit::{Exit, ExitError};

/// Enables the board and, with an address, serves the endpoints until `cancel`; the address
/// actually bound (port 0 picks a free one). A port that cannot be bound is a bad command line
/// or config (exit 2), said before anything else starts.
pub async fn start(
    addr: Option<SocketAddr>,
    store_path: PathBuf,
    health: &HealthPlan,
    cancel: CancellationToken,
) -> eyre::Result<Option<SocketAddr>> {
    // Set again by a reload, so the server reads them from the board on each request.
    observe::enable().set_thresholds(ready::Thresholds::from(health));
    let Some(addr) = addr else { return Ok(None) };
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|e| ExitError::new(Exit::Usage, format!("cannot listen on {addr} for /metrics: {e}")))?;
    let bound = listener.local_addr()?;
    let handle = PrometheusBuilder::new()
        .set_buckets(&observe::LATENCY_BUCKETS)
        .and_then(PrometheusBuilder::install_recorder)
        .map_err(|e| eyre::eyre!("cannot install the metrics recorder: {e}"))?;
    observe::set_recording();
    observe::describe();
    let shared = Arc::new(Shared { handle, store_path });
    tokio::spawn(accept(listener, shared, cancel));
    tracing::info!(addr = %bound, "serving /metrics, /healthz and /readyz");
    Ok(Some(bound))
}

struct Shared {
    handle: PrometheusHandle,
    store_path: PathBuf,
}

async fn accept(listener: TcpListener, shared: Arc<Shared>, cancel: CancellationToken) {
    loop {
        let stream = tokio::select! {
            _ = cancel.cancelled() => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                // Out of file descriptors and the like: say so, and keep serving.
                Err(e) => {
                    tracing::warn!(error = %e, "metrics server: cannot accept a connection");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let (shared, cancel) = (shared.clone(), cancel.clone());
        tokio::spawn(async move {
            let service = service_fn(move |req| answer(req, shared.clone()));
            let connection = http1::Builder::new().serve_connection(TokioIo::new(stream), service);
            tokio::select! {
                _ = cancel.cancelled() => {}
                result = connection => {
                    if let Err(e) = result {
                        tracing::debug!(error = %e, "metrics server: connection");
                    }
                }
            }
        });
    }
}

async fn answer(req: Request<Incoming>, shared: Arc<Shared>) -> Result<Response<Full<Bytes>>, Infallible> {
    const TEXT: &str = "text/plain; charset=utf-8";
    let (status, content_type, body) = match (req.method(), req.uri().path()) {
        (&Method::GET | &Method::HEAD, "/metrics") => {
            (StatusCode::OK, "text/plain; version=0.0.4; charset=utf-8", shared.render())
        }
        (&Method::GET | &Method::HEAD, "/healthz") => (StatusCode::OK, TEXT, "ok\n".to_string()),
        (&Method::GET | &Method::HEAD, "/readyz") => match readiness() {
            ready::Readiness::Ready => (StatusCode::OK, TEXT, "ready\n".to_string()),
            ready::Readiness::NotReady(reasons) => {
                (StatusCode::SERVICE_UNAVAILABLE, TEXT, format!("{}\n", reasons.join("\n")))
            }
        },
        (_, "/metrics" | "/healthz" | "/readyz") => {
            (StatusCode::METHOD_NOT_ALLOWED, TEXT, "GET only\n".to_string())
        }
        _ => (StatusCode::NOT_FOUND, TEXT, "not found: /metrics, /healthz or /readyz\n".to_string()),
    };
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    if let Ok(value) = hyper::header::HeaderValue::from_str(content_type) {
        response.headers_mut().insert(hyper::header::CONTENT_TYPE, value);
    }
    Ok(response)
}

fn readiness() -> ready::Readiness {
    match observe::board() {
        Some(board) => board.readiness(),
        None => ready::Readiness::NotReady(vec!["starting: nothing reports yet".into()]),
    }
}

impl Shared {
    /// The exposition text, with the gauges that are ages and sizes set as of now.
    fn render(&self) -> String {
        observe::refresh_ages();
        if let Ok(meta) = std::fs::metadata(&self.store_path) {
            metrics::gauge!(observe::STORE_SIZE).set(meta.len() as f64);
        }
        self.handle.run_upkeep();
        self.handle.render()
    }
}
