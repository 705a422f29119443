//! The retry arithmetic the official OpenAI and Anthropic SDKs share, owned once for both
//! batch clients: the delay a server asks for (`retry-after-ms`, `retry-after`), and the
//! jittered exponential backoff `min(base × 2^n, max) × (1 − 0.25·U)`, and the statuses retried
//! unless the server says otherwise (`x-should-retry`). How many times, and which failures are
//! final whatever the server says, stays with each client: the two APIs differ there.
//!
//! It also owns how both clients tell their caller about a retried request: the
//! [`RetryProgress`] trait, told a [`RetryEvent`] before every retry and told when a retried
//! request got through, so a binary shows both providers' retries with one implementation.
//!
//! ```
//! use std::time::{Duration, SystemTime};
//! use reqwest::header::HeaderMap;
//!
//! let mut headers = HeaderMap::new();
//! headers.insert("retry-after-ms", "1500".parse().unwrap());
//! assert_eq!(sdk_retry::retry_after(&headers, SystemTime::now()), Some(Duration::from_millis(1500)));
//!
//! let base = Duration::from_millis(500);
//! let max = Duration::from_secs(8);
//! assert_eq!(sdk_retry::backoff(base, max, 2, 0.0), Duration::from_secs(2));
//! assert_eq!(sdk_retry::backoff(base, max, 9, 1.0), Duration::from_secs(6));
//! ```

#![warn(missing_docs)]

mod progress;

use std::time::{Duration, SystemTime};

use reqwest::header::HeaderMap;

pub use progress::{RetryEvent, RetryHook, RetryProgress};

/// The header telling the server how many retries preceded this attempt, as the official SDKs
/// send it.
pub const RETRY_COUNT_HEADER: &str = "x-stainless-retry-count";

/// The backoff before retry number `retries_taken + 1`: `min(base × 2^retries_taken, max)`,
/// shortened by up to a quarter for a jitter draw `u` in `[0, 1)`.
pub fn backoff(base: Duration, max: Duration, retries_taken: u32, u: f64) -> Duration {
    let factor = 2f64.powi(retries_taken.min(30) as i32);
    base.mul_f64(factor)
        .min(max)
        .mul_f64(1.0 - 0.25 * u.clamp(0.0, 1.0))
}

/// Whether the SDKs retry an answer with `status`: as the server says in `x-should-retry`
/// (`true` or `false`), else for 408, 409, 429 and every status from 500.
pub fn should_retry(status: u16, headers: &HeaderMap) -> bool {
    match header_str(headers, "x-should-retry") {
        Some("true") => true,
        Some("false") => false,
        _ => matches!(status, 408 | 409 | 429 | 500..),
    }
}

/// The delay asked for by `retry-after-ms`, else `retry-after` as seconds (a float) or an HTTP
/// date; `None` when neither is there or readable. A date in the past gives zero.
pub fn retry_after(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    if let Some(ms) =
        header_str(headers, "retry-after-ms").and_then(|v| v.trim().parse::<f64>().ok())
    {
        return Duration::try_from_secs_f64(ms / 1000.0).ok();
    }
    let value = header_str(headers, "retry-after")?.trim();
    if let Ok(seconds) = value.parse::<f64>() {
        return Duration::try_from_secs_f64(seconds).ok();
    }
    let date = httpdate::parse_http_date(value).ok()?;
    Some(date.duration_since(now).unwrap_or(Duration::ZERO))
}

fn header_str<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers.get(name)?.to_str().ok()
}

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

    #[test]
    fn server_delays_in_every_spelling() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000_000);
        let at = |pairs: &[(&'static str, &str)]| retry_after(&headers(pairs), now);
        assert_eq!(
            at(&[("retry-after-ms", "250")]),
            Some(Duration::from_millis(250))
        );
        assert_eq!(
            at(&[("retry-after-ms", "250"), ("retry-after", "9")]),
            Some(Duration::from_millis(250)),
            "milliseconds win"
        );
        assert_eq!(
            at(&[("retry-after", "1.5")]),
            Some(Duration::from_millis(1500))
        );
        let in_30_s = httpdate::fmt_http_date(now + Duration::from_secs(30));
        assert_eq!(
            at(&[("retry-after", &in_30_s)]),
            Some(Duration::from_secs(30))
        );
        let past = httpdate::fmt_http_date(now - Duration::from_secs(30));
        assert_eq!(at(&[("retry-after", &past)]), Some(Duration::ZERO));
        assert_eq!(at(&[("retry-after", "soon")]), None);
        assert_eq!(at(&[("retry-after", "-1")]), None);
        assert_eq!(at(&[]), None);
    }

    #[test]
    fn the_server_may_overrule_the_status() {
        assert!(should_retry(429, &headers(&[])));
        assert!(should_retry(529, &headers(&[])));
        assert!(!should_retry(400, &headers(&[])));
        assert!(!should_retry(503, &headers(&[("x-should-retry", "false")])));
        assert!(should_retry(400, &headers(&[("x-should-retry", "true")])));
        assert!(!should_retry(404, &headers(&[("x-should-retry", "maybe")])));
    }

    #[test]
    fn backoff_doubles_up_to_the_cap_and_jitter_shortens_it() {
        let (base, max) = (Duration::from_millis(500), Duration::from_secs(8));
        let delays: Vec<_> = (0..6).map(|n| backoff(base, max, n, 0.0)).collect();
        assert_eq!(
            delays,
            [500, 1000, 2000, 4000, 8000, 8000].map(Duration::from_millis)
        );
        assert_eq!(backoff(base, max, 0, 1.0), Duration::from_millis(375));
        assert_eq!(backoff(base, max, u32::MAX, 2.0), Duration::from_secs(6));
    }
}
