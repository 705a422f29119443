//! The running emulator: the listening socket, the connection loop with its API
//! faults, the router with authentication and `x-request-id`, start/stop, and the
//! emulator's own counters and test clock.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, Uri, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::task::{JoinHandle, JoinSet};
use tokio_util::sync::CancellationToken;

use crate::anthropic::error::AnthropicFailure;
use crate::api_error::ApiFailure;
use crate::config::{EmulatorConfig, Endpoint, HttpFault, HttpFaultKind};
use crate::enqueued::EmulatorStats;
use crate::responder::Responder;
use crate::store::Store;
use crate::{Error, anthropic, batches, chat, files, ids, runner};

/// A running emulator. It stops on [`Emulator::shutdown`] or when dropped.
///
/// Dropping it aborts running batches; with a data directory they resume on the next start.
#[derive(Debug)]
pub struct Emulator {
    addr: SocketAddr,
    base_url: String,
    stop: CancellationToken,
    server: Option<JoinHandle<()>>,
    shared: Arc<Shared>,
}

/// State shared by the handlers and the batch runs.
pub(crate) struct Shared {
    pub(crate) config: EmulatorConfig,
    pub(crate) store: Store,
    pub(crate) responder: Responder,
    /// Running batches, aborted on shutdown.
    pub(crate) runs: Mutex<JoinSet<()>>,
    /// The bound address, for URLs the emulator hands out (`results_url`).
    pub(crate) addr: SocketAddr,
    faults: FaultCounters,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Emulator {
    /// Binds `config.addr` (by default `127.0.0.1:0`, a free port), loads the saved
    /// state of `config.data_dir` if any, and starts serving in the background.
    ///
    /// Must be called inside a Tokio runtime.
    ///
    /// # Errors
    ///
    /// [`Error::Bind`] when the address is taken, [`Error::Storage`] for an unusable data
    /// directory, [`Error::ZeroConcurrency`] and [`Error::UpstreamClient`] for a bad
    /// configuration. A saved record that cannot be read is skipped with a warning naming it.
    pub async fn start(config: EmulatorConfig) -> Result<Emulator, Error> {
        if config.concurrency == 0 {
            return Err(Error::ZeroConcurrency {
                setting: "concurrency",
            });
        }
        let responder = Responder::new(&config)?;
        // Validation counts prompt tokens and the offline responder counts answers too;
        // loading the tokenizer takes a moment, so pay it before the first batch's clock runs.
        let _ = tokio::task::spawn_blocking(crate::offline::tokenizer).await;
        let (store, resume) = Store::open(config.data_dir.as_deref())?;
        let listener = TcpListener::bind(config.addr)
            .await
            .map_err(|source| Error::Bind {
                addr: config.addr,
                source,
            })?;
        let addr = listener.local_addr().map_err(|source| Error::Bind {
            addr: config.addr,
            source,
        })?;
        let shared = Arc::new(Shared {
            faults: FaultCounters::new(&config.faults.http, config.faults.cut_downloads),
            config,
            store,
            responder,
            runs: Mutex::new(JoinSet::new()),
            addr,
        });
        runner::resume(&shared, resume).await;
        let stop = CancellationToken::new();
        let server = tokio::spawn(serve(
            listener,
            router(Arc::clone(&shared)),
            Arc::clone(&shared),
            stop.clone(),
        ));
        tracing::info!(%addr, "batch emulator listening");
        Ok(Emulator {
            addr,
            base_url: format!("http://{addr}/v1"),
            stop,
            server: Some(server),
            shared,
        })
    }

    /// The API base URL, `http://127.0.0.1:PORT/v1`: give it to any OpenAI client.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The base URL for Anthropic clients, `http://127.0.0.1:PORT` (they add `/v1/messages...`
    /// themselves): give it to an Anthropic SDK as `base_url` (`ANTHROPIC_BASE_URL`).
    pub fn anthropic_base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// What the emulator counted: enqueued prompt tokens per model now and at their
    /// peak, and the batches refused with `token_limit_exceeded`.
    ///
    /// `GET /v1/emulator/stats` returns the same as JSON, for tests in another process.
    pub fn stats(&self) -> EmulatorStats {
        self.shared.store.stats()
    }

    /// Per model, the prompt tokens of the batches enqueued now (past validation, not
    /// terminal yet); models at zero are left out.
    pub fn enqueued_tokens(&self) -> BTreeMap<String, u64> {
        self.stats().enqueued_tokens
    }

    /// Per model, the highest enqueued prompt-token sum reached since the start.
    pub fn peak_enqueued_tokens(&self) -> BTreeMap<String, u64> {
        self.stats().peak_enqueued_tokens
    }

    /// Moves the clock that decides file expiry forward by `by` (whole seconds, rounded
    /// up), so tests can expire files without waiting: after
    /// `advance_file_clock(Duration::from_secs(3600))` a file uploaded with
    /// `expires_after[seconds]=3600` is gone.
    ///
    /// Only file expiry and the archiving of message batch results (29 days after
    /// creation) read this clock: timestamps the emulator writes and the batches'
    /// completion window keep real time.
    pub fn advance_file_clock(&self, by: Duration) {
        let seconds = by.as_secs() + u64::from(by.subsec_nanos() > 0);
        self.shared
            .store
            .advance_file_clock(i64::try_from(seconds).unwrap_or(i64::MAX));
    }

    /// Stops accepting connections, closes open ones, aborts running batches and waits
    /// for the state they reached to be written (with a data directory), so a restart
    /// resumes from there.
    pub async fn shutdown(mut self) {
        self.stop.cancel();
        if let Some(server) = self.server.take() {
            // The server task ends by itself once told to stop; a panic in it is already logged.
            let _ = server.await;
        }
        let mut runs = std::mem::take(
            &mut *self
                .shared
                .runs
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        runs.abort_all();
        // Aborted runs stop at their next await; after that none starts a new write.
        while runs.join_next().await.is_some() {}
        if let Err(error) = self.shared.store.save_attempts().await {
            tracing::error!(%error, "cannot save the attempt counts");
        }
        self.shared.store.flush().await;
    }

    fn abort_runs(&self) {
        self.shared
            .runs
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .abort_all();
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        // Runs once, whether the emulator was shut down or dropped; silent when it never
        // enqueued a batch and had no limit to report on.
        let stats = self.stats();
        if self.shared.config.enqueued_token_limit.is_some()
            || !stats.peak_enqueued_tokens.is_empty()
        {
            tracing::info!(
                peak_enqueued_tokens = ?stats.peak_enqueued_tokens,
                token_limit_failures = stats.token_limit_failures,
                limit = ?self.shared.config.enqueued_token_limit,
                "batch emulator stopping"
            );
        }
        self.stop.cancel();
        if let Some(server) = self.server.take() {
            server.abort();
        }
        self.abort_runs();
    }
}

/// Counts calls per endpoint to apply the configured [`HttpFault`]s.
struct FaultCounters {
    plan: HashMap<Endpoint, Vec<(HttpFaultKind, u32)>>,
    calls: Mutex<HashMap<Endpoint, u32>>,
    cuts_left: Mutex<u32>,
}

impl FaultCounters {
    fn new(faults: &[HttpFault], cut_downloads: u32) -> Self {
        let mut plan: HashMap<Endpoint, Vec<(HttpFaultKind, u32)>> = HashMap::new();
        for fault in faults {
            plan.entry(fault.endpoint)
                .or_default()
                .push((fault.kind, fault.times));
        }
        FaultCounters {
            plan,
            calls: Mutex::new(HashMap::new()),
            cuts_left: Mutex::new(cut_downloads),
        }
    }

    /// The fault for this call of `endpoint`, if any.
    fn next(&self, endpoint: Endpoint) -> Option<HttpFaultKind> {
        let faults = self.plan.get(&endpoint)?;
        let call = {
            let mut calls = self
                .calls
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let count = calls.entry(endpoint).or_insert(0);
            let call = *count;
            *count = count.saturating_add(1);
            call
        };
        let mut first_of_next = 0u32;
        for (kind, times) in faults {
            first_of_next = first_of_next.saturating_add(*times);
            if call < first_of_next {
                return Some(*kind);
            }
        }
        None
    }

    /// Whether this download is cut off.
    fn take_cut(&self) -> bool {
        let mut left = self
            .cuts_left
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if *left > 0 {
            *left -= 1;
            true
        } else {
            false
        }
    }
}

/// Marks a content download that must stop midway.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CutDownload;

/// Returned by the connection service to close the connection without answering.
#[derive(Debug)]
struct DroppedConnection;

impl std::fmt::Display for DroppedConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection dropped by an injected fault")
    }
}

