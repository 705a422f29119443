//! Writing to stdout and stderr without ever panicking (`println!` panics when a write fails).
//!
//! A closed pipe (`| head -1`, or a reader that went away in the middle of a wait) ends the
//! program at once and quietly, as ripgrep does, with [`BROKEN_PIPE_EXIT`]: nothing could be
//! said anyway, and a batch on the server keeps running (a rerun attaches to it).
//! Any other failure to write stderr (`2>/dev/full`) is ignored: the run goes on without its
//! messages. A failure to write stdout (`>/dev/full`) is an error the caller reports.

use std::io::Write;

/// The exit code after a closed pipe: 128 + SIGPIPE, what a shell shows for a program the
/// signal ended (`yes | head -1`), so `set -o pipefail` scripts see it as they see any other.
pub const BROKEN_PIPE_EXIT: u8 = 141;

/// Ends the program quietly after a closed pipe.
// Exiting at once is the point: the output the rest of the run would print has nowhere to go,
// and everything on disk is already written atomically (the OS releases the job's lock).
#[allow(clippy::exit)]
fn broken_pipe() -> ! {
    std::process::exit(i32::from(BROKEN_PIPE_EXIT))
}

/// Writes `text` to stdout and flushes it.
///
/// # Errors
///
/// When stdout cannot be written for another reason than a closed pipe (a full disk).
pub fn stdout(text: &str) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(err) if err.kind() == std::io::ErrorKind::BrokenPipe => broken_pipe(),
        other => other,
    }
}

/// Writes `text` to stderr; a closed pipe ends the program, other failures are ignored.
pub fn stderr(text: &str) {
    let mut err = std::io::stderr().lock();
    if let Err(error) = err.write_all(text.as_bytes()).and_then(|()| err.flush())
        && error.kind() == std::io::ErrorKind::BrokenPipe
    {
        broken_pipe();
    }
}

/// `eprintln!` that never panics: see [`stderr`].
macro_rules! errln {
    () => { $crate::output::stderr("\n") };
    ($($arg:tt)*) => { $crate::output::stderr(&format!("{}\n", format_args!($($arg)*))) };
}

/// `eprint!` that never panics: see [`stderr`].
macro_rules! err {
    ($($arg:tt)*) => { $crate::output::stderr(&format!($($arg)*)) };
}

/// `print!` that never panics: evaluates to [`stdout`]'s `io::Result`.
macro_rules! out {
    ($($arg:tt)*) => { $crate::output::stdout(&format!($($arg)*)) };
}

pub(crate) use {err, errln, out};
