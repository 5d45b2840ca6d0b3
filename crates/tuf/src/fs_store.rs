//! [`FsStore`]: the trusted metadata cache in a directory, one file per role.
//!
//! Layout of the directory:
//! - `ROLE.json` for every role, where `ROLE` is the role name percent-encoded by
//!   [`role_file_stem`] (`root` -> `root.json`, `../x` -> `..%2Fx.json`): no role name can
//!   name a path outside the directory or a file of another role.
//! - with [`RootHistory::Keep`], `root-history/VERSION.root.json` for every verified root
//!   version. [`RootHistory::Off`] keeps nothing but the unversioned files (what the
//!   tuf-conformance suite checks: every `.json` file in the directory is a role's metadata).
//! - while a write is in progress, a temporary `.ROLE.json.PID.N.tmp` in the same directory.
//!   It is renamed over `ROLE.json` only once its bytes are on disk, so a reader (or a reader
//!   after a crash) sees the old bytes or the new ones, never a mix.
//!
//! The store does not parse or verify anything: the updater verifies whatever [`FsStore::load`]
//! returns as untrusted input and overwrites what fails (a corrupt or truncated file).

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

use crate::fsio::{self, FileError};
use crate::store::{StoreError, TrustedStore};

/// Bytes percent-encoded in role names, in file names and in URLs: everything but ASCII
/// letters, digits and `-._~`. The same set as Python's `urllib.parse.quote(name, "")`, which
/// python-tuf uses for both (so a delegated `a/b` is fetched as `a%2Fb.json` by every client).
pub const ROLE_NAME_ENCODE_SET: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// The file name stem of `role`: its percent-encoding by [`ROLE_NAME_ENCODE_SET`].
///
/// The result never contains `/`, `\` or NUL. A stem made only of dots (`.`, `..`) is never a
/// whole file name because `.json` is appended.
pub fn role_file_stem(role: &str) -> String {
    utf8_percent_encode(role, ROLE_NAME_ENCODE_SET).to_string()
}

/// Whether [`FsStore`] keeps every verified root version besides the newest one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum RootHistory {
    /// Keep `root-history/VERSION.root.json`, so the chain from a pinned root to the newest
    /// cached root can be verified again without the network.
    #[default]
    Keep,
    /// Keep only `root.json` (the directory holds nothing but one file per role).
    Off,
}

/// A [`TrustedStore`] in a directory of the local file system.
#[derive(Debug, Clone)]
pub struct FsStore {
    dir: PathBuf,
    history: RootHistory,
}

const HISTORY_DIR: &str = "root-history";
const MERKLE_DIR: &str = "merkle-paths";

impl FsStore {
    /// A store in `dir`, created (with its parents) if it does not exist.
    ///
    /// # Errors
    /// When the directory cannot be created.
    pub fn open(dir: impl Into<PathBuf>, history: RootHistory) -> Result<Self, StoreError> {
        let dir = dir.into();
        fs::create_dir_all(&dir).map_err(|e| io_error("create the directory of", "", e))?;
        if history == RootHistory::Keep {
            fs::create_dir_all(dir.join(HISTORY_DIR))
                .map_err(|e| io_error("create the root history of", "", e))?;
        }
        Ok(Self { dir, history })
    }

    /// The directory of this store.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The file that holds the metadata of `role`.
    pub fn role_path(&self, role: &str) -> PathBuf {
        self.dir.join(format!("{}.json", role_file_stem(role)))
    }

    fn merkle_path(&self, role: &str) -> PathBuf {
        self.dir
            .join(MERKLE_DIR)
            .join(format!("{}.path", role_file_stem(role)))
    }

    fn history_path(&self, version: u64) -> PathBuf {
        self.dir
            .join(HISTORY_DIR)
            .join(format!("{version}.root.json"))
    }
}

fn io_error(op: &'static str, name: &str, e: io::Error) -> StoreError {
    StoreError::Io {
        op,
        name: name.to_owned(),
        source: Box::new(e),
    }
}

/// Read a cached file through [`fsio::read_bounded`], naming the role in errors.
fn read_bounded(path: &Path, name: &str, max_len: u64) -> Result<Option<Vec<u8>>, StoreError> {
    fsio::read_bounded(path, max_len).map_err(|e| file_error(name, e))
}

/// Replace a cached file through [`fsio::write_atomic`], naming the role in errors.
fn write_atomic(path: &Path, name: &str, bytes: &[u8]) -> Result<(), StoreError> {
    fsio::write_atomic(path, bytes).map_err(|e| file_error(name, e))
}

fn file_error(name: &str, e: FileError) -> StoreError {
    match e {
        FileError::TooLarge { max_len } => StoreError::TooLarge {
            name: name.to_owned(),
            max_len,
        },
        FileError::Io { op, source } => io_error(op, name, source),
    }
}

