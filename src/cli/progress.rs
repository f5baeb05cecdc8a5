//! Showing what sources are doing while a command runs, on stderr: indicatif bars (backfill) or a
//! live status line per source (watch) on a terminal, a log line every few seconds otherwise.
//! The engine only publishes [`SourceStatus`] on watch channels; everything visible is here.

use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::engine::deliver::ChainStatus;
use crate::engine::ingest::SourceStatus;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// A bar per source: blocks done of the range, events, rate, ETA.
    Bars,
    /// A line per source: cursor, head, lag, events/s.
    Live,
    /// A log line per source every `LOG_EVERY`.
    Log,
}

const LOG_EVERY: Duration = Duration::from_secs(5);

/// Renders until `stop` is cancelled; the returned task finishes its last frame and ends.
pub fn spawn(
    style: Style,
    sources: Vec<watch::Receiver<SourceStatus>>,
    stop: CancellationToken,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        match style {
            Style::Bars | Style::Live => draw(style, sources, stop).await,
            Style::Log => log_lines(sources, stop).await,
        }
    })
}

/// Events per second over the run so far.
fn rate(events: u64, since: Instant) -> f64 {
    let secs = since.elapsed().as_secs_f64();
    if secs > 0.0 { events as f64 / secs } else { 0.0 }
}

async fn draw(style: Style, sources: Vec<watch::Receiver<SourceStatus>>, stop: CancellationToken) {
    let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr_with_hz(8));
    let started = Instant::now();
    let template = match style {
        Style::Bars => "{prefix:>12.bold} [{bar:32.cyan/blue}] {pos}/{len} blocks  {msg}  eta {eta}",
        _ => "{spinner} {prefix:>12.bold} {msg}",
    };
    let bar_style = ProgressStyle::with_template(template)
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
    let bars: Vec<ProgressBar> = sources
        .iter()
        .map(|rx| {
            let bar = multi.add(ProgressBar::new(0));
            bar.set_style(bar_style.clone());
            bar.set_prefix(rx.borrow().source.clone());
            bar
        })
        .collect();
    loop {
        for (rx, bar) in sources.iter().zip(&bars) {
            let s = rx.borrow().clone();
            let events_per_sec = rate(s.events, started);
            match style {
                Style::Bars => {
                    let total = s.target.map_or(0, |t| (t + 1).saturating_sub(s.started_at));
                    bar.set_length(total);
                    bar.set_position(s.next.saturating_sub(s.started_at).min(total));
                    bar.set_message(format!(
                        "{} events  {events_per_sec:.0}/s  {}",
                        s.events,
                        s.phase.as_str()
                    ));
                }
                _ => {
                    let head = s.head.map_or("?".into(), |h| h.to_string());
                    let lag = s.head.map_or("?".into(), |h| (h + 1).saturating_sub(s.next).to_string());
                    let error =
                        s.last_error.as_deref().map(|e| format!("  last error: {e}")).unwrap_or_default();
                    bar.set_message(format!(
                        "{:<11} next {}  head {head}  lag {lag}  {} events  {events_per_sec:.0}/s  {} reorgs{error}",
                        s.phase.as_str(),
                        s.next,
                        s.events,
                        s.reorgs
                    ));
                    bar.tick();
                }
            }
        }
        if stop.is_cancelled() {
            break;
        }
        tokio::select! {
            _ = stop.cancelled() => {}
            _ = tokio::time::sleep(Duration::from_millis(200)) => {}
        }
    }
    for bar in bars {
        bar.abandon();
    }
}

async fn log_lines(sources: Vec<watch::Receiver<SourceStatus>>, stop: CancellationToken) {
    let started = Instant::now();
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(LOG_EVERY) => {}
        }
        for rx in &sources {
            let s = rx.borrow().clone();
            tracing::info!(
                source = %s.source,
                phase = s.phase.as_str(),
                next = s.next,
                head = s.head,
                target = s.target,
                events = s.events,
                // A number in JSON logs, not text: rounded, not formatted.
                events_per_sec = rate(s.events, started).round(),
                reorgs = s.reorgs,
                "progress"
            );
        }
    }
}

/// A log line per destination chain every `LOG_EVERY` while its counts move (and once more when
/// they settle), as workers start, and in any case every `heartbeat` (`health.status_interval`):
/// a chain that is stuck keeps saying so. The daemon's delivery view, on a terminal or not.
/// Chains whose worker never started are said from the engine's board, with why.
pub fn spawn_deliveries(
    mut started: tokio::sync::mpsc::UnboundedReceiver<watch::Receiver<ChainStatus>>,
    heartbeat: Duration,
    stop: CancellationToken,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let every = LOG_EVERY.min(heartbeat);
        let mut chains: Vec<(watch::Receiver<ChainStatus>, Option<ChainStatus>, Instant)> = Vec::new();
        let mut unstarted_at = Instant::now();
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                Some(rx) = started.recv() => {
                    chains.push((rx, None, Instant::now()));
                    continue;
                }
                _ = tokio::time::sleep(every) => {}
            }
            let board = crate::engine::observe::board().map(|b| b.snapshot()).unwrap_or_default();
            let view = |name: &str| board.dests.iter().find(|d| d.name == name);
            for (rx, last, said_at) in &mut chains {
                let s = rx.borrow().clone();
                let moved = last.as_ref().is_none_or(|l| {
                    l.counts != s.counts || l.sent_txs != s.sent_txs || l.problem != s.problem
                });
                if moved || said_at.elapsed() >= heartbeat {
                    let d = view(&s.chain);
                    tracing::info!(
                        chain = %s.chain,
                        pending = s.counts.pending,
                        in_flight = s.counts.sending + s.counts.sent,
                        oldest_pending_age_s = d.and_then(|d| d.oldest_open_secs),
                        confirmed = s.counts.confirmed,
                        skipped = s.counts.skipped,
                        failed = s.counts.failed,
                        txs = s.sent_txs,
                        bumps = s.bumps,
                        problem = %s.problem.as_ref().map(ToString::to_string).unwrap_or_default(),
                        last_error = %d.and_then(|d| d.last_problem.clone()).unwrap_or_default(),
                        "delivery"
                    );
                    *said_at = Instant::now();
                }
                *last = Some(s);
            }
            if unstarted_at.elapsed() >= heartbeat {
                unstarted_at = Instant::now();
                let started: Vec<String> =
                    chains.iter().map(|(rx, _, _)| rx.borrow().chain.clone()).collect();
                for d in board.dests.iter().filter(|d| !started.contains(&d.name)) {
                    tracing::info!(
                        chain = %d.name,
                        oldest_pending_age_s = d.oldest_open_secs,
                        problem = %d.problem.as_ref().map(|p| p.message.clone()).unwrap_or_default(),
                        last_error = %d.last_problem.clone().unwrap_or_default(),
                        "delivery"
                    );
                }
            }
        }
    })
}
