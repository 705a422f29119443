//! One run at a time: an advisory OS lock on the job, held for the whole run by every
//! command that can submit, download or write lessons for it.
//!
//! The lock is `std::fs::File::lock` (`flock` on Unix, `LockFileEx` on Windows) on
//! `<out>/.lesson-batch.lock`. The OS drops it with the process, so a killed run never
//! blocks the next one. The file also says who holds the lock, for the waiting message.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::Error;

/// The lock file's name inside the output directory.
pub const LOCK_FILE: &str = ".lesson-batch.lock";

/// Who holds a job's lock, as the holder wrote it into the lock file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockHolder {
    /// The holder's process id.
    pub pid: u32,
    /// When it took the lock (Unix seconds).
    pub started_at: i64,
    /// What it runs (the command name).
    pub command: String,
}

/// Whether a run that finds the job locked waits for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockWait {
    /// Wait until the other run ends.
    Wait,
    /// Fail at once with [`Error::Locked`].
    NoWait,
}

/// The held lock; dropping it releases it.
#[derive(Debug)]
pub struct JobLock {
    // Held open for the lock's lifetime; closing the file releases the lock.
    _file: File,
    path: PathBuf,
}

impl JobLock {
    /// Takes the lock of the job writing into `out_dir` for `command`. When another run
    /// holds it, `on_wait` is told who (when the file says) and the call blocks until the
    /// lock is free, or, with [`LockWait::NoWait`], returns [`Error::Locked`].
    ///
    /// # Errors
    ///
    /// [`Error::Locked`], or [`Error::Io`] when the lock file cannot be opened or locked.
    pub fn acquire(
        out_dir: &Path,
        command: &str,
        wait: LockWait,
        on_wait: impl FnOnce(Option<&LockHolder>),
    ) -> Result<JobLock, Error> {
        std::fs::create_dir_all(out_dir).map_err(|source| Error::io("create", out_dir, source))?;
        let path = out_dir.join(LOCK_FILE);
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|source| Error::io("open", &path, source))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let holder = read_holder(&mut file);
                if wait == LockWait::NoWait {
                    return Err(Error::Locked {
                        path,
                        holder: holder.map(Box::new),
                    });
                }
                on_wait(holder.as_ref());
                file.lock()
                    .map_err(|source| Error::io("lock", &path, source))?;
            }
            Err(TryLockError::Error(source)) => return Err(Error::io("lock", &path, source)),
        }
        let holder = LockHolder {
            pid: std::process::id(),
            started_at: crate::unix_now(),
            command: command.to_owned(),
        };
        let json = serde_json::to_vec(&holder).unwrap_or_default();
        file.set_len(0)
            .and_then(|()| file.seek(SeekFrom::Start(0)).map(drop))
            .and_then(|()| file.write_all(&json))
            .and_then(|()| file.flush())
            .map_err(|source| Error::io("write", &path, source))?;
        Ok(JobLock { _file: file, path })
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// The holder the lock file names, when it names one.
fn read_holder(file: &mut File) -> Option<LockHolder> {
    let mut text = String::new();
    file.seek(SeekFrom::Start(0)).ok()?;
    file.read_to_string(&mut text).ok()?;
    serde_json::from_str(&text).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_waits_or_fails_and_names_the_holder() {
        let dir = tempfile::tempdir().unwrap();
        let first = JobLock::acquire(dir.path(), "generate", LockWait::Wait, |_| {
            panic!("nobody holds it yet")
        })
        .unwrap();
        let err = JobLock::acquire(dir.path(), "process", LockWait::NoWait, |_| {}).unwrap_err();
        match err {
            Error::Locked { holder, .. } => {
                let holder = holder.expect("the holder wrote itself into the file");
                assert_eq!(holder.pid, std::process::id());
                assert_eq!(holder.command, "generate");
            }
            other => panic!("unexpected {other:?}"),
        }
        // A waiting run gets the lock once the first one lets go.
        let (tx, rx) = std::sync::mpsc::channel();
        let out = dir.path().to_path_buf();
        let waiter = std::thread::spawn(move || {
            JobLock::acquire(&out, "second", LockWait::Wait, |holder| {
                tx.send(holder.cloned()).unwrap();
            })
            .map(|_| ())
        });
        let told = rx.recv().unwrap().unwrap();
        assert_eq!(told.command, "generate");
        drop(first);
        waiter.join().unwrap().unwrap();
    }
}