/// Run blocking file system work off the async executor.
async fn blocking<T: Send + 'static>(
    name: &str,
    f: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    match tokio::task::spawn_blocking(f).await {
        Ok(r) => r,
        Err(e) => Err(StoreError::Io {
            op: "finish a file operation on",
            name: name.to_owned(),
            source: Box::new(e),
        }),
    }
}

impl TrustedStore for FsStore {
    async fn load(&self, role: &str, max_len: u64) -> Result<Option<Vec<u8>>, StoreError> {
        let path = self.role_path(role);
        let name = role.to_owned();
        blocking(role, move || read_bounded(&path, &name, max_len)).await
    }

    async fn store(&self, role: &str, bytes: &[u8]) -> Result<(), StoreError> {
        let path = self.role_path(role);
        let name = role.to_owned();
        let bytes = bytes.to_vec();
        blocking(role, move || write_atomic(&path, &name, &bytes)).await
    }

    async fn remove(&self, role: &str) -> Result<(), StoreError> {
        let path = self.role_path(role);
        let name = role.to_owned();
        blocking(role, move || match fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_error("remove", &name, e)),
        })
        .await
    }

    async fn load_merkle_path(&self, role: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let path = self.merkle_path(role);
        let name = format!("{role} (snapshot Merkle path)");
        blocking(&name.clone(), move || {
            read_bounded(&path, &name, crate::merkle::MAX_PATH_LEN)
        })
        .await
    }

    async fn store_merkle_path(&self, role: &str, bytes: &[u8]) -> Result<(), StoreError> {
        let dir = self.dir.join(MERKLE_DIR);
        let path = self.merkle_path(role);
        let name = format!("{role} (snapshot Merkle path)");
        let bytes = bytes.to_vec();
        blocking(&name.clone(), move || {
            fs::create_dir_all(&dir).map_err(|e| io_error("create the directory of", &name, e))?;
            write_atomic(&path, &name, &bytes)
        })
        .await
    }

    async fn load_root(&self, version: u64, max_len: u64) -> Result<Option<Vec<u8>>, StoreError> {
        if self.history == RootHistory::Off {
            return Ok(None);
        }
        let path = self.history_path(version);
        let name = format!("{version}.root");
        blocking(&name.clone(), move || read_bounded(&path, &name, max_len)).await
    }

    async fn store_root(&self, version: u64, bytes: &[u8]) -> Result<(), StoreError> {
        if self.history == RootHistory::Off {
            return Ok(());
        }
        let dir = self.dir.join(HISTORY_DIR);
        let path = self.history_path(version);
        let name = format!("{version}.root");
        let bytes = bytes.to_vec();
        blocking(&name.clone(), move || {
            fs::create_dir_all(&dir)
                .map_err(|e| io_error("create the root history of", &name, e))?;
            write_atomic(&path, &name, &bytes)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rt() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    fn entries(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn round_trip_byte_exact_under_unversioned_names() {
        let tmp = tempfile::tempdir().unwrap();
        let store = FsStore::open(tmp.path(), RootHistory::Off).unwrap();
        rt().block_on(async {
            // Not canonical JSON, trailing newline: stored and returned as is.
            let bytes = b"{ \"signed\": {}, \"signatures\": [] }\n";
            store.store("root", bytes).await.unwrap();
            store.store("timestamp", b"t").await.unwrap();
            assert_eq!(store.load("root", 1024).await.unwrap().unwrap(), bytes);
            assert_eq!(store.load("snapshot", 1024).await.unwrap(), None);
            store.remove("timestamp").await.unwrap();
            store.remove("timestamp").await.unwrap();
            assert_eq!(store.load("timestamp", 1024).await.unwrap(), None);
        });
        assert_eq!(entries(tmp.path()), ["root.json"]);
    }

    #[test]
    fn path_traversal_role_names_stay_inside_the_store() {
        let outer = tempfile::tempdir().unwrap();
        let dir = outer.path().join("md");
        let store = FsStore::open(&dir, RootHistory::Off).unwrap();
        let names = [
            "../escape",
            "../../escape",
            "/etc/passwd",
            "a/../b",
            "..",
            ".",
            "",
            "a\\b",
            "nul\0byte",
            "?",
            "#",
            "root-history/1.root",
            "ünïcode",
        ];
        rt().block_on(async {
            for (i, n) in names.iter().enumerate() {
                store.store(n, i.to_string().as_bytes()).await.unwrap();
            }
            // Every name has its own file: nothing overwrote another role.
            for (i, n) in names.iter().enumerate() {
                assert_eq!(
                    store.load(n, 64).await.unwrap().unwrap(),
                    i.to_string().as_bytes(),
                    "{n:?}"
                );
            }
        });
        assert_eq!(entries(outer.path()), ["md"], "nothing written outside");
        let files = entries(&dir);
        assert_eq!(files.len(), names.len());
        assert!(files
            .iter()
            // `.json` is appended verbatim (an empty role name gives `.json`).
            .all(|f| f.as_bytes().ends_with(b".json")
                && !f.contains('/')
                && !f.contains('\\')
                && f != "."
                && f != ".."));
        assert!(files.contains(&"..%2Fescape.json".to_owned()));
        assert!(files.contains(&"a%2F..%2Fb.json".to_owned()));
    }

    #[test]
    fn endless_data_cached_file_larger_than_limit() {
        let tmp = tempfile::tempdir().unwrap();
        let store = FsStore::open(tmp.path(), RootHistory::Off).unwrap();
        fs::write(store.role_path("timestamp"), vec![b'x'; 100]).unwrap();
        let err = rt().block_on(store.load("timestamp", 99)).unwrap_err();
        assert!(
            matches!(&err, StoreError::TooLarge { name, max_len: 99 } if name == "timestamp"),
            "{err:?}"
        );
        assert_eq!(
            rt().block_on(store.load("timestamp", 100))
                .unwrap()
                .unwrap()
                .len(),
            100
        );
    }

    #[test]
    fn truncated_cached_file_is_returned_as_is_and_replaced_by_store() {
        // The store never judges bytes: a truncated file is handed to the updater, which
        // fails to verify it and stores the verified replacement over it.
        let tmp = tempfile::tempdir().unwrap();
        let store = FsStore::open(tmp.path(), RootHistory::Off).unwrap();
        fs::write(store.role_path("snapshot"), b"{\"signed\": {\"_ty").unwrap();
        rt().block_on(async {
            assert_eq!(
                store.load("snapshot", 1024).await.unwrap().unwrap(),
                b"{\"signed\": {\"_ty"
            );
            store.store("snapshot", b"{\"new\": 1}").await.unwrap();
            assert_eq!(
                store.load("snapshot", 1024).await.unwrap().unwrap(),
                b"{\"new\": 1}"
            );
        });
    }

    #[test]
    fn atomic_store_leaves_no_temporary_files() {
        let tmp = tempfile::tempdir().unwrap();
        let store = FsStore::open(tmp.path(), RootHistory::Off).unwrap();
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let mut tasks = Vec::new();
            for i in 0..32u8 {
                let s = store.clone();
                tasks.push(tokio::spawn(async move {
                    s.store("targets", &vec![i; 4096]).await.unwrap();
                }));
            }
            for t in tasks {
                t.await.unwrap();
            }
            // Whoever won, the file is one whole write.
            let bytes = store.load("targets", 1 << 20).await.unwrap().unwrap();
            assert_eq!(bytes.len(), 4096);
            assert!(bytes.iter().all(|b| *b == bytes[0]));
        });
        assert_eq!(entries(tmp.path()), ["targets.json"]);
    }

    #[test]
    fn failed_write_leaves_old_bytes_and_no_temporary_file() {
        let tmp = tempfile::tempdir().unwrap();
        let store = FsStore::open(tmp.path(), RootHistory::Off).unwrap();
        rt().block_on(store.store("targets", b"old")).unwrap();
        // A directory in the way of the rename makes the write fail after the temp file.
        fs::create_dir(store.role_path("x")).unwrap();
        fs::write(store.role_path("x").join("f"), b"").unwrap();
        let err = rt().block_on(store.store("x", b"new")).unwrap_err();
        assert!(
            matches!(&err, StoreError::Io { name, .. } if name == "x"),
            "{err:?}"
        );
        assert_eq!(entries(tmp.path()), ["targets.json", "x.json"]);
        assert_eq!(
            rt().block_on(store.load("targets", 8)).unwrap().unwrap(),
            b"old"
        );
    }

    #[test]
    fn root_history_kept_in_its_own_directory() {
        let tmp = tempfile::tempdir().unwrap();
        let store = FsStore::open(tmp.path(), RootHistory::Keep).unwrap();
        rt().block_on(async {
            store.store_root(1, b"one").await.unwrap();
            store.store_root(2, b"two").await.unwrap();
            store.store("root", b"two").await.unwrap();
            assert_eq!(store.load_root(1, 8).await.unwrap().unwrap(), b"one");
            assert_eq!(store.load_root(2, 8).await.unwrap().unwrap(), b"two");
            assert_eq!(store.load_root(3, 8).await.unwrap(), None);
            assert!(matches!(
                store.load_root(2, 2).await,
                Err(StoreError::TooLarge { max_len: 2, .. })
            ));
        });
        assert_eq!(entries(tmp.path()), ["root-history", "root.json"]);
        assert_eq!(
            entries(&tmp.path().join(HISTORY_DIR)),
            ["1.root.json", "2.root.json"]
        );
    }

    #[test]
    fn root_history_off_keeps_only_role_files() {
        let tmp = tempfile::tempdir().unwrap();
        let store = FsStore::open(tmp.path(), RootHistory::Off).unwrap();
        rt().block_on(async {
            store.store_root(1, b"one").await.unwrap();
            assert_eq!(store.load_root(1, 8).await.unwrap(), None);
        });
        assert!(entries(tmp.path()).is_empty());
    }
}
