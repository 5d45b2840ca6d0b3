//! Metadata parsing: the envelope and each role class from untrusted bytes never panic, and
//! a role that parses survives a write and re-parse unchanged (what the editor relies on).
#![no_main]

use libfuzzer_sys::fuzz_target;
use ocituf_tuf::metadata::{Envelope, Role, Root, Snapshot, Targets, Timestamp};

fn role<R: Role + PartialEq + std::fmt::Debug>(envelope: &Envelope) {
    let Ok(parsed) = R::from_signed(&envelope.signed) else {
        return;
    };
    let _ = parsed.validate_content();
    // What parses must write back to a value that parses to the same role: the editor
    // loads, changes and re-signs roles this way.
    let written = parsed.to_signed().expect("a parsed role serialises");
    let again = R::from_signed(&written).expect("a written role parses");
    assert_eq!(again, parsed, "role changed by a write and re-parse");
}

fuzz_target!(|data: &[u8]| {
    let Ok(envelope) = Envelope::parse("fuzzed", data) else {
        return;
    };
    let _ = envelope.signed_bytes();
    role::<Root>(&envelope);
    role::<Timestamp>(&envelope);
    role::<Snapshot>(&envelope);
    role::<Targets>(&envelope);
    if let Ok(targets) = Targets::from_signed(&envelope.signed) {
        if let Some(delegations) = &targets.delegations {
            // Role lookup over fuzzed delegations (path patterns, succinct bins).
            for path in ["acme/app:1.4", "acme/app@sha256:00", "", "a/b/c"] {
                let _ = delegations.roles_for_target(path);
            }
        }
    }
});
