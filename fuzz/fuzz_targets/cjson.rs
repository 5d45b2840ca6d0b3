//! Canonical JSON: the strict parser never panics, and whatever it accepts has a canonical
//! form that parses back to the same value and is a fixed point of canonicalisation.
//! Signatures are checked over these bytes, so a value with two canonical forms, or a
//! canonical form that parses to something else, would let two parties disagree on what
//! was signed.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ocituf_tuf::cjson;

fuzz_target!(|data: &[u8]| {
    let Ok(value) = cjson::parse(data) else {
        return;
    };
    // A value can lack a canonical form (control characters in a string): then to_json
    // must still write valid JSON that parses to the same value.
    if let Ok(canonical) = cjson::to_canonical(&value) {
        let again = cjson::parse(&canonical);
        if let Ok(again) = again {
            assert_eq!(again, value, "canonical form parses to another value");
            let twice =
                cjson::to_canonical(&again).expect("canonical form of a parsed canonical form");
            assert_eq!(twice, canonical, "canonicalisation is not idempotent");
        }
    }
    let json = cjson::to_json(&value).expect("to_json of a parsed value");
    let back = cjson::parse(&json).expect("to_json wrote bytes the strict parser refuses");
    assert_eq!(back, value, "to_json output parses to another value");
});
