//! The SEDA chain's batching REST API, with the discipline of the RPC client: several URLs tried
//! in order (failover), a timeout per request, retries with backoff and jitter on transport
//! errors, 5xx, 429 and bodies that are not JSON, and a rate limit.
//!
//! What the API says is sorted from how it said it: a batch (signed or not yet), "not found",
//! or a field that does not decode. Only the transport is retried here; what a batch means is
//! the source's to decide.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::config::SedaSourcePlan;
use crate::config::secrets::mask_url;
use crate::engine::rpc::{RateLimiter, backoff, transport_text};
use crate::seda::wire::{self, BatchAnswer, WireError};

/// Tries of one request over all URLs before it fails (each try goes through every URL in order).
const TRIES: u32 = 3;
const BACKOFF_BASE: Duration = Duration::from_millis(250);
const BACKOFF_MAX: Duration = Duration::from_secs(5);

/// What the API answered for one batch number.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(
    clippy::large_enum_variant,
    reason = "one answer per request, consumed at once: boxing the batch would buy nothing"
)]
pub enum Fetched {
    Answer(BatchAnswer),
    /// No such batch: past the head, or pruned.
    NotFound,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    /// The transport failed on every URL, every try: what the last one said.
    #[error("the batching API did not answer ({url}: {detail})")]
    Unreachable { url: String, detail: String },
    /// An answer that decoded as JSON but not as a batch: the field and what is wrong.
    #[error("{url} answered a batch that does not decode: {error}")]
    Field { url: String, error: WireError },
}

/// The client of one `seda` source; cheap to clone.
#[derive(Clone)]
pub struct SedaApi {
    inner: Arc<Inner>,
}

struct Inner {
    urls: Vec<String>,
    http: reqwest::Client,
    limiter: RateLimiter,
    requests: AtomicU64,
    errors: AtomicU64,
}

impl std::fmt::Debug for SedaApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let urls: Vec<String> = self.inner.urls.iter().map(|u| mask_url(u)).collect();
        f.debug_struct("SedaApi").field("urls", &urls).finish()
    }
}

/// One answer as received: status and body.
struct Raw {
    status: u16,
    body: Vec<u8>,
    url: String,
}

impl SedaApi {
    pub fn new(plan: &SedaSourcePlan) -> Result<Self, reqwest::Error> {
        let http = reqwest::Client::builder()
            .timeout(plan.request_timeout)
            .connect_timeout(plan.request_timeout.min(Duration::from_secs(5)))
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Ok(Self {
            inner: Arc::new(Inner {
                urls: plan.urls.clone(),
                http,
                limiter: RateLimiter::new(plan.rate_limit),
                requests: AtomicU64::new(0),
                errors: AtomicU64::new(0),
            }),
        })
    }

    /// Requests made and failed so far.
    pub fn counts(&self) -> (u64, u64) {
        (self.inner.requests.load(Ordering::Relaxed), self.inner.errors.load(Ordering::Relaxed))
    }

    /// Batch `number`.
    pub async fn batch(&self, number: u64) -> Result<Fetched, ApiError> {
        self.fetch_batch(&format!("/seda-chain/batching/batch/{number}")).await
    }

    /// The highest signed batch; `NotFound` when there is none.
    pub async fn latest_signed(&self) -> Result<Fetched, ApiError> {
        self.fetch_batch("/seda-chain/batching/batch/0?latest_signed=true").await
    }

    /// `num_batches_to_keep`, to say why a batch is gone; `None` when the API does not say.
    pub async fn num_batches_to_keep(&self) -> Option<u64> {
        let raw = self.get("/seda-chain/batching/params").await.ok()?;
        if raw.status != 200 {
            return None;
        }
        wire::parse_num_batches_to_keep(&raw.body).ok()
    }

