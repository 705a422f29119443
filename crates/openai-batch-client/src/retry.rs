//! When to retry a failed request and how long to wait: the official SDK's policy (contract section 7).

use std::time::{Duration, SystemTime};

use reqwest::header::HeaderMap;

/// How failed requests are retried.
///
/// Defaults follow the official SDK: backoff `min(0.5 s × 2^n, 8 s) × (1 − 0.25·U)`,
/// server delays honoured up to 120 s, with more retries for reads than for writes.
/// Tests shrink the delays to milliseconds.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    /// Retries after the first attempt of a `GET` (retrieve, list, download, poll).
    pub max_retries_get: u32,
    /// Retries after the first attempt of a `POST` or `DELETE` (upload, create, cancel).
    pub max_retries_post: u32,
    /// The first backoff delay; it doubles with every retry.
    pub base_delay: Duration,
    /// The largest backoff delay.
    pub max_delay: Duration,
    /// The longest `Retry-After` honoured; a server asking for more means "don't retry".
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_retries_get: 5,
            max_retries_post: 2,
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(8),
            max_retry_after: Duration::from_secs(120),
        }
    }
}

impl RetryPolicy {
    /// A policy that never retries.
    pub fn none() -> Self {
        RetryPolicy {
            max_retries_get: 0,
            max_retries_post: 0,
            ..RetryPolicy::default()
        }
    }

    /// The backoff before retry number `retries_taken + 1`, for a jitter draw `u` in `[0, 1)`.
    pub fn backoff(&self, retries_taken: u32, u: f64) -> Duration {
        sdk_retry::backoff(self.base_delay, self.max_delay, retries_taken, u)
    }
}

/// What went wrong with one attempt, as far as retrying is concerned.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Failure<'a> {
    /// The server answered with an error status.
    Status {
        status: u16,
        headers: &'a HeaderMap,
        /// `error.code` was `insufficient_quota`.
        quota_exhausted: bool,
    },
    /// No complete answer: connection refused or dropped, or a timeout.
    Transport,
}

/// The decision for a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Try again after this delay.
    Retry(Duration),
    /// Give up and surface the error.
    Stop,
}

/// Decides whether to retry a failed attempt, and after how long.
///
/// `retries_taken` counts the retries already made, `u` is a jitter draw in `[0, 1)`.
pub(crate) fn classify(
    policy: &RetryPolicy,
    failure: Failure<'_>,
    retries_taken: u32,
    max_retries: u32,
    u: f64,
) -> Verdict {
    if retries_taken >= max_retries {
        return Verdict::Stop;
    }
    let (status, headers, quota_exhausted) = match failure {
        Failure::Transport => return Verdict::Retry(policy.backoff(retries_taken, u)),
        Failure::Status {
            status,
            headers,
            quota_exhausted,
        } => (status, headers, quota_exhausted),
    };
    // Out of credit and client errors that cannot heal by waiting are final, whatever the server hints.
    if quota_exhausted || matches!(status, 400 | 401 | 403 | 404) {
        return Verdict::Stop;
    }
    if !sdk_retry::should_retry(status, headers) {
        return Verdict::Stop;
    }
    match retry_after(headers, SystemTime::now()) {
        Some(delay) if delay > policy.max_retry_after => Verdict::Stop,
        Some(delay) if !delay.is_zero() => Verdict::Retry(delay),
        _ => Verdict::Retry(policy.backoff(retries_taken, u)),
    }
}

pub(crate) use sdk_retry::retry_after;

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, value.parse().unwrap());
        }
        map
    }

    fn check(status: u16, pairs: &[(&'static str, &str)], retries_taken: u32, expected: Verdict) {
        let policy = RetryPolicy::default();
        let headers = headers(pairs);
        let failure = Failure::Status {
            status,
            headers: &headers,
            quota_exhausted: false,
        };
        assert_eq!(
            classify(&policy, failure, retries_taken, 2, 0.0),
            expected,
            "{status} {pairs:?}"
        );
    }

    #[test]
    fn retryable_statuses_back_off() {
        for status in [408, 409, 429, 500, 502, 503, 504] {
            check(status, &[], 0, Verdict::Retry(Duration::from_millis(500)));
        }
        check(500, &[], 1, Verdict::Retry(Duration::from_secs(1)));
        check(500, &[], 2, Verdict::Stop);
    }

    #[test]
    fn client_errors_are_final() {
        for status in [400, 401, 403, 404, 422] {
            check(status, &[], 0, Verdict::Stop);
        }
        check(401, &[("x-should-retry", "true")], 0, Verdict::Stop);
        let headers = HeaderMap::new();
        let quota = Failure::Status {
            status: 429,
            headers: &headers,
            quota_exhausted: true,
        };
        assert_eq!(
            classify(&RetryPolicy::default(), quota, 0, 5, 0.0),
            Verdict::Stop
        );
    }

    #[test]
    fn x_should_retry_overrides_the_status() {
        check(503, &[("x-should-retry", "false")], 0, Verdict::Stop);
        check(
            422,
            &[("x-should-retry", "true")],
            0,
            Verdict::Retry(Duration::from_millis(500)),
        );
    }

    #[test]
    fn server_delays_are_honoured_up_to_the_cap() {
        check(
            429,
            &[("retry-after-ms", "250")],
            0,
            Verdict::Retry(Duration::from_millis(250)),
        );
        check(
            429,
            &[("retry-after", "1.5")],
            0,
            Verdict::Retry(Duration::from_millis(1500)),
        );
        check(
            429,
            &[("retry-after", "120")],
            0,
            Verdict::Retry(Duration::from_secs(120)),
        );
        check(429, &[("retry-after", "121")], 0, Verdict::Stop);
        check(
            429,
            &[("retry-after", "0")],
            0,
            Verdict::Retry(Duration::from_millis(500)),
        );
        check(
            429,
            &[("retry-after", "soon")],
            0,
            Verdict::Retry(Duration::from_millis(500)),
        );
    }

    #[test]
    fn retry_after_as_an_http_date() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let later = httpdate::fmt_http_date(now + Duration::from_secs(30));
        let headers = headers(&[("retry-after", &later)]);
        assert_eq!(retry_after(&headers, now), Some(Duration::from_secs(30)));
        let earlier = httpdate::fmt_http_date(now - Duration::from_secs(30));
        let headers = self::headers(&[("retry-after", &earlier)]);
        assert_eq!(retry_after(&headers, now), Some(Duration::ZERO));
    }

    #[test]
    fn backoff_grows_caps_and_jitters() {
        let policy = RetryPolicy::default();
        assert_eq!(policy.backoff(0, 0.0), Duration::from_millis(500));
        assert_eq!(policy.backoff(2, 0.0), Duration::from_secs(2));
        assert_eq!(policy.backoff(10, 0.0), Duration::from_secs(8));
        assert_eq!(
            policy.backoff(0, 0.999_999),
            Duration::from_nanos(375_000_125)
        );
        let transport = classify(&policy, Failure::Transport, 1, 2, 0.0);
        assert_eq!(transport, Verdict::Retry(Duration::from_secs(1)));
        assert_eq!(
            classify(&policy, Failure::Transport, 2, 2, 0.0),
            Verdict::Stop
        );
    }
}
