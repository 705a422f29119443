//! Ids in the real API's formats, clock helpers, and a small deterministic hash for seeded choices.

use std::time::{SystemTime, UNIX_EPOCH};

use rand::Rng;

const BASE62: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// `file-` plus 24 base62 characters.
pub(crate) fn file_id() -> String {
    let mut rng = rand::rng();
    let tail: String = (0..24)
        .map(|_| char::from(BASE62[rng.random_range(0..BASE62.len())]))
        .collect();
    format!("file-{tail}")
}

/// 32 lowercase hex characters.
pub(crate) fn hex32() -> String {
    format!("{:032x}", rand::rng().random::<u128>())
}

/// `batch_` plus 32 hex characters.
pub(crate) fn batch_id() -> String {
    format!("batch_{}", hex32())
}

/// `batch_req_` plus 32 hex characters.
pub(crate) fn batch_request_id() -> String {
    format!("batch_req_{}", hex32())
}

/// An Anthropic-style id: `prefix`, then `01` and 22 base62 characters
/// (`msgbatch_01...`, `msg_01...`, `req_01...`).
pub(crate) fn anthropic_id(prefix: &str) -> String {
    let mut rng = rand::rng();
    let tail: String = (0..22)
        .map(|_| char::from(BASE62[rng.random_range(0..BASE62.len())]))
        .collect();
    format!("{prefix}01{tail}")
}

/// `req_` plus 32 hex characters, for `x-request-id`.
pub(crate) fn http_request_id() -> String {
    format!("req_{}", hex32())
}

/// Unix seconds now.
pub(crate) fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| {
            i64::try_from(elapsed.as_secs()).unwrap_or(i64::MAX)
        })
}

/// FNV-1a over the parts, then a SplitMix64 finish: stable across runs and platforms.
pub(crate) fn stable_hash(seed: u64, parts: &[&[u8]]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325 ^ seed;
    for part in parts {
        for &byte in *part {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        }
        // Separates the parts so ("ab", "c") and ("a", "bc") differ.
        hash ^= 0xff;
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash = (hash ^ (hash >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    hash = (hash ^ (hash >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    hash ^ (hash >> 31)
}

/// A deterministic number in `[0, 1)` for a seed and some parts.
pub(crate) fn unit_interval(seed: u64, parts: &[&[u8]]) -> f64 {
    // The top 53 bits fill an f64 mantissa exactly.
    #[allow(clippy::cast_precision_loss)] // 53 bits fit an f64 exactly.
    let value = (stable_hash(seed, parts) >> 11) as f64;
    value / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_have_the_real_formats() {
        let file = file_id();
        assert!(file.starts_with("file-") && file.len() == 29, "{file}");
        let batch = batch_id();
        assert!(batch.starts_with("batch_") && batch.len() == 38, "{batch}");
        let request = batch_request_id();
        assert_eq!(request.len(), "batch_req_".len() + 32);
        assert!(request[10..].chars().all(|c| c.is_ascii_hexdigit()));
    }

    #[test]
    fn unit_interval_is_stable_and_spread() {
        assert_eq!(
            unit_interval(7, &[b"lesson_M0-L001"]),
            unit_interval(7, &[b"lesson_M0-L001"])
        );
        assert_ne!(
            unit_interval(7, &[b"lesson_M0-L001"]),
            unit_interval(8, &[b"lesson_M0-L001"])
        );
        let values: Vec<f64> = (0..1000)
            .map(|i| unit_interval(1, &[format!("id-{i}").as_bytes()]))
            .collect();
        assert!(values.iter().all(|v| (0.0..1.0).contains(v)));
        let below_half = values.iter().filter(|v| **v < 0.5).count();
        assert!((400..600).contains(&below_half), "{below_half}");
    }
}
