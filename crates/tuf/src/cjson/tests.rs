//! Canonical form against securesystemslib, the strict parser's refusals, and property
//! tests: round trip and key-order invariance.

use proptest::prelude::*;
use serde_json::json;

use super::*;

fn canon(v: &Value) -> String {
    String::from_utf8(to_canonical(v).unwrap()).unwrap()
}

#[test]
fn canonical_form_matches_securesystemslib() {
    // Expected bytes computed with securesystemslib.formats.encode_canonical.
    let v = json!({"b": 1, "a": [true, false, null], "c": {"z": "q\"\\\n\u{e9}", "y": -5}});
    assert_eq!(
        canon(&v),
        "{\"a\":[true,false,null],\"b\":1,\"c\":{\"y\":-5,\"z\":\"q\\\"\\\\\n\u{e9}\"}}"
    );
}

#[test]
fn keys_sort_by_code_point() {
    let v = json!({"\u{e9}": 1, "z": 2, "Z": 3, "\u{1F600}": 4, "\u{ff}": 5});
    assert_eq!(
        canon(&v),
        "{\"Z\":3,\"z\":2,\"\u{e9}\":1,\"\u{ff}\":5,\"\u{1F600}\":4}"
    );
}

#[test]
fn files_are_valid_json_with_control_characters_escaped() {
    let v = json!({"k": "-----BEGIN\nx\ty\u{1}\"\\", "a": 1});
    let bytes = to_json(&v).unwrap();
    assert_eq!(
        String::from_utf8(bytes.clone()).unwrap(),
        r#"{"a":1,"k":"-----BEGIN\nx\ty\u0001\"\\"}"#
    );
    assert_eq!(parse(&bytes).unwrap(), v);
    // The canonical form keeps control characters raw, as securesystemslib does.
    assert!(parse(&to_canonical(&v).unwrap()).is_err());
}

#[test]
fn floats_have_no_canonical_form() {
    assert_eq!(to_canonical(&json!({"a": 1.5})), Err(JsonError::Float));
}

#[test]
fn parse_accepts_plain_json() {
    let v = parse(b" {\"a\" : [1, -2, \"x\\u00e9\\ud83d\\ude00\\n\"], \"b\": {}} \n").unwrap();
    assert_eq!(v, json!({"a": [1, -2, "x\u{e9}\u{1F600}\n"], "b": {}}));
}

#[test]
fn parse_rejects_duplicate_keys() {
    assert!(matches!(
        parse(br#"{"a": 1, "b": 2, "a": 3}"#),
        Err(JsonError::DuplicateKey { key, .. }) if key == "a"
    ));
}

#[test]
fn parse_rejects_non_integers() {
    for bad in [&b"1.0"[..], b"1e3", b"[2E1]", b"-0.5"] {
        assert!(
            matches!(parse(bad), Err(JsonError::NotInteger { .. })),
            "{bad:?}"
        );
    }
}

#[test]
fn parse_rejects_out_of_range_integers() {
    assert!(parse(b"18446744073709551615").is_ok());
    assert!(parse(b"-9223372036854775808").is_ok());
    for bad in [&b"18446744073709551616"[..], b"-9223372036854775809"] {
        assert!(
            matches!(parse(bad), Err(JsonError::IntegerOutOfRange { .. })),
            "{bad:?}"
        );
    }
}

#[test]
fn parse_rejects_invalid_utf8() {
    assert!(matches!(
        parse(b"\"\xff\""),
        Err(JsonError::InvalidUtf8 { offset: 1 })
    ));
}

#[test]
fn parse_rejects_trailing_data() {
    assert!(matches!(
        parse(b"{} {}"),
        Err(JsonError::TrailingData { offset: 3 })
    ));
}

#[test]
fn parse_rejects_deep_nesting_without_overflow() {
    let deep = "[".repeat(100_000);
    assert!(matches!(
        parse(deep.as_bytes()),
        Err(JsonError::TooDeep { .. })
    ));
    let ok = format!("{}{}", "[".repeat(MAX_DEPTH), "]".repeat(MAX_DEPTH));
    assert!(parse(ok.as_bytes()).is_ok());
    let too_deep = format!("{}{}", "[".repeat(MAX_DEPTH + 1), "]".repeat(MAX_DEPTH + 1));
    assert!(matches!(
        parse(too_deep.as_bytes()),
        Err(JsonError::TooDeep { .. })
    ));
}

#[test]
fn parse_rejects_malformed() {
    for bad in [
        &b""[..],
        b"{",
        b"[1,]",
        b"{\"a\":1,}",
        b"01",
        b"-",
        b"tru",
        b"\"\\x\"",
        b"\"\\ud800\"",
        b"\"\\udc00\"",
        b"\"a\nb\"",
        b"\"abc",
        b"{1:2}",
        b"\xef\xbb\xbf{}",
    ] {
        assert!(parse(bad).is_err(), "{bad:?}");
    }
}

fn arb_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<String>().prop_map(Value::String),
    ];
    leaf.prop_recursive(6, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
            prop::collection::btree_map(any::<String>(), inner, 0..8)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #[test]
    fn round_trip(v in arb_value()) {
        // Files (to_json) parse back to the same value with the same canonical form.
        let bytes = to_json(&v).unwrap();
        let parsed = parse(&bytes).unwrap();
        prop_assert_eq!(&parsed, &v);
        prop_assert_eq!(to_json(&parsed).unwrap(), bytes);
        prop_assert_eq!(to_canonical(&parsed).unwrap(), to_canonical(&v).unwrap());
    }

    #[test]
    fn key_order_invariance(entries in prop::collection::btree_map(any::<String>(), arb_value(), 0..10)) {
        // The same object written in two key orders (serde_json's own, not canonical)
        // parses to values with one canonical form.
        let forward: Vec<_> = entries.iter().collect();
        let backward: Vec<_> = entries.iter().rev().collect();
        let text = |pairs: &[(&String, &Value)]| {
            let body: Vec<String> = pairs
                .iter()
                .map(|(k, v)| format!("{}: {}", serde_json::to_string(k).unwrap(), serde_json::to_string(v).unwrap()))
                .collect();
            format!("{{ {} }}", body.join(" , "))
        };
        let a = parse(text(&forward).as_bytes()).unwrap();
        let b = parse(text(&backward).as_bytes()).unwrap();
        prop_assert_eq!(to_canonical(&a).unwrap(), to_canonical(&b).unwrap());
    }

    #[test]
    fn parser_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..64)) {
        let _ = parse(&bytes);
    }
}
