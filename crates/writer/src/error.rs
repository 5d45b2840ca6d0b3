//! The writer's error: a message that names what failed and what to do next, the kind that
//! decides the CLI's exit code (and the server's answer), and the cause as `source()`.

use std::fmt;

pub use ocituf_resolver::ErrorKind;

/// A writer error. The message is printed first; the cause chain follows it.
#[derive(Debug)]
#[non_exhaustive]
pub struct Error {
    pub kind: ErrorKind,
    pub message: String,
    pub source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

/// `Result` with the writer's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// A standalone error of the given kind.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            source: None,
        }
    }

    /// `cause` explained by a message of the given kind.
    pub fn wrap(
        kind: ErrorKind,
        message: impl Into<String>,
        cause: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        let cause = cause.into();
        // A damaged index.json of a local OCI layout is the user's file to repair, whatever
        // the call site expected (usually a registry that may answer on retry).
        let kind = if damaged_layout(cause.as_ref()) {
            ErrorKind::Config
        } else {
            kind
        };
        Self {
            kind,
            message: message.into(),
            source: Some(cause),
        }
    }

    pub fn kind(&self) -> ErrorKind {
        self.kind
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

/// Whether `e`'s chain holds a malformed OCI layout index.
fn damaged_layout(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut next = Some(e);
    while let Some(e) = next {
        if matches!(
            e.downcast_ref::<ocituf_oci::Error>(),
            Some(ocituf_oci::Error::LayoutIndex { .. })
        ) {
            return true;
        }
        next = e.source();
    }
    false
}

/// A standalone error of the given kind.
pub(crate) fn fail(kind: ErrorKind, message: impl Into<String>) -> Error {
    Error::new(kind, message)
}

/// Attach a message of a kind to an error.
pub(crate) trait ResultExt<T> {
    fn kind(self, kind: ErrorKind, message: impl FnOnce() -> String) -> Result<T>;
    fn config(self, message: impl FnOnce() -> String) -> Result<T>
    where
        Self: Sized,
    {
        self.kind(ErrorKind::Config, message)
    }
    fn network(self, message: impl FnOnce() -> String) -> Result<T>
    where
        Self: Sized,
    {
        self.kind(ErrorKind::Network, message)
    }
}

impl<T, E> ResultExt<T> for std::result::Result<T, E>
where
    E: std::error::Error + Send + Sync + 'static,
{
    fn kind(self, kind: ErrorKind, message: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|e| Error::wrap(kind, message(), e))
    }
}
