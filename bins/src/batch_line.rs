//! A batch's progress in one line that fits the terminal: status, done/total, percent, failed,
//! time since the batch was created, time left once it moves, and cost so far when the server
//! reports usage; and the line that says a batch finished.

use std::time::Duration;

use batch_request::PriceTable;
use openai_batch_client::{Batch, BatchStatus};

use crate::progress::{human_duration, usd};
use crate::term::Shown;

/// Where the requests of one batch stood when this run first saw them, for the rate when the
/// server does not say when the batch started running.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FirstSeen {
    /// Unix seconds.
    pub at: i64,
    /// Requests finished then.
    pub done: u64,
}

/// The progress line of `batch` at unix time `now`, at most `width` columns wide (cut with
/// `…`, never wrapped). `trouble` is a state that outranks the numbers, such as
/// "server unreachable since 14:03, retrying".
pub fn progress_line(
    batch: &Batch,
    now: i64,
    first_seen: Option<FirstSeen>,
    trouble: Option<&str>,
    width: usize,
) -> String {
    let counts = batch.counts();
    let done = counts.completed + counts.failed;
    let mut parts = vec![batch.status.to_string()];
    if let Some(trouble) = trouble {
        parts.push(trouble.to_owned());
    }
    // While validating the server has not counted the requests yet: no `0/0`.
    if counts.total > 0 {
        parts.push(format!(
            "{done}/{} ({}%)",
            counts.total,
            done * 100 / counts.total
        ));
    }
    if counts.failed > 0 {
        parts.push(format!("{} failed", counts.failed));
    }
    let elapsed = format!("{} elapsed", clock(now - batch.created_at));
    let left =
        time_left(batch, now, first_seen).map(|left| format!("{} left", human_duration(left)));
    let cost = cost_so_far(batch).map(|cost| format!("{} so far", usd(Some(cost))));
    let id = Shown(&batch.id).to_string();
    // Too wide: the id gives way first (its ends tell batches apart), then the cost, then
    // the elapsed time (time left says more); only then is the tail cut.
    let short = short_id(&id);
    let candidates = [
        (&id, true, true),
        (&short, true, true),
        (&short, true, false),
        (&short, false, false),
    ];
    let mut line = String::new();
    for (id, with_elapsed, with_cost) in candidates {
        let mut all = parts.clone();
        all.extend(with_elapsed.then(|| elapsed.clone()));
        all.extend(left.clone());
        all.extend(cost.clone().filter(|_| with_cost));
        line = format!("{id}  {}", all.join(" · "));
        if console::measure_text_width(&line) <= width {
            return line;
        }
    }
    console::truncate_str(&line, width, "…").into_owned()
}

/// The line printed once a batch reaches a terminal status, e.g.
/// `batch_abc completed: 120/120 done, 2 failed, in 12m 03s, $0.41`.
pub fn finished_line(batch: &Batch, now: i64) -> String {
    let counts = batch.counts();
    let ended = [
        batch.completed_at,
        batch.failed_at,
        batch.expired_at,
        batch.cancelled_at,
    ]
    .into_iter()
    .flatten()
    .max()
    .unwrap_or(now);
    let mut line = format!(
        "{} {}: {}/{} done",
        Shown(&batch.id),
        batch.status,
        counts.completed + counts.failed,
        counts.total
    );
    if counts.failed > 0 {
        line.push_str(&format!(", {} failed", counts.failed));
    }
    line.push_str(&format!(", in {}", clock(ended - batch.created_at)));
    if let Some(cost) = cost_so_far(batch) {
        line.push_str(&format!(", {}", usd(Some(cost))));
    }
    line
}

/// `45s`, `3m 07s`, `1h 02m`.
pub fn clock(seconds: i64) -> String {
    let seconds = seconds.max(0);
    match seconds {
        0..60 => format!("{seconds}s"),
        60..3600 => format!("{}m {:02}s", seconds / 60, seconds % 60),
        _ => format!("{}h {:02}m", seconds / 3600, seconds % 3600 / 60),
    }
}

