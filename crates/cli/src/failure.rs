//! Exit codes and how errors are printed.
//!
//! 0 ok, 1 verification refused, 2 usage or configuration error, 3 registry or network
//! failure, 4 expired metadata met offline (or in a bundle), 5 `sign --wait` timed out. The kind is found by walking the error chain from the outside in: the first
//! error that knows its kind decides.

use std::fmt;

use ocituf_resolver::ErrorKind;

pub const EXIT_REFUSED: u8 = 1;
pub const EXIT_CONFIG: u8 = 2;
pub const EXIT_NETWORK: u8 = 3;
pub const EXIT_EXPIRED: u8 = 4;
/// `sign --wait` timed out before clients could see the image.
pub const EXIT_TIMEOUT: u8 = 5;

/// A message with a kind, wrapping the error that caused it (or standing alone). The cause
/// is kept as `source()`, so the chain is printed and walked like any other.
#[derive(Debug)]
pub struct Kinded {
    pub kind: ErrorKind,
    pub message: String,
    pub source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl fmt::Display for Kinded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Kinded {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

/// A standalone error of the given kind.
pub fn fail(kind: ErrorKind, message: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(Kinded {
        kind,
        message: message.into(),
        source: None,
    })
}

/// `err` explained by a message of the given kind (the message is printed first).
pub fn wrap(err: anyhow::Error, kind: ErrorKind, message: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(Kinded {
        kind,
        message: message.into(),
        source: Some(err.into()),
    })
}

/// Attach a message of a kind to an error.
pub trait ResultExt<T> {
    fn kind(self, kind: ErrorKind, message: impl FnOnce() -> String) -> anyhow::Result<T>;
    fn config(self, message: impl FnOnce() -> String) -> anyhow::Result<T>
    where
        Self: Sized,
    {
        self.kind(ErrorKind::Config, message)
    }
    #[allow(dead_code)]
    fn network(self, message: impl FnOnce() -> String) -> anyhow::Result<T>
    where
        Self: Sized,
    {
        self.kind(ErrorKind::Network, message)
    }
}

impl<T, E> ResultExt<T> for Result<T, E>
where
    E: std::error::Error + Send + Sync + 'static,
{
    fn kind(self, kind: ErrorKind, message: impl FnOnce() -> String) -> anyhow::Result<T> {
        self.map_err(|e| {
            anyhow::Error::new(Kinded {
                kind,
                message: message(),
                source: Some(Box::new(e)),
            })
        })
    }
}

/// The kind of an error chain (configuration when nothing in it says otherwise).
pub fn kind_of(err: &anyhow::Error) -> ErrorKind {
    for cause in err.chain() {
        if let Some(k) = cause.downcast_ref::<Kinded>() {
            return k.kind;
        }
        if let Some(e) = cause.downcast_ref::<ocituf_resolver::Error>() {
            return e.kind();
        }
        if let Some(e) = cause.downcast_ref::<ocituf_writer::Error>() {
            return e.kind();
        }
        if let Some(e) = cause.downcast_ref::<ocituf_resolver::PlatformError>() {
            return e.kind();
        }
    }
    ErrorKind::Config
}

pub fn exit_code(kind: ErrorKind) -> u8 {
    match kind {
        ErrorKind::Refused => EXIT_REFUSED,
        ErrorKind::Network => EXIT_NETWORK,
        ErrorKind::Expired => EXIT_EXPIRED,
        ErrorKind::Timeout => EXIT_TIMEOUT,
        _ => EXIT_CONFIG,
    }
}

/// Print `error: …` and one `caused by: …` line per source; return the exit code.
pub fn report(err: &anyhow::Error) -> u8 {
    let kind = kind_of(err);
    let mut chain = err.chain();
    if let Some(top) = chain.next() {
        eprintln!("error: {top}");
    }
    for cause in chain {
        eprintln!("  caused by: {cause}");
    }
    if kind == ErrorKind::Refused {
        eprintln!("refused: do not use this image; ask its owners to sign it (ocituf sign) or check the registry for tampering");
    }
    if kind == ErrorKind::Expired {
        eprintln!("expired: the trusted metadata is out of date; export a new bundle where the registry is reachable");
    }
    exit_code(kind)
}
