//! Image references, repository references and trust-policy scopes typed by users and
//! written in configuration: parsing never panics, and a parsed reference's target name
//! (what is looked up in TUF) and absolute form are computable.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ocituf_resolver::{ImageReference, RepositoryReference, Scope};

fuzz_target!(|data: &[u8]| {
    let Ok(input) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(image) = ImageReference::parse(input) {
        let _ = image.target_name();
        let _ = image.repo.absolute();
    }
    if let Ok(repo) = RepositoryReference::parse(input) {
        let _ = repo.absolute();
    }
    if let Ok(scope) = Scope::parse(input) {
        let _ = scope.absolute();
        if let Ok(image) = ImageReference::parse(input.trim_end_matches('*')) {
            let _ = scope.matches(&image);
        }
    }
});
