//! Metadata round trips with unknown fields, the rules of each role, and path patterns and
//! hash bins checked against python-tuf.

use serde_json::json;

use super::*;
use crate::cjson;

fn root_json() -> Value {
    json!({
        "_type": "root",
        "spec_version": "1.0.31",
        "version": 1,
        "expires": "2030-01-01T00:00:00Z",
        "consistent_snapshot": true,
        "x-custom": {"nested": [1, 2]},
        "keys": {
            "abc": {"keytype": "ed25519", "scheme": "ed25519",
                    "keyval": {"public": "00", "x-kv": 1}, "keyid_hash_algorithms": ["sha256"]}
        },
        "roles": {
            "root": {"keyids": ["abc"], "threshold": 1, "x-role": true},
            "timestamp": {"keyids": ["abc"], "threshold": 1},
            "snapshot": {"keyids": ["abc"], "threshold": 1},
            "targets": {"keyids": ["abc"], "threshold": 1}
        }
    })
}

#[test]
fn unknown_fields_survive_a_round_trip() {
    let signed = root_json();
    let root = Root::from_signed(&signed).unwrap();
    assert!(root.consistent_snapshot());
    assert_eq!(
        cjson::to_canonical(&root.to_signed().unwrap()).unwrap(),
        cjson::to_canonical(&signed).unwrap()
    );
}

#[test]
fn wrong_type_is_refused() {
    let signed = root_json();
    assert!(matches!(
        Timestamp::from_signed(&signed),
        Err(Error::WrongType { expected, got }) if expected == "timestamp" && got == "root"
    ));
}

#[test]
fn root_rules() {
    let mut bad = root_json();
    bad["roles"]["root"]["keyids"] = json!(["abc", "abc"]);
    assert!(matches!(
        Root::from_signed(&bad),
        Err(Error::Invalid { .. })
    ));
    let mut bad = root_json();
    bad["roles"]["root"]["threshold"] = json!(0);
    assert!(matches!(
        Root::from_signed(&bad),
        Err(Error::Invalid { .. })
    ));
    let mut bad = root_json();
    bad["roles"].as_object_mut().unwrap().remove("snapshot");
    assert!(matches!(
        Root::from_signed(&bad),
        Err(Error::Invalid { .. })
    ));
    let mut bad = root_json();
    bad["version"] = json!(0);
    assert!(matches!(
        Root::from_signed(&bad),
        Err(Error::Invalid { .. })
    ));
    let mut bad = root_json();
    bad["spec_version"] = json!("2.0.0");
    assert!(matches!(
        Root::from_signed(&bad),
        Err(Error::Invalid { .. })
    ));
    let mut bad = root_json();
    bad["version"] = json!(-1);
    assert!(matches!(Root::from_signed(&bad), Err(Error::Schema { .. })));
}

#[test]
fn expires_is_strict() {
    let t = expires_format::parse("2030-01-02T03:04:05Z").unwrap();
    assert_eq!(expires_format::format(t).unwrap(), "2030-01-02T03:04:05Z");
    for bad in [
        "2030-01-02T03:04:05",
        "2030-01-02T03:04:05.5Z",
        "2030-01-02 03:04:05Z",
        "2030-01-02T03:04:05+00:00",
    ] {
        assert!(expires_format::parse(bad).is_err(), "{bad}");
    }
}

#[test]
fn fnmatch_agrees_with_python() {
    // Expected values printed by Python 3.11 fnmatch.fnmatch.
    let cases = [
        ("file.txt", "*.txt", true),
        ("a.tar.gz", "*.gz", true),
        ("abc", "a?c", true),
        ("abc", "a[bx]c", true),
        ("abc", "a[!b]c", false),
        ("a-c", "a[a-]c", true),
        ("a]c", "a[]]c", true),
        ("a[c", "a[c", true),
        ("", "", true),
        ("", "*", true),
        ("ab", "a*b*", true),
        ("aXbYb", "a*b", true),
        ("x", "[!]x]", false),
        ("b", "[a-c]", true),
        ("d", "[a-c]", false),
        ("]", "[]]", true),
        ("abc", "*?*?*?*", true),
        ("ab", "*?*?*?*", false),
    ];
    for (name, pattern, expected) in cases {
        assert_eq!(fnmatch(name, pattern), expected, "{name:?} {pattern:?}");
    }
}

