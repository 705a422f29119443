//! The outline's warnings on the terminal, and `--strict`, which makes them errors.

use std::path::Path;

use curriculum_parser::Warning;

use crate::progress::Reporter;
use crate::term::Shown;
use crate::usage_error;

/// Prints each warning as `warning: <path>:<line>: <message>` (even with `-q`);
/// with `strict`, then fails when there were any.
///
/// # Errors
///
/// With `strict` and at least one warning, a usage error (exit 2) saying how many.
pub fn show_warnings(
    reporter: &Reporter,
    path: &Path,
    warnings: &[Warning],
    strict: bool,
) -> anyhow::Result<()> {
    for warning in warnings {
        reporter.warn(format!(
            "{}:{}: {}",
            Shown(path.display()),
            warning.line,
            Shown(&warning.message)
        ));
    }
    if strict && !warnings.is_empty() {
        return Err(usage_error(
            format!(
                "{} has {} (above), and --strict makes them errors",
                Shown(path.display()),
                count_warnings(warnings.len())
            ),
            Some(
                "fix the outline at those lines, or run without --strict to go on with it as it is parsed",
            ),
        ));
    }
    Ok(())
}

/// `1 warning`, `3 warnings`.
pub fn count_warnings(n: usize) -> String {
    if n == 1 {
        "1 warning".to_owned()
    } else {
        format!("{n} warnings")
    }
}