/// Time left at the rate so far: from when the server says the batch started running, else
/// from when this run first saw it; none before any request finished.
fn time_left(batch: &Batch, now: i64, first_seen: Option<FirstSeen>) -> Option<Duration> {
    if batch.status != BatchStatus::InProgress {
        return None;
    }
    let counts = batch.counts();
    let done = counts.completed + counts.failed;
    let (since, done_since) = match (batch.in_progress_at, first_seen) {
        (Some(started), _) => (started, done),
        (None, Some(first)) => (first.at, done.checked_sub(first.done)?),
        (None, None) => return None,
    };
    let seconds = u64::try_from(now - since).ok().filter(|&s| s > 0)?;
    if done_since == 0 || counts.total <= done {
        return None;
    }
    let left = (counts.total - done) as f64 * seconds as f64 / done_since as f64;
    Some(Duration::from_secs_f64(left.min(1e9)))
}

/// The batch's cost at batch prices from the `usage` the server reports, when it reports
/// usage and the model has a price; nothing is guessed otherwise.
fn cost_so_far(batch: &Batch) -> Option<f64> {
    lesson_job::batch_cost(batch, None, &PriceTable::builtin())?.usd
}

/// `batch_6925f0…4e5f`: the id's start and end.
fn short_id(id: &str) -> String {
    let chars: Vec<char> = id.chars().collect();
    if chars.len() <= 16 {
        return id.to_owned();
    }
    let head: String = chars[..11].iter().collect();
    let tail: String = chars[chars.len() - 4..].iter().collect();
    format!("{head}…{tail}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(status: &str, completed: u64, failed: u64, total: u64) -> Batch {
        serde_json::from_value(serde_json::json!({
            "id": "batch_6925f0c1c4a881908a2b3c3d4e5f6a7b",
            "object": "batch",
            "endpoint": "/v1/chat/completions",
            "model": "gpt-4o-mini",
            "input_file_id": "file-1",
            "completion_window": "24h",
            "status": status,
            "created_at": 1_000,
            "in_progress_at": 1_010,
            "request_counts": {"total": total, "completed": completed, "failed": failed},
        }))
        .unwrap()
    }

    #[test]
    fn validating_shows_no_counts() {
        let line = progress_line(&batch("validating", 0, 0, 0), 1_012, None, None, 200);
        assert!(line.contains("validating"), "{line}");
        assert!(!line.contains("0/0"), "{line}");
        assert!(line.contains("12s elapsed"), "{line}");
    }

    #[test]
    fn in_progress_shows_percent_failed_elapsed_and_time_left() {
        // 30 of 120 done in 60 s since it started running: 90 more take 180 s.
        let line = progress_line(&batch("in_progress", 28, 2, 120), 1_070, None, None, 200);
        for part in [
            "in_progress",
            "30/120 (25%)",
            "2 failed",
            "1m 10s elapsed",
            "3m left",
        ] {
            assert!(line.contains(part), "{part} in {line}");
        }
        // Nothing moved yet: no time left is invented, nor a cost without usage.
        let line = progress_line(&batch("in_progress", 0, 0, 120), 1_070, None, None, 200);
        assert!(!line.contains("left") && !line.contains('$'), "{line}");
    }

    #[test]
    fn cost_comes_from_usage_only() {
        let mut with_usage = batch("in_progress", 10, 0, 20);
        with_usage.usage = Some(openai_batch_client::BatchUsage {
            input_tokens: 1_000_000,
            output_tokens: 0,
            ..Default::default()
        });
        let line = progress_line(&with_usage, 1_070, None, None, 200);
        assert!(line.contains("$0.07"), "{line}");
    }

    #[test]
    fn never_wider_than_the_terminal() {
        let batch = batch("in_progress", 28, 2, 120);
        for width in [20, 40, 70, 120] {
            let line = progress_line(
                &batch,
                1_070,
                None,
                Some("server unreachable since 14:03, retrying"),
                width,
            );
            assert!(
                console::measure_text_width(&line) <= width,
                "{width}: {line}"
            );
        }
        let narrow = progress_line(&batch, 1_070, None, None, 70);
        assert!(
            narrow.starts_with("batch_6925f…6a7b  in_progress"),
            "{narrow}"
        );
        // The time left stays; the cost and the elapsed time give way first.
        let narrow = progress_line(&batch, 1_070, None, None, 67);
        assert!(narrow.ends_with("3m left"), "{narrow}");
    }

    #[test]
    fn finished_line_says_how_it_ended() {
        let mut done = batch("completed", 118, 2, 120);
        done.completed_at = Some(1_725);
        assert_eq!(
            finished_line(&done, 2_000),
            "batch_6925f0c1c4a881908a2b3c3d4e5f6a7b completed: 120/120 done, 2 failed, in 12m 05s"
        );
    }
}