impl std::error::Error for DroppedConnection {}

async fn serve(
    listener: TcpListener,
    router: Router,
    shared: Arc<Shared>,
    stop: CancellationToken,
) {
    let service = TowerToHyperService::new(router);
    let mut connections = JoinSet::new();
    loop {
        let accepted = tokio::select! {
            () = stop.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(error) => {
                // Usually out of file descriptors; wait a little instead of spinning.
                tracing::warn!(%error, "cannot accept a connection");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        while connections.try_join_next().is_some() {}
        let service = service.clone();
        let shared = Arc::clone(&shared);
        connections.spawn(async move {
            let handler = hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
                let service = service.clone();
                let shared = Arc::clone(&shared);
                async move { handle(&service, &shared, request).await }
            });
            // A client may shut down its write side once its request is sent (half-close);
            // without `half_close` hyper reads that EOF as the end of the connection and
            // drops it before the handler answers.
            if let Err(error) = hyper::server::conn::http1::Builder::new()
                .half_close(true)
                .serve_connection(TokioIo::new(stream), handler)
                .await
            {
                tracing::debug!(%error, "connection ended with an error");
            }
        });
    }
    // Dropping `connections` aborts the open connections.
}

/// Applies the API faults, then hands the request to the router.
async fn handle(
    service: &TowerToHyperService<Router>,
    shared: &Shared,
    mut request: hyper::Request<Incoming>,
) -> Result<Response, DroppedConnection> {
    use hyper::service::Service as _;

    let request_path = request.uri().path().to_owned();
    if let Some(endpoint) = Endpoint::classify(request.method().as_str(), &request_path) {
        match shared.faults.next(endpoint) {
            Some(HttpFaultKind::DropConnection) => {
                tracing::debug!(%endpoint, "fault: dropping the connection");
                return Err(DroppedConnection);
            }
            Some(HttpFaultKind::RateLimited { retry_after }) => {
                drain(Body::new(request.into_body())).await;
                let anthropic = anthropic::is_anthropic_path(request_path.as_str());
                let failure = ApiFailure::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "requests",
                    "Rate limit reached for requests. Please try again later.",
                    None,
                    Some("rate_limit_exceeded"),
                );
                let mut response = with_request_id(if anthropic {
                    AnthropicFailure::rate_limited().into_response()
                } else {
                    failure.into_response()
                });
                let seconds = retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0);
                let headers = response.headers_mut();
                headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
                headers.insert(
                    "retry-after-ms",
                    HeaderValue::from(u64::try_from(retry_after.as_millis()).unwrap_or(u64::MAX)),
                );
                return Ok(response);
            }
            Some(HttpFaultKind::ServerError) => {
                drain(Body::new(request.into_body())).await;
                if anthropic::is_anthropic_path(request_path.as_str()) {
                    return Ok(with_request_id(
                        AnthropicFailure::internal("an injected fault").into_response(),
                    ));
                }
                let failure = ApiFailure::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "server_error",
                    "The server had an error while processing your request. Sorry about that!",
                    None,
                    None,
                );
                return Ok(with_request_id(failure.into_response()));
            }
            None => {}
        }
        if endpoint == Endpoint::FileContent && shared.faults.take_cut() {
            request.extensions_mut().insert(CutDownload);
        }
    }
    match service.call(request).await {
        Ok(response) => Ok(response),
        Err(infallible) => match infallible {},
    }
}

fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        // Uploads stream to disk and are limited by the handler itself; other bodies
        // keep axum's 2 MB limit.
        .route(
            "/v1/files",
            post(files::upload)
                .layer(DefaultBodyLimit::disable())
                .get(files::list),
        )
        .route(
            "/v1/files/{file_id}",
            get(files::retrieve).delete(files::delete),
        )
        .route("/v1/files/{file_id}/content", get(files::content))
        .route("/v1/batches", post(batches::create).get(batches::list))
        .route("/v1/batches/{batch_id}", get(batches::retrieve))
        .route("/v1/batches/{batch_id}/cancel", post(batches::cancel))
        .route("/v1/chat/completions", post(chat::create))
        // Anthropic's Messages API (one request answered at once) and Message Batches API;
        // a message may be up to 32 MB, a batch's create body up to 256 MB.
        .route(
            "/v1/messages",
            post(anthropic::messages::create)
                .layer(DefaultBodyLimit::max(anthropic::messages::MAX_BODY_BYTES)),
        )
        .route(
            "/v1/messages/batches",
            post(anthropic::create::create)
                .layer(DefaultBodyLimit::max(anthropic::create::MAX_BODY_BYTES))
                .get(anthropic::routes::list),
        )
        .route(
            "/v1/messages/batches/{batch_id}",
            get(anthropic::routes::retrieve).delete(anthropic::routes::delete),
        )
        .route(
            "/v1/messages/batches/{batch_id}/cancel",
            post(anthropic::routes::cancel),
        )
        .route(
            "/v1/messages/batches/{batch_id}/results",
            get(anthropic::routes::results),
        )
        .route("/v1/emulator/stats", get(stats))
        .fallback(unknown_url)
        .method_not_allowed_fallback(unknown_url)
        .layer(middleware::from_fn_with_state(
            Arc::clone(&shared),
            authenticate,
        ))
        .layer(middleware::from_fn(request_id))
        .with_state(shared)
}

