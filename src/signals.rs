//! The one runner for signals, shared by every command:
//!
//! - **SIGINT/SIGTERM** → one [`CancellationToken`] shared by every task of a command. The first
//!   signal asks for a clean shutdown (finish the current range, commit, exit 130); a second one
//!   exits at once, because an operator pressing Ctrl-C twice means it. How long a clean shutdown
//!   may take is bounded by the command ([`bounded`]): a dead destination's retries must not hold
//!   a service manager's stop.
//! - **SIGHUP** → a reload request, counted on a watch channel that `watch` subscribes to
//!   ([`Reloads`]). Listening for it at start is what keeps SIGHUP from killing any command (its
//!   default action): a one-shot (`push`, `backfill`) has no subscriber and logs that it ignores
//!   it. Other listeners (the JSONL sink reopening its file for logrotate) get every SIGHUP too:
//!   tokio hands a signal to each of its listeners.

use std::future::Future;
use std::time::Duration;

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::exit::Exit;

/// What the runner hands to a command: the stop token and the reload requests.
pub struct Signals {
    pub cancel: CancellationToken,
    pub reloads: Reloads,
}

/// Reload requests (SIGHUP), as a count that only grows: a subscriber sees that at least one came
/// since it last looked, several in a row fold into one reload (the file is read once, as it is).
#[derive(Clone)]
pub struct Reloads {
    tx: watch::Sender<u64>,
}

impl Reloads {
    /// A source of reload requests that no signal feeds (for tests and embedders).
    pub fn none() -> Self {
        Self { tx: watch::channel(0).0 }
    }

    /// Starts listening; the receiver sees each request made after this call.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.tx.subscribe()
    }

    /// Asks every subscriber to reload; `false` when nobody listens (a one-shot command).
    pub fn request(&self) -> bool {
        if self.tx.receiver_count() == 0 {
            return false;
        }
        self.tx.send_modify(|n| *n += 1);
        true
    }
}

/// How long a clean shutdown may take by default, after SIGINT/SIGTERM.
pub const DEFAULT_STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// What the backstop in `main` adds to the stop timeout of a command that keeps its own bound
/// (`watch`): the time it needs to drop what is left and say what it abandoned.
pub const BACKSTOP_GRACE: Duration = Duration::from_secs(1);

/// Installs the handlers on the current runtime and returns what they feed.
pub fn install() -> std::io::Result<Signals> {
    let token = CancellationToken::new();
    let reloads = Reloads { tx: watch::channel(0).0 };
    let child = token.clone();
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut hangup = signal(SignalKind::hangup())?;
        let requests = reloads.clone();
        tokio::spawn(async move {
            while hangup.recv().await.is_some() {
                if requests.request() {
                    tracing::info!("SIGHUP received: reloading the config");
                } else {
                    tracing::info!("SIGHUP received: ignored, only `ferry watch` reloads its config");
                }
            }
        });
    }
    #[cfg(unix)]
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::spawn(async move {
        for round in 0..2 {
            #[cfg(unix)]
            let which = tokio::select! {
                r = tokio::signal::ctrl_c() => r.map(|()| "SIGINT"),
                _ = term.recv() => Ok("SIGTERM"),
            };
            #[cfg(not(unix))]
            let which = tokio::signal::ctrl_c().await.map(|()| "Ctrl-C");
            let Ok(which) = which else { return };
            if round == 0 {
                tracing::warn!("{which} received: shutting down cleanly (send it again to exit at once)");
                child.cancel();
            } else {
                tracing::error!("{which} received again: exiting now");
                std::process::exit(Exit::Interrupted.code());
            }
        }
    });
    Ok(Signals { cancel: token, reloads })
}

/// Runs a command, and once `cancel` fires gives it `bound` to finish; past that, the command is
/// dropped where it waits (every write is a transaction, so what was committed is whole and what
/// was not is done again on the next start) and `None` is returned. The command's own tasks are
/// dropped with the runtime; the store closes when the last of them is gone.
///
/// A command that keeps its own, finer bound (`watch` abandons what is left and says what) gets
/// this one a [`BACKSTOP_GRACE`] later; for every other, this is the bound.
pub async fn bounded<T>(
    command: impl Future<Output = T>,
    cancel: &CancellationToken,
    bound: Duration,
) -> Option<T> {
    let deadline = async {
        cancel.cancelled().await;
        tokio::time::sleep(bound).await;
    };
    tokio::select! {
        out = command => Some(out),
        () = deadline => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reload_without_a_subscriber_is_not_requested() {
        let reloads = Reloads::none();
        assert!(!reloads.request(), "nobody listens");
        let mut rx = reloads.subscribe();
        assert!(reloads.request());
        assert!(reloads.request());
        assert!(rx.has_changed().expect("the sender lives"), "a request is seen");
        // Two requests before a look fold into one reload.
        assert_eq!(*rx.borrow_and_update(), 2);
        assert!(!rx.has_changed().expect("the sender lives"));
    }

    #[tokio::test]
    async fn a_command_gets_its_bound_only_once_stopped() {
        let cancel = CancellationToken::new();
        // Not stopped: a command longer than the bound runs to its end.
        let slow = tokio::time::sleep(Duration::from_millis(300));
        assert_eq!(bounded(slow, &cancel, Duration::from_millis(50)).await, Some(()));

        // Stopped: it gets the bound, then is dropped.
        cancel.cancel();
        let started = std::time::Instant::now();
        let hung = std::future::pending::<()>();
        assert_eq!(bounded(hung, &cancel, Duration::from_millis(200)).await, None);
        let took = started.elapsed();
        assert!(took >= Duration::from_millis(200) && took < Duration::from_secs(5), "took {took:?}");

        // A command that ends within its bound ends as itself.
        let quick = tokio::time::sleep(Duration::from_millis(10));
        assert_eq!(bounded(quick, &cancel, Duration::from_secs(5)).await, Some(()));
    }
}