    /// One request to URL `index` for the latest signed batch, without retries (for
    /// `check-config --online`): its number (`None`: none signed yet) or what went wrong.
    pub async fn probe_latest(&self, index: usize) -> Result<Option<u64>, String> {
        let url = self.inner.urls.get(index).ok_or("no such URL")?;
        let response = self
            .inner
            .http
            .get(format!("{url}/seda-chain/batching/batch/0?latest_signed=true"))
            .send()
            .await
            .map_err(|e| transport_text(&e))?;
        let status = response.status().as_u16();
        let body = response.bytes().await.map_err(|e| transport_text(&e))?;
        if status != 200 {
            if wire::is_not_found(status, &body) {
                return Ok(None);
            }
            return Err(format!("HTTP {status}: {}", preview(&body)));
        }
        match wire::parse_batch(&body) {
            Ok(BatchAnswer::Signed(b)) => Ok(Some(b.header.number)),
            Ok(BatchAnswer::Unsigned { .. }) => Ok(None),
            Err(e) => Err(format!("the answer is not a batch: {e}")),
        }
    }

    async fn fetch_batch(&self, path: &str) -> Result<Fetched, ApiError> {
        let raw = self.get(path).await?;
        if raw.status != 200 {
            // `get` returns only answers it will not retry: "not found", or another 4xx.
            if wire::is_not_found(raw.status, &raw.body) {
                return Ok(Fetched::NotFound);
            }
            return Err(ApiError::Unreachable {
                url: raw.url,
                detail: format!("HTTP {}: {}", raw.status, preview(&raw.body)),
            });
        }
        match wire::parse_batch(&raw.body) {
            Ok(answer) => Ok(Fetched::Answer(answer)),
            Err(error) => Err(ApiError::Field { url: raw.url, error }),
        }
    }

    /// GET `path`, over every URL in order, `TRIES` times, with backoff between rounds. Returns a
    /// 200 with a JSON body, or an error answer that retrying will not change (a 4xx other than
    /// 408/429, or a "not found"); retries the rest.
    async fn get(&self, path: &str) -> Result<Raw, ApiError> {
        let mut last = None;
        for round in 1..=TRIES {
            for url in &self.inner.urls {
                self.rate_limit().await;
                self.inner.requests.fetch_add(1, Ordering::Relaxed);
                let shown = mask_url(url);
                match self.inner.http.get(format!("{url}{path}")).send().await {
                    Ok(response) => {
                        let status = response.status().as_u16();
                        let body = match response.bytes().await {
                            Ok(b) => b.to_vec(),
                            Err(e) => {
                                self.inner.errors.fetch_add(1, Ordering::Relaxed);
                                last = Some((shown, transport_text(&e)));
                                continue;
                            }
                        };
                        let raw = Raw { status, body, url: shown.clone() };
                        if status == 200 && serde_json::from_slice::<serde::de::IgnoredAny>(&raw.body).is_ok()
                        {
                            return Ok(raw);
                        }
                        if status != 200 && wire::is_not_found(status, &raw.body) {
                            return Ok(raw);
                        }
                        self.inner.errors.fetch_add(1, Ordering::Relaxed);
                        let retryable = status == 200 || status == 408 || status == 429 || status >= 500;
                        if !retryable {
                            return Ok(raw);
                        }
                        let detail = if status == 200 {
                            format!("the answer is not JSON: {}", preview(&raw.body))
                        } else {
                            format!("HTTP {status}: {}", preview(&raw.body))
                        };
                        last = Some((shown, detail));
                    }
                    Err(e) => {
                        self.inner.errors.fetch_add(1, Ordering::Relaxed);
                        last = Some((shown, transport_text(&e)));
                    }
                }
            }
            if round < TRIES {
                tokio::time::sleep(backoff(BACKOFF_BASE, BACKOFF_MAX, round)).await;
            }
        }
        let (url, detail) = last.unwrap_or_else(|| ("(no URL)".into(), "no URL to ask".into()));
        Err(ApiError::Unreachable { url, detail })
    }

    async fn rate_limit(&self) {
        self.inner.limiter.wait().await;
    }
}

/// The start of a body, on one line, for a message.
fn preview(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let line: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    match line.char_indices().nth(120) {
        Some((cut, _)) => format!("{}…", &line[..cut]),
        None => line,
    }
}