/// `GET /v1/emulator/stats`: not an OpenAI endpoint; [`Emulator::stats`] as JSON.
async fn stats(State(shared): State<Arc<Shared>>) -> Json<EmulatorStats> {
    Json(shared.store.stats())
}

async fn unknown_url(method: Method, uri: Uri) -> Response {
    if anthropic::is_anthropic_path(uri.path()) {
        return anthropic::routes::unknown_url(method.as_str(), uri.path()).into_response();
    }
    ApiFailure::not_found(format!("Invalid URL ({method} {})", uri.path()), None).into_response()
}

/// Requires `Authorization: Bearer <token>`: any non-empty token, or exactly the configured key;
/// under `/v1/messages`, the Anthropic headers instead (`x-api-key`, `anthropic-version`).
async fn authenticate(State(shared): State<Arc<Shared>>, request: Request, next: Next) -> Response {
    if anthropic::is_anthropic_path(request.uri().path()) {
        return match anthropic::routes::check_headers(
            request.headers(),
            shared.config.api_key.as_deref(),
        ) {
            Ok(()) => next.run(request).await,
            Err(failure) => {
                drain(request.into_body()).await;
                failure.into_response()
            }
        };
    }
    let token = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|token| !token.is_empty());
    let failure = match (token, shared.config.api_key.as_deref()) {
        (None, _) => ApiFailure::new(
            StatusCode::UNAUTHORIZED,
            "invalid_request_error",
            "You didn't provide an API key. You need to provide your API key in an Authorization \
             header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
            None,
            Some("invalid_api_key"),
        ),
        (Some(token), Some(expected)) if token != expected => ApiFailure::new(
            StatusCode::UNAUTHORIZED,
            "invalid_request_error",
            format!(
                "Incorrect API key provided: {}. This local batch emulator accepts only the key it was started with.",
                mask(token)
            ),
            None,
            Some("invalid_api_key"),
        ),
        _ => return next.run(request).await,
    };
    drain(request.into_body()).await;
    failure.into_response()
}

