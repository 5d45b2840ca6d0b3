//! Role-version manifests (docs/oci-mapping.md section 4) from a hostile registry: the strict
//! parser never panics, and what it accepts names one sha256 metadata layer.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ocituf_oci::mapping::parse_role_manifest;
use ocituf_oci::Digest;

fuzz_target!(|data: &[u8]| {
    if let Ok(parsed) = parse_role_manifest("fuzzed", data) {
        let again = Digest::parse(parsed.metadata_digest.as_str()).expect("digest parses again");
        assert_eq!(again, parsed.metadata_digest);
    }
});
