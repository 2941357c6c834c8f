//! SIGTERM (docker stop) and SIGINT (Ctrl-C) cancel one token; a second signal
//! ends the process at once for the impatient.

use tokio::signal::unix::{signal, SignalKind};
use tokio_util::sync::CancellationToken;

pub fn cancel_on_signal(token: CancellationToken) {
    tokio::spawn(async move {
        let mut terminate = match signal(SignalKind::terminate()) {
            Ok(stream) => stream,
            Err(error) => {
                tracing::error!(error = %error, "signal_handler_failed");
                return;
            }
        };
        let name = tokio::select! {
            _ = terminate.recv() => "SIGTERM",
            _ = tokio::signal::ctrl_c() => "SIGINT",
        };
        tracing::info!(signal = name, "shutdown_requested");
        token.cancel();
        tokio::select! {
            _ = terminate.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
        tracing::warn!("shutdown_forced");
        std::process::exit(130);
    });
}
