//! The canonical JSON writer (securesystemslib `encode_canonical`).

use super::{JsonError, Value};

/// The canonical bytes of `value`.
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
        Value::String(s) => write_string(s, out),
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_canonical(item, out)?;
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
                write_string(k, out);
                out.push(b':');
                write_canonical(v, out)?;
            }
            out.push(b'}');
        }
    }
    Ok(())
}

/// securesystemslib escapes only `\` and `"`; every other character is written as is.
fn write_string(s: &str, out: &mut Vec<u8>) {
    out.push(b'"');
    for b in s.bytes() {
        if b == b'"' || b == b'\\' {
            out.push(b'\\');
        }
        out.push(b);
    }
    out.push(b'"');
}
