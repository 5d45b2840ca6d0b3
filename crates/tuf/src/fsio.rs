//! Bounded reads and atomic writes of local files: the two file operations every local store
//! in ocituf needs (this crate's `FsStore`, the OCI image layout, the conformance client).
//!
//! Local files are untrusted input like any other: a read never takes more than its limit,
//! whatever the file's size says. A write never leaves a half-written file under its name: it
//! goes to a temporary file in the same directory, is synced, renamed over the old file, and
//! the directory is synced so that the rename itself survives a crash.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read as _, Write as _};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

/// Why a local file could not be read or written. Callers add which file it was.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FileError {
    /// The file is longer than the limit the caller set.
    #[error("the file is longer than the limit of {max_len} bytes")]
    TooLarge { max_len: u64 },
    /// The operating system refused `op`.
    #[error("could not {op}")]
    Io {
        op: &'static str,
        #[source]
        source: io::Error,
    },
}

fn io(op: &'static str) -> impl FnOnce(io::Error) -> FileError {
    move |source| FileError::Io { op, source }
}

/// Read `path`, at most `max_len` bytes; `Ok(None)` if it does not exist.
///
/// # Errors
/// [`FileError::TooLarge`] when the file holds more than `max_len` bytes (also when it grows
/// while being read); [`FileError::Io`] when it cannot be opened or read.
pub fn read_bounded(path: &Path, max_len: u64) -> Result<Option<Vec<u8>>, FileError> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io("open")(e)),
    };
    // The size is a hint for the allocation only: the read itself is bounded too.
    let hint = file.metadata().map_or(0, |m| m.len());
    if hint > max_len {
        return Err(FileError::TooLarge { max_len });
    }
    let mut bytes = Vec::with_capacity(usize::try_from(hint).unwrap_or(0));
    file.take(max_len.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(io("read"))?;
    if bytes.len() as u64 > max_len {
        return Err(FileError::TooLarge { max_len });
    }
    Ok(Some(bytes))
}

/// Replace `path` with `bytes` atomically: a temporary `.NAME.PID.N.tmp` in the same
/// directory, fsync, rename over `path`, fsync of the directory. A reader sees the old bytes
/// or the new ones, never a mix; a failed write leaves the old file and no temporary file.
///
/// # Errors
/// [`FileError::Io`] naming the step that failed.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), FileError> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let (Some(dir), Some(file_name)) = (path.parent(), path.file_name()) else {
        return Err(FileError::Io {
            op: "write a file without a name",
            source: io::Error::from(io::ErrorKind::InvalidInput),
        });
    };
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    let temp = dir.join(format!(
        ".{}.{}.{}.tmp",
        file_name.to_string_lossy(),
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let result = (|| {
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&temp)
            .map_err(io("create a temporary file"))?;
        f.write_all(bytes).map_err(io("write"))?;
        f.sync_all().map_err(io("sync"))?;
        drop(f);
        fs::rename(&temp, path).map_err(io("rename into place"))
    })();
    if result.is_err() {
        // Best effort: the temporary file holds nothing anyone needs.
        let _ = fs::remove_file(&temp);
        return result;
    }
    sync_dir(dir).map_err(io("sync the directory"))
}

#[cfg(unix)]
fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(not(unix))]
fn sync_dir(_dir: &Path) -> io::Result<()> {
    // Directories cannot be opened for syncing on this platform; rename is still atomic.
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn write_replaces_and_leaves_no_temporary_file() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("a.json");
        write_atomic(&path, b"old").unwrap();
        write_atomic(&path, b"new").unwrap();
        assert_eq!(read_bounded(&path, 3).unwrap().unwrap(), b"new");
        assert_eq!(entries(tmp.path()), ["a.json"]);
    }

    #[test]
    fn failed_write_keeps_the_old_file() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("a.json");
        write_atomic(&path, b"old").unwrap();
        // A directory where the file's directory should be: the write cannot happen.
        let err = write_atomic(&tmp.path().join("a.json/b.json"), b"x").unwrap_err();
        assert!(matches!(err, FileError::Io { .. }), "{err:?}");
        assert_eq!(read_bounded(&path, 3).unwrap().unwrap(), b"old");
        assert_eq!(entries(tmp.path()), ["a.json"]);
    }

    #[test]
    fn endless_data_in_a_local_file_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("big");
        fs::write(&path, vec![b'x'; 11]).unwrap();
        assert!(matches!(
            read_bounded(&path, 10),
            Err(FileError::TooLarge { max_len: 10 })
        ));
        assert_eq!(read_bounded(&path, 11).unwrap().unwrap().len(), 11);
        assert!(read_bounded(&tmp.path().join("absent"), 10)
            .unwrap()
            .is_none());
    }
}
