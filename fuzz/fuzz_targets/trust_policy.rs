//! The trust policy file (TOML): parsing never panics; what parses writes back to text that
//! parses to the same policy (`ocituf trust add` rewrites the file this way).
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use ocituf_resolver::TrustPolicy;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let path = Path::new("/fuzz/trust.toml");
    let Ok(policy) = TrustPolicy::parse(text, path) else {
        return;
    };
    let written = policy.to_toml();
    let again = TrustPolicy::parse(&written, path).expect("a written policy parses");
    assert_eq!(
        again.to_toml(),
        written,
        "policy changed by a write and re-parse"
    );
});
