//! `check-batch-status --list` as a table that fits the terminal: a header, one row per
//! batch, columns narrowed (never wrapped) when the width is short.

use chrono::{Local, TimeZone};
use openai_batch_client::Batch;

use crate::format::count;
use crate::term::Shown;

/// The width tables are fitted to: `COLUMNS` when it holds a positive number, else the
/// terminal's width when stdout is one, else `None` (piped: rows are not cut).
pub fn output_width() -> Option<usize> {
    if let Some(columns) = std::env::var("COLUMNS")
        .ok()
        .and_then(|columns| columns.trim().parse::<usize>().ok())
        .filter(|&columns| columns > 0)
    {
        return Some(columns);
    }
    let term = console::Term::stdout();
    term.is_term()
        .then(|| usize::from(term.size().1))
        .filter(|&columns| columns > 0)
}

/// The batches as a table with a header: id, status, done/total, failed, created (local
/// time), and the job that made the batch (its `job` metadata). With `width`, every line fits
/// in it: the job and id columns narrow first (ids keep their start and end), then the date.
pub fn batch_table(batches: &[Batch], width: Option<usize>) -> String {
    let header = ["ID", "STATUS", "DONE/TOTAL", "FAILED", "CREATED", "JOB"];
    let rows: Vec<[String; 6]> = batches
        .iter()
        .map(|batch| {
            let counts = batch.counts();
            [
                Shown(&batch.id).to_string(),
                batch.status.to_string(),
                format!(
                    "{}/{}",
                    count(counts.completed + counts.failed),
                    count(counts.total)
                ),
                count(counts.failed),
                created(batch.created_at),
                batch
                    .metadata_value(lesson_job::JOB_NAME_KEY)
                    .map_or_else(|| "-".to_owned(), |job| Shown(job).to_string()),
            ]
        })
        .collect();
    let mut widths: [usize; 6] = std::array::from_fn(|column| {
        rows.iter()
            .map(|row| chars(&row[column]))
            .chain([header[column].len()])
            .max()
            .unwrap_or(0)
    });
    if let Some(width) = width {
        fit(&mut widths, width);
    }
    let mut out = String::new();
    let header: [String; 6] = header.map(str::to_owned);
    for row in std::iter::once(&header).chain(&rows) {
        let cells: Vec<String> = row
            .iter()
            .zip(widths)
            .enumerate()
            .filter(|(_, (_, width))| *width > 0)
            .map(|(column, (cell, width))| {
                let cell = match column {
                    0 => middle_cut(cell, width),
                    // A narrowed created column keeps the whole date.
                    4 if width == DATE_WIDTH => cell.chars().take(DATE_WIDTH).collect(),
                    _ => end_cut(cell, width),
                };
                // Numbers align right, text left.
                if column == 2 || column == 3 {
                    format!("{cell:>width$}")
                } else {
                    format!("{cell:<width$}")
                }
            })
            .collect();
        let line = cells.join("  ");
        let line = line.trim_end();
        // Whatever is left over (a width too small for even the narrowest columns) is cut.
        let line = match width {
            Some(width) => console::truncate_str(line, width, "…").into_owned(),
            None => line.to_owned(),
        };
        out.push_str(&line);
        out.push('\n');
    }
    out
}

/// Narrows columns until their sum (with two spaces between) fits `width`: the job down to
/// 8, the id down to 16, then the created column loses its time of day, then goes.
fn fit(widths: &mut [usize; 6], width: usize) {
    let total = |widths: &[usize; 6]| {
        let shown = widths.iter().filter(|&&w| w > 0).count();
        widths.iter().sum::<usize>() + 2 * shown.saturating_sub(1)
    };
    for (column, min) in [(5, 8), (0, 16)] {
        let over = total(widths).saturating_sub(width);
        let can = widths[column].saturating_sub(min);
        widths[column] -= over.min(can);
    }
    if total(widths) > width && widths[4] > DATE_WIDTH {
        widths[4] = DATE_WIDTH;
    }
    if total(widths) > width {
        widths[4] = 0;
    }
}

/// The created column's width with the date alone (`2026-12-04`).
const DATE_WIDTH: usize = 10;

fn created(unix: i64) -> String {
    Local.timestamp_opt(unix, 0).single().map_or_else(
        || unix.to_string(),
        |t| t.format("%Y-%m-%d %H:%M").to_string(),
    )
}

fn chars(text: &str) -> usize {
    console::measure_text_width(text)
}

/// `text` cut at the end to `width` columns, with `…`.
fn end_cut(text: &str, width: usize) -> String {
    console::truncate_str(text, width, "…").into_owned()
}

/// `text` cut in the middle to `width` columns, keeping its start and end (ids differ at both).
fn middle_cut(text: &str, width: usize) -> String {
    let all: Vec<char> = text.chars().collect();
    if all.len() <= width || width < 3 {
        return end_cut(text, width);
    }
    let tail = (width - 1) / 3;
    let head = width - 1 - tail;
    let start: String = all[..head].iter().collect();
    let end: String = all[all.len() - tail..].iter().collect();
    format!("{start}…{end}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(id: &str, job: &str) -> Batch {
        serde_json::from_value(serde_json::json!({
            "id": id,
            "endpoint": "/v1/chat/completions",
            "input_file_id": "file-1",
            "completion_window": "24h",
            "status": "in_progress",
            "created_at": 1_700_000_000,
            "request_counts": {"total": 1234, "completed": 1000, "failed": 2},
            "metadata": {"job": job, "shard_sha256": "a".repeat(64)}
        }))
        .unwrap()
    }

    #[test]
    fn rows_fit_the_width_and_never_show_the_hash() {
        let batches = [
            batch(
                "batch_6925f0c1c4a881908a2b3c3d4e5f6a7b",
                "data-governance-course",
            ),
            batch("batch_short", "x"),
        ];
        for width in [40, 60, 70, 120] {
            let table = batch_table(&batches, Some(width));
            for line in table.lines() {
                assert!(chars(line) <= width, "{width}: {line:?}");
                assert!(!line.contains("aaaa"), "{line}");
            }
            assert!(table.starts_with("ID"), "{table}");
        }
        let wide = batch_table(&batches, Some(120));
        assert!(
            wide.contains("batch_6925f0c1c4a881908a2b3c3d4e5f6a7b"),
            "{wide}"
        );
        assert!(wide.contains("1,002/1,234"), "{wide}");
        let narrow = batch_table(&batches, Some(70));
        assert!(narrow.contains('…'), "{narrow}");
    }
}
