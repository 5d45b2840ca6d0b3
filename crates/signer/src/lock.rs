//! The single-instance lock: without a database, one signer process serves a set of roots
//! of trust. Two would each sign a timestamp with the next version number, and clients
//! would see two timestamps claiming one version (a fork).
//!
//! The lock is an exclusive `flock` on a file, so it is released by the kernel when the
//! process dies, even by SIGKILL: a restart after a crash never waits on a stale lock.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::Write as _;
use std::path::{Path, PathBuf};

use ocituf_resolver::ErrorKind;
use ocituf_writer::{Error, Result};

/// Held for as long as the signer runs.
#[derive(Debug)]
pub struct InstanceLock {
    _file: File,
    pub path: PathBuf,
}

impl InstanceLock {
    /// Take the lock at `path`, or fail at once if another process holds it.
    ///
    /// # Errors
    /// A configuration error when another signer holds the lock or the file cannot be
    /// opened.
    pub fn acquire(path: &Path) -> Result<Self> {
        let mut file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(path)
            .map_err(|e| {
                Error::new(
                    ErrorKind::Config,
                    format!("could not open the lock file {}: {e}", path.display()),
                )
            })?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                return Err(Error::new(
                    ErrorKind::Config,
                    format!(
                        "another signer holds {}: only one instance may serve these roots of trust without a database (stop it, or configure PostgreSQL)",
                        path.display()
                    ),
                ))
            }
            Err(TryLockError::Error(e)) => {
                return Err(Error::new(
                    ErrorKind::Config,
                    format!("could not lock {}: {e}", path.display()),
                ))
            }
        }
        // The holder's PID, for whoever finds the file (the lock, not the content, counts).
        let _ = file.set_len(0);
        let _ = writeln!(file, "{}", std::process::id());
        Ok(Self {
            _file: file,
            path: path.to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_signer_is_refused_while_the_first_holds_the_lock() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("signer.lock");
        let first = InstanceLock::acquire(&path).unwrap();
        let second = InstanceLock::acquire(&path).unwrap_err();
        assert_eq!(second.kind(), ErrorKind::Config);
        assert!(second.message.contains("another signer holds"), "{second}");
        drop(first);
        InstanceLock::acquire(&path).unwrap();
    }
}
