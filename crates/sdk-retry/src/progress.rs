//! How a client tells its caller about retried requests, the same way for every provider.

use std::time::Duration;

/// A request failed and is about to be tried again, as [`RetryProgress::on_retry`] hears it.
///
/// The error is the client's own error type behind a provider-neutral reference; a caller that
/// wants its variants downcasts it (`retry.error.downcast_ref::<openai_batch_client::Error>()`).
#[derive(Debug, Clone, Copy)]
pub struct RetryEvent<'a> {
    /// `GET`, `POST`, `DELETE`.
    pub method: &'a str,
    /// The path below the base URL, e.g. `/files`, `/batches/batch_abc` or
    /// `/v1/messages/batches/msgbatch_abc/results`.
    pub path: &'a str,
    /// The attempt about to be made: 2 for the first retry.
    pub attempt: u32,
    /// How many attempts the retry policy allows this request in all.
    pub max_attempts: u32,
    /// How long the client waits before that attempt.
    pub delay: Duration,
    /// Why the last attempt failed.
    pub error: &'a (dyn std::error::Error + Send + Sync + 'static),
}

/// Told when a request is retried, and when a retried request gets through again, so a
/// caller can show that the server is unreachable instead of falling silent. Every method
/// defaults to doing nothing; `()` implements it.
///
/// Both batch clients take one with their `Client::with_retry_progress`.
pub trait RetryProgress: Send + Sync {
    /// An attempt failed and the request is tried again after [`RetryEvent::delay`].
    fn on_retry(&self, _retry: &RetryEvent<'_>) {}
    /// A request that had been retried succeeded.
    fn on_recovered(&self, _method: &str, _path: &str) {}
}

impl RetryProgress for () {}

/// A client's listener of retries: a [`RetryProgress`] that `Debug` names only by its
/// presence. The default listens to nothing.
#[derive(Clone)]
pub struct RetryHook(std::sync::Arc<dyn RetryProgress>);

impl RetryHook {
    /// A hook that tells `progress`.
    pub fn new(progress: std::sync::Arc<dyn RetryProgress>) -> RetryHook {
        RetryHook(progress)
    }

    /// The listener.
    pub fn progress(&self) -> &dyn RetryProgress {
        &*self.0
    }
}

impl Default for RetryHook {
    fn default() -> Self {
        RetryHook(std::sync::Arc::new(()))
    }
}

impl std::fmt::Debug for RetryHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RetryProgress")
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    /// Records what it hears, and whether the error was an I/O error.
    #[derive(Default)]
    struct Heard(Mutex<Vec<String>>);

    impl RetryProgress for Heard {
        fn on_retry(&self, retry: &RetryEvent<'_>) {
            let io = retry.error.downcast_ref::<std::io::Error>().is_some();
            self.0.lock().unwrap().push(format!(
                "retry {} {} {}/{} in {:?}: {} (io: {io})",
                retry.method,
                retry.path,
                retry.attempt,
                retry.max_attempts,
                retry.delay,
                retry.error
            ));
        }

        fn on_recovered(&self, method: &str, path: &str) {
            self.0
                .lock()
                .unwrap()
                .push(format!("recovered {method} {path}"));
        }
    }

    #[test]
    fn a_listener_hears_the_event_and_can_downcast_the_error() {
        let error = std::io::Error::other("connection refused");
        let heard = Heard::default();
        let listener: &dyn RetryProgress = &heard;
        listener.on_retry(&RetryEvent {
            method: "GET",
            path: "/v1/messages/batches/mb_1",
            attempt: 2,
            max_attempts: 3,
            delay: Duration::from_millis(500),
            error: &error,
        });
        listener.on_recovered("GET", "/v1/messages/batches/mb_1");
        assert_eq!(
            *heard.0.lock().unwrap(),
            [
                "retry GET /v1/messages/batches/mb_1 2/3 in 500ms: connection refused (io: true)",
                "recovered GET /v1/messages/batches/mb_1",
            ]
        );
    }
}