/// Reads and drops a request body (up to the largest upload), so a client still
/// sending it, e.g. an upload, reads the error answer instead of a broken connection.
async fn drain(body: Body) {
    use futures::StreamExt as _;

    let mut stream = body.into_data_stream();
    let mut read: u64 = 0;
    while let Some(Ok(chunk)) = stream.next().await {
        read += chunk.len() as u64;
        if read > crate::files::MAX_ANY_FILE_BYTES {
            break;
        }
    }
}

/// Shows a key like the real API does: its start and its last four characters.
fn mask(token: &str) -> String {
    let chars: Vec<char> = token.chars().collect();
    if chars.len() <= 8 {
        return "*".repeat(chars.len());
    }
    let head: String = chars[..3].iter().collect();
    let tail: String = chars[chars.len() - 4..].iter().collect();
    format!("{head}{}{tail}", "*".repeat(chars.len() - 7))
}

async fn request_id(request: Request, next: Next) -> Response {
    with_request_id(next.run(request).await)
}

fn with_request_id(mut response: Response) -> Response {
    let id = HeaderValue::from_str(&ids::http_request_id()).expect("a request id is plain ASCII");
    response.headers_mut().insert("x-request-id", id);
    response
        .headers_mut()
        .insert("openai-version", HeaderValue::from_static("2020-10-01"));
    response
}

/// A body that yields the first `limit` bytes of `inner` and then fails, so the
/// connection closes before the response is complete.
pub(crate) fn cut_body(inner: Body, limit: u64) -> Body {
    use futures::StreamExt as _;

    let cut = || std::io::Error::other("download cut by an injected fault");
    let state = (inner.into_data_stream(), limit, false);
    let stream = futures::stream::unfold(state, move |(mut data, left, done)| async move {
        if done {
            return None;
        }
        let next = if left == 0 { None } else { data.next().await };
        match next {
            Some(Ok(chunk)) => {
                let take = usize::try_from(left).unwrap_or(usize::MAX).min(chunk.len());
                Some((Ok(chunk.slice(..take)), (data, left - take as u64, false)))
            }
            Some(Err(error)) => Some((Err(std::io::Error::other(error)), (data, left, true))),
            None => {
                // Let the server flush the bytes sent so far before the connection breaks.
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                Some((Err(cut()), (data, 0, true)))
            }
        }
    });
    Body::from_stream(stream)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn faults_apply_to_the_first_calls_in_order() {
        let counters = FaultCounters::new(
            &[
                HttpFault {
                    endpoint: Endpoint::CreateBatch,
                    kind: HttpFaultKind::ServerError,
                    times: 1,
                },
                HttpFault {
                    endpoint: Endpoint::CreateBatch,
                    kind: HttpFaultKind::RateLimited {
                        retry_after: Duration::from_secs(1),
                    },
                    times: 2,
                },
            ],
            1,
        );
        let calls: Vec<_> = (0..4)
            .map(|_| counters.next(Endpoint::CreateBatch))
            .collect();
        let rate_limited = Some(HttpFaultKind::RateLimited {
            retry_after: Duration::from_secs(1),
        });
        assert_eq!(
            calls,
            [
                Some(HttpFaultKind::ServerError),
                rate_limited,
                rate_limited,
                None
            ]
        );
        assert_eq!(counters.next(Endpoint::RetrieveBatch), None);
        assert!(counters.take_cut());
        assert!(!counters.take_cut());
    }

    #[test]
    fn the_handle_can_move_between_tasks() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<Emulator>();
    }

    #[test]
    fn masks_keys() {
        assert_eq!(mask("sk-abcdefghijkl"), "sk-********ijkl");
        assert_eq!(mask("short"), "*****");
    }
}
