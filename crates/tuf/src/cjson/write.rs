//! The canonical JSON writer (securesystemslib `encode_canonical`).

use super::{JsonError, Value};

/// How strings are escaped.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Escaping {
    /// securesystemslib: only `\` and `"`; control characters raw. Signing input only: the
    /// result is not always valid JSON.
    Canonical,
    /// RFC 8259: control characters escaped too. For files.
    Json,
}

/// The canonical bytes of `value`: what signatures are made over.
///
/// # Errors
/// [`JsonError::Float`] if the value holds a number that is not an integer.
pub fn to_canonical(value: &Value) -> Result<Vec<u8>, JsonError> {
    let mut out = Vec::new();
    write_canonical(value, &mut out)?;
    Ok(out)
}

/// Append the canonical bytes of `value` to `out`.
///
/// # Errors
/// [`JsonError::Float`] if the value holds a number that is not an integer.
pub fn write_canonical(value: &Value, out: &mut Vec<u8>) -> Result<(), JsonError> {
    write(value, out, Escaping::Canonical)
}

/// Deterministic, valid JSON for metadata files: sorted keys, no whitespace, integers only,
/// and strings escaped as RFC 8259 requires (a PEM key's newlines become `\n`, which the
/// canonical form would write raw and which strict JSON parsers, python's included, refuse).
///
/// # Errors
/// [`JsonError::Float`] if the value holds a number that is not an integer.
pub fn to_json(value: &Value) -> Result<Vec<u8>, JsonError> {
    let mut out = Vec::new();
    write(value, &mut out, Escaping::Json)?;
    Ok(out)
}

fn write(value: &Value, out: &mut Vec<u8>, escaping: Escaping) -> Result<(), JsonError> {
    match value {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Number(n) => {
            if let Some(v) = n.as_u64() {
                out.extend_from_slice(v.to_string().as_bytes());
            } else if let Some(v) = n.as_i64() {
                out.extend_from_slice(v.to_string().as_bytes());
            } else {
                return Err(JsonError::Float);
            }
        }
        Value::String(s) => write_string(s, out, escaping),
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write(item, out, escaping)?;
            }
            out.push(b']');
        }
        Value::Object(map) => {
            // Rust orders `str` by UTF-8 bytes, which is code point order: the order of
            // Python's `sorted()` on `str` keys, as securesystemslib uses.
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
            out.push(b'{');
            for (i, (k, v)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_string(k, out, escaping);
                out.push(b':');
                write(v, out, escaping)?;
            }
            out.push(b'}');
        }
    }
    Ok(())
}

/// securesystemslib escapes only `\` and `"`; every other character is written as is.
/// [`Escaping::Json`] also escapes control characters.
fn write_string(s: &str, out: &mut Vec<u8>, escaping: Escaping) {
    out.push(b'"');
    for b in s.bytes() {
        match b {
            b'"' | b'\\' => out.extend_from_slice(&[b'\\', b]),
            b'\n' if escaping == Escaping::Json => out.extend_from_slice(b"\\n"),
            b'\r' if escaping == Escaping::Json => out.extend_from_slice(b"\\r"),
            b'\t' if escaping == Escaping::Json => out.extend_from_slice(b"\\t"),
            0..0x20 if escaping == Escaping::Json => {
                out.extend_from_slice(format!("\\u{b:04x}").as_bytes());
            }
            _ => out.push(b),
        }
    }
    out.push(b'"');
}