fn delegated(paths: &[&str]) -> DelegatedRole {
    DelegatedRole {
        name: "r".into(),
        keyids: vec![],
        threshold: 1,
        terminating: false,
        paths: Some(paths.iter().map(|p| (*p).to_owned()).collect()),
        path_hash_prefixes: None,
        extra: std::collections::BTreeMap::default(),
    }
}

#[test]
fn path_patterns_match_per_segment() {
    // Expected values from python-tuf 7.0.1 DelegatedRole.is_delegated_path.
    let role = delegated(&["acme/*", "x/*/y"]);
    assert!(role.matches("acme/app:1"));
    assert!(!role.matches("acme/a/b"));
    assert!(role.matches("x/q/y"));
    assert!(!role.matches("x/y"));
}

#[test]
fn path_hash_prefixes_match() {
    let mut role = delegated(&[]);
    role.paths = None;
    // sha256("a") starts with ca978112.
    role.path_hash_prefixes = Some(vec!["ca9".into()]);
    assert!(role.matches("a"));
    assert!(!role.matches("b"));
}

#[test]
fn succinct_bins_agree_with_python_tuf() {
    // Expected values from python-tuf 7.0.1 SuccinctRoles.get_role_for_target.
    let cases: [(u32, [&str; 3]); 6] = [
        (1, ["bin-1", "bin-1", "bin-1"]),
        (4, ["bin-e", "bin-c", "bin-e"]),
        (5, ["bin-1d", "bin-19", "bin-1c"]),
        (10, ["bin-3b5", "bin-32a", "bin-38e"]),
        (16, ["bin-ed69", "bin-ca97", "bin-e3b0"]),
        (32, ["bin-ed698e2e", "bin-ca978112", "bin-e3b0c442"]),
    ];
    for (bits, expected) in cases {
        let s = SuccinctRoles {
            keyids: vec![],
            threshold: 1,
            bit_length: bits,
            name_prefix: "bin".into(),
            extra: std::collections::BTreeMap::default(),
        };
        for (path, name) in ["acme/app:1.4", "a", ""].iter().zip(expected) {
            assert_eq!(s.role_for_target(path), name);
            assert!(s.is_delegated_role(name));
        }
    }
    let s = SuccinctRoles {
        keyids: vec![],
        threshold: 1,
        bit_length: 5,
        name_prefix: "bin".into(),
        extra: std::collections::BTreeMap::default(),
    };
    assert!(s.is_delegated_role("bin-1f"));
    assert!(!s.is_delegated_role("bin-20"));
    assert!(!s.is_delegated_role("bin-1"));
    assert!(!s.is_delegated_role("bins-01"));
    assert_eq!(s.bin_count(), 32);
}

#[test]
fn delegation_rules() {
    let targets = |delegations: Value| {
        json!({"_type": "targets", "spec_version": "1.0", "version": 1,
               "expires": "2030-01-01T00:00:00Z", "targets": {}, "delegations": delegations})
    };
    let role =
        json!({"name": "a", "keyids": [], "threshold": 1, "terminating": false, "paths": ["*"]});
    assert!(Targets::from_signed(&targets(json!({"keys": {}, "roles": [role.clone()]}))).is_ok());
    for bad in [
        json!({"keys": {}, "roles": [role.clone(), role.clone()]}),
        json!({"keys": {}}),
        json!({"keys": {}, "roles": [], "succinct_roles": {"keyids": [], "threshold": 1, "bit_length": 3, "name_prefix": "b"}}),
        json!({"keys": {}, "succinct_roles": {"keyids": [], "threshold": 1, "bit_length": 33, "name_prefix": "b"}}),
        json!({"keys": {}, "roles": [{"name": "targets", "keyids": [], "threshold": 1, "terminating": false, "paths": []}]}),
        json!({"keys": {}, "roles": [{"name": "a", "keyids": [], "threshold": 1, "terminating": false}]}),
    ] {
        assert!(
            Targets::from_signed(&targets(bad.clone())).is_err(),
            "{bad}"
        );
    }
}

#[test]
fn envelope_rejects_duplicate_signature_keyids() {
    let bytes = br#"{"signed": {"_type": "timestamp"}, "signatures": [{"keyid": "a", "sig": ""}, {"keyid": "a", "sig": "00"}]}"#;
    assert!(matches!(
        Envelope::parse("timestamp", bytes),
        Err(Error::DuplicateSignatureKeyId { keyid, .. }) if keyid == "a"
    ));
}
