//! SIGINT/SIGTERM → one [`CancellationToken`] shared by every task of a command. The first signal
//! asks for a clean shutdown (finish the current range, commit, exit 130); a second one exits at
//! once, because an operator pressing Ctrl-C twice means it.

use tokio_util::sync::CancellationToken;

use crate::exit::Exit;

/// Installs the handlers on the current runtime and returns the token they cancel.
pub fn install() -> std::io::Result<CancellationToken> {
    let token = CancellationToken::new();
    let child = token.clone();
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
    Ok(token)
}
