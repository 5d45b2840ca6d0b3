//! Referrers lists (the referrers API's answer or a fallback tag's index) from a hostile
//! registry: parsing never panics, and every descriptor kept has a sha256 digest that
//! round-trips through its own string form.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ocituf_oci::mapping::Hints;
use ocituf_oci::registry::parse_referrers;
use ocituf_oci::Digest;

fuzz_target!(|data: &[u8]| {
    let Ok(descriptors) = parse_referrers(data, "fuzz://referrers") else {
        return;
    };
    for d in descriptors {
        let again = Digest::parse(d.digest.as_str()).expect("a kept digest parses again");
        assert_eq!(again, d.digest);
        // Annotations are hints that only choose what to fetch; reading them never fails.
        let _ = Hints::from_annotations(&d.annotations);
    }
});
