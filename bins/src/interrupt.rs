//! Ctrl-C, listened for from the moment a command starts sending, so that a press during an
//! upload, a wait or a download is never lost and never ends the process in the middle of a
//! transfer: the command stops the step, says what still runs on the server, and exits 130.

use tokio::sync::watch;

/// A Ctrl-C listener; clones share it.
#[derive(Debug, Clone)]
pub struct Interrupt {
    pressed: watch::Receiver<bool>,
}

impl Interrupt {
    /// Starts listening: from here on Ctrl-C (SIGINT) no longer ends the process at once. Call
    /// it only where the command then selects on [`Interrupt::pressed`] for the rest of its
    /// work: before that (questions, parsing), Ctrl-C ends the process as usual.
    ///
    /// # Errors
    ///
    /// When the signal handler cannot be installed.
    pub fn listen() -> std::io::Result<Interrupt> {
        // The handler is in place when this returns (unlike `ctrl_c()`, which installs it
        // when first polled): a press right after is not lost.
        #[cfg(unix)]
        let mut signal = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())?;
        let (sender, pressed) = watch::channel(false);
        tokio::spawn(async move {
            #[cfg(unix)]
            let _ = signal.recv().await;
            #[cfg(not(unix))]
            let _ = tokio::signal::ctrl_c().await;
            let _ = sender.send(true);
            // Keep the sender, so listeners never see it dropped.
            std::future::pending::<()>().await;
        });
        Ok(Interrupt { pressed })
    }

    /// Resolves once Ctrl-C is pressed.
    pub async fn pressed(&self) {
        let mut pressed = self.pressed.clone();
        if pressed.wait_for(|pressed| *pressed).await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}
