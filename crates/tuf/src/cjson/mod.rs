//! Canonical JSON, as securesystemslib and python-tuf write it, and a strict parser for
//! untrusted JSON.
//!
//! Canonical form (securesystemslib `encode_canonical`, OLPC style): object keys sorted by
//! code point, no insignificant whitespace, strings escape only `\` and `"`, and numbers are
//! integers only. Signatures in TUF are made over these bytes of the `signed` value.
//!
//! The parser ([`parse`]) is for bytes from the network or a cache: it rejects duplicate
//! object keys, numbers that are not integers or do not fit `i64`/`u64`, invalid UTF-8,
//! trailing data and nesting deeper than [`MAX_DEPTH`]. It returns a [`Value`] that keeps
//! every field, known or not, so that a signature is checked over the value as received.
//!
//! [`to_json`] writes files: the same sorted, compact form but with control characters
//! escaped, so that the result is always valid JSON (the canonical form of a PEM key is not).
//!
//! This module does not know about TUF metadata; see [`crate::metadata`].

mod parse;
mod write;

pub use parse::{parse, MAX_DEPTH};
pub use write::{to_canonical, to_json, write_canonical};

/// A JSON value. Values made by [`parse`] only hold integer numbers.
pub type Value = serde_json::Value;

/// Why bytes are not acceptable JSON, or a value has no canonical form.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum JsonError {
    /// The bytes are not valid UTF-8.
    #[error("invalid utf-8 at byte {offset}")]
    InvalidUtf8 { offset: usize },
    /// The bytes are not JSON.
    #[error("invalid json at byte {offset}: {reason}")]
    Syntax { offset: usize, reason: &'static str },
    /// An object has the same key twice (a parser-differential attack vector).
    #[error("duplicate object key {key:?} at byte {offset}")]
    DuplicateKey { key: String, offset: usize },
    /// A number has a fraction or an exponent: TUF metadata holds integers only.
    #[error("number at byte {offset} is not an integer")]
    NotInteger { offset: usize },
    /// An integer does not fit in `i64` (negative) or `u64` (non-negative).
    #[error("integer at byte {offset} is out of range")]
    IntegerOutOfRange { offset: usize },
    /// Nesting deeper than [`MAX_DEPTH`].
    #[error("json nesting deeper than {max} at byte {offset}")]
    TooDeep { max: usize, offset: usize },
    /// Something follows the JSON value.
    #[error("trailing data at byte {offset}")]
    TrailingData { offset: usize },
    /// A value with a non-integer number has no canonical form.
    #[error("a floating point number has no canonical json form")]
    Float,
}

#[cfg(test)]
mod tests;
