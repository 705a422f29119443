//! How numbers read on the terminal, the same in every command: counts with thousands
//! separators, money, sizes and plurals.
//!
//! The rules:
//! - counts: `1,234,567`;
//! - money: US dollars with two decimals (`$1,234.50`, `$0.02`); only amounts below one cent
//!   get four (`$0.0041`), and amounts below a hundredth of a cent read `<$0.0001`;
//! - sizes: decimal units with one decimal (`512 B`, `889.6 KB`, `1.2 MB`);
//! - plurals: the count, then the word in the form the count calls for (`1 request`,
//!   `2 requests`, `1 batch`, `3 batches`).

/// `1234567` as `1,234,567` (any unsigned count).
pub fn count(n: impl TryInto<u64>) -> String {
    let digits = n.try_into().unwrap_or(u64::MAX).to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

/// A `usize` count, as [`count`].
pub fn count_usize(n: usize) -> String {
    count(n)
}

/// A dollar amount: two decimals, four below one cent (see the module's rules).
pub fn dollars(value: f64) -> String {
    if !value.is_finite() {
        return "unknown".to_owned();
    }
    let sign = if value < 0.0 { "-" } else { "" };
    let value = value.abs();
    if value == 0.0 {
        return "$0.00".to_owned();
    }
    if value < 0.0001 {
        return format!("{sign}<$0.0001");
    }
    if value < 0.01 {
        return format!("{sign}${value:.4}");
    }
    let fixed = format!("{value:.2}");
    let (whole, cents) = fixed.split_once('.').unwrap_or((&fixed, "00"));
    let whole = whole
        .parse::<u64>()
        .map_or_else(|_| whole.to_owned(), count);
    format!("{sign}${whole}.{cents}")
}

/// A cost that may be unknown (a model without a price): [`dollars`], or `unknown (no price
/// for this model)`.
pub fn usd(value: Option<f64>) -> String {
    match value {
        Some(value) => dollars(value),
        None => "unknown (no price for this model)".to_owned(),
    }
}

/// A size in decimal units: `512 B`, `889.6 KB`, `1.2 MB`, `3.0 GB`.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["B", "KB", "MB", "GB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 999.95 && unit < UNITS.len() - 1 {
        value /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// `n` and a word ending in `s` when `n` is not one: `1 request`, `2 requests` (counts with
/// thousands separators).
pub fn plural(n: impl TryInto<u64>, word: &str) -> String {
    plural_as(n, word, &format!("{word}s"))
}

/// `n` and the singular or plural form given: `1 batch`, `2 batches`.
pub fn plural_as(n: impl TryInto<u64>, singular: &str, plural: &str) -> String {
    let n = n.try_into().unwrap_or(u64::MAX);
    format!("{} {}", count(n), if n == 1 { singular } else { plural })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_have_thousands_separators() {
        assert_eq!(count(0u64), "0");
        assert_eq!(count(999u64), "999");
        assert_eq!(count(1_000u64), "1,000");
        assert_eq!(count(171_374u64), "171,374");
        assert_eq!(count(1_234_567u64), "1,234,567");
        assert_eq!(count_usize(50_000), "50,000");
    }

    #[test]
    fn money_has_two_decimals_and_four_only_below_a_cent() {
        assert_eq!(dollars(0.0), "$0.00");
        assert_eq!(dollars(0.02), "$0.02");
        assert_eq!(dollars(0.0041), "$0.0041");
        assert_eq!(dollars(0.00001), "<$0.0001");
        assert_eq!(dollars(1.5), "$1.50");
        assert_eq!(dollars(6.529), "$6.53");
        assert_eq!(dollars(1234.5), "$1,234.50");
        assert_eq!(dollars(f64::NAN), "unknown");
        assert_eq!(usd(Some(0.019)), "$0.02");
        assert!(usd(None).starts_with("unknown"));
    }

    #[test]
    fn sizes_have_one_unit_style() {
        assert_eq!(bytes(512), "512 B");
        assert_eq!(bytes(171_374), "171.4 KB");
        assert_eq!(bytes(889_600), "889.6 KB");
        assert_eq!(bytes(999_990), "1.0 MB");
        assert_eq!(bytes(2_100_000), "2.1 MB");
        assert_eq!(bytes(3_000_000_000), "3.0 GB");
    }

    #[test]
    fn plurals_follow_the_count() {
        assert_eq!(plural(1, "request"), "1 request");
        assert_eq!(plural(0, "request"), "0 requests");
        assert_eq!(plural(1_500, "lesson"), "1,500 lessons");
        assert_eq!(plural_as(1, "batch", "batches"), "1 batch");
        assert_eq!(plural_as(2, "batch", "batches"), "2 batches");
    }
}
