//! The OCI JSON documents ocituf reads and writes (descriptors, image manifests, image
//! indexes), and the RFC 8785 (JCS) serializer that makes anchors deterministic.
//!
//! Parsing is for untrusted input: callers bound the bytes before parsing, and nothing
//! parsed here is trusted (digests are re-checked on every read).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::store::{Descriptor, Digest};

/// A descriptor as written in JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct RawDescriptor {
    pub media_type: String,
    pub digest: String,
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
    /// Everything else (`platform`, `urls`, ...), kept so that rewriting an index written by
    /// another tool loses nothing.
    #[serde(flatten)]
    pub other: BTreeMap<String, serde_json::Value>,
}

impl RawDescriptor {
    /// The typed descriptor, or `None` when the digest is not a sha256 digest.
    pub fn to_descriptor(&self) -> Option<Descriptor> {
        Some(Descriptor {
            media_type: self.media_type.clone(),
            digest: Digest::parse(&self.digest).ok()?,
            size: self.size,
            artifact_type: self.artifact_type.clone(),
            annotations: self.annotations.clone().unwrap_or_default(),
        })
    }
}

/// The fields of an image manifest or image index that ocituf looks at.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct RawManifest {
    pub schema_version: u32,
    #[serde(default)]
    pub media_type: Option<String>,
    #[serde(default)]
    pub artifact_type: Option<String>,
    #[serde(default)]
    pub config: Option<RawDescriptor>,
    #[serde(default)]
    pub layers: Option<Vec<RawDescriptor>>,
    #[serde(default)]
    pub manifests: Option<Vec<RawDescriptor>>,
    #[serde(default)]
    pub subject: Option<RawDescriptor>,
    #[serde(default)]
    pub annotations: Option<BTreeMap<String, String>>,
}

/// An image index as written in JSON (a layout's `index.json`), keeping unknown fields.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct RawIndex {
    pub schema_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    #[serde(default)]
    pub manifests: Vec<RawDescriptor>,
    #[serde(flatten)]
    pub other: BTreeMap<String, serde_json::Value>,
}

/// Serialize `value` with the JSON Canonicalization Scheme (RFC 8785) for the values
/// ocituf writes: objects, arrays, strings, booleans, null and integers.
pub(crate) fn jcs(value: &serde_json::Value) -> Vec<u8> {
    let mut out = Vec::new();
    write_jcs(value, &mut out);
    out
}

fn write_jcs(value: &serde_json::Value, out: &mut Vec<u8>) {
    use serde_json::Value;
    match value {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        // Integers only: ocituf never writes a float, and integers print the same in JCS.
        Value::Number(n) => out.extend_from_slice(n.to_string().as_bytes()),
        Value::String(s) => write_jcs_string(s, out),
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_jcs(item, out);
            }
            out.push(b']');
        }
        Value::Object(map) => {
            // RFC 8785 3.2.3: sort by UTF-16 code units. Sorting explicitly keeps the output
            // independent of serde_json's `preserve_order` feature.
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort_by(|a, b| a.encode_utf16().cmp(b.encode_utf16()));
            out.push(b'{');
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_jcs_string(key, out);
                out.push(b':');
                if let Some(v) = map.get(key) {
                    write_jcs(v, out);
                }
            }
            out.push(b'}');
        }
    }
}

/// RFC 8785 3.2.2.2: strings as ECMAScript `JSON.stringify` writes them.
fn write_jcs_string(s: &str, out: &mut Vec<u8>) {
    out.push(b'"');
    for c in s.chars() {
        match c {
            '"' => out.extend_from_slice(b"\\\""),
            '\\' => out.extend_from_slice(b"\\\\"),
            '\u{8}' => out.extend_from_slice(b"\\b"),
            '\u{c}' => out.extend_from_slice(b"\\f"),
            '\n' => out.extend_from_slice(b"\\n"),
            '\r' => out.extend_from_slice(b"\\r"),
            '\t' => out.extend_from_slice(b"\\t"),
            c if (c as u32) < 0x20 => {
                out.extend_from_slice(format!("\\u{:04x}", c as u32).as_bytes());
            }
            c => {
                let mut buf = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            }
        }
    }
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jcs_sorts_keys_and_escapes_like_json_stringify() {
        let v = serde_json::json!({"b": [1, "x\u{1}\n\"\\é"], "a": {"z": true, "y": null}});
        assert_eq!(
            String::from_utf8(jcs(&v)).unwrap(),
            r#"{"a":{"y":null,"z":true},"b":[1,"x\u0001\n\"\\é"]}"#
        );
    }

    #[test]
    fn jcs_orders_keys_by_utf16_code_units() {
        // U+E000 sorts before U+1F600 in UTF-16 (0xE000 < 0xD83D is false: surrogates are
        // 0xD800..), so the emoji (a surrogate pair) comes first.
        let v = serde_json::json!({"\u{e000}": 1, "\u{1f600}": 2});
        assert_eq!(
            String::from_utf8(jcs(&v)).unwrap(),
            "{\"\u{1f600}\":2,\"\u{e000}\":1}"
        );
    }
}
