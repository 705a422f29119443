//! When to retry a failed request and how long to wait: the official Anthropic SDK's policy.

use std::time::{Duration, SystemTime};

use reqwest::header::HeaderMap;

/// How failed requests are retried.
///
/// Defaults follow anthropic-sdk-python: 2 retries; on connection errors, timeouts, 408, 409,
/// 429 and every status from 500 (529 "overloaded" included), unless `x-should-retry` says
/// otherwise; a server delay (`retry-after-ms`, `retry-after`) honoured when it is above 0 and
/// at most 60 s, else the backoff `min(0.5 s × 2^n, 8 s) × (1 − 0.25·U)`.
/// Tests shrink the delays to milliseconds.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    /// Retries after the first attempt of any request.
    pub max_retries: u32,
    /// The first backoff delay; it doubles with every retry.
    pub base_delay: Duration,
    /// The largest backoff delay.
    pub max_delay: Duration,
    /// The longest server delay honoured; a longer one falls back to the backoff, as the SDK does.
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_retries: 2,
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(8),
            max_retry_after: Duration::from_secs(60),
        }
    }
}

impl RetryPolicy {
    /// A policy that never retries.
    pub fn none() -> Self {
        RetryPolicy {
            max_retries: 0,
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
    Status { status: u16, headers: &'a HeaderMap },
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
    u: f64,
) -> Verdict {
    if retries_taken >= policy.max_retries {
        return Verdict::Stop;
    }
    let (status, headers) = match failure {
        Failure::Transport => return Verdict::Retry(policy.backoff(retries_taken, u)),
        Failure::Status { status, headers } => (status, headers),
    };
    if !sdk_retry::should_retry(status, headers) {
        return Verdict::Stop;
    }
    match retry_after(headers, SystemTime::now()) {
        Some(delay) if !delay.is_zero() && delay <= policy.max_retry_after => Verdict::Retry(delay),
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
        let headers = headers(pairs);
        let failure = Failure::Status {
            status,
            headers: &headers,
        };
        assert_eq!(
            classify(&RetryPolicy::default(), failure, retries_taken, 0.0),
            expected,
            "{status} {pairs:?}"
        );
    }

    const FIRST: Verdict = Verdict::Retry(Duration::from_millis(500));

    #[test]
    fn retryable_statuses_back_off_twice() {
        for status in [408, 409, 429, 500, 502, 503, 504, 529] {
            check(status, &[], 0, FIRST);
        }
        check(529, &[], 1, Verdict::Retry(Duration::from_secs(1)));
        check(529, &[], 2, Verdict::Stop);
    }

    #[test]
    fn client_errors_are_final_unless_the_server_says_otherwise() {
        for status in [400, 401, 402, 403, 404, 413, 422] {
            check(status, &[], 0, Verdict::Stop);
        }
        check(400, &[("x-should-retry", "true")], 0, FIRST);
        check(529, &[("x-should-retry", "false")], 0, Verdict::Stop);
    }

    #[test]
    fn server_delays_are_honoured_up_to_60_seconds_then_backoff() {
        let ms = |n| Verdict::Retry(Duration::from_millis(n));
        check(429, &[("retry-after-ms", "250")], 0, ms(250));
        check(429, &[("retry-after", "1.5")], 0, ms(1500));
        check(429, &[("retry-after", "60")], 0, ms(60_000));
        check(429, &[("retry-after", "61")], 0, FIRST);
        check(429, &[("retry-after", "0")], 0, FIRST);
        check(429, &[("retry-after", "soon")], 0, FIRST);
        check(
            429,
            &[("retry-after-ms", "90"), ("retry-after", "5")],
            0,
            ms(90),
        );
    }

    #[test]
    fn retry_after_as_an_http_date() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let later = httpdate::fmt_http_date(now + Duration::from_secs(30));
        assert_eq!(
            retry_after(&headers(&[("retry-after", &later)]), now),
            Some(Duration::from_secs(30))
        );
        let earlier = httpdate::fmt_http_date(now - Duration::from_secs(30));
        assert_eq!(
            retry_after(&headers(&[("retry-after", &earlier)]), now),
            Some(Duration::ZERO)
        );
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
        assert_eq!(
            classify(&policy, Failure::Transport, 1, 0.0),
            Verdict::Retry(Duration::from_secs(1))
        );
        assert_eq!(classify(&policy, Failure::Transport, 2, 0.0), Verdict::Stop);
        assert_eq!(
            classify(&RetryPolicy::none(), Failure::Transport, 0, 0.0),
            Verdict::Stop
        );
    }
}
