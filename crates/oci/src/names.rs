//! The OCI distribution spec's grammar for repository names and tags: one implementation
//! for the registry store, the layout store and the resolver's reference parser, so that
//! what one accepts the others accept too.

/// Distribution spec: `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(\/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*`.
pub fn valid_repository_name(name: &str) -> bool {
    if name.is_empty() || name.len() > 255 {
        return false;
    }
    name.split('/').all(|component| {
        let b = component.as_bytes();
        let alnum = |c: &u8| c.is_ascii_lowercase() || c.is_ascii_digit();
        if b.is_empty() || !alnum(&b[0]) || !alnum(&b[b.len() - 1]) {
            return false;
        }
        let mut i = 0;
        while i < b.len() {
            if alnum(&b[i]) {
                i += 1;
                continue;
            }
            let start = i;
            while i < b.len() && !alnum(&b[i]) {
                i += 1;
            }
            let sep = &component[start..i];
            let ok = sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|c| c == b'-');
            if !ok {
                return false;
            }
        }
        true
    })
}

/// Distribution spec tag grammar: `[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}`.
pub fn valid_tag(tag: &str) -> bool {
    let b = tag.as_bytes();
    !b.is_empty()
        && b.len() <= 128
        && (b[0].is_ascii_alphanumeric() || b[0] == b'_')
        && b[1..]
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || b"._-".contains(c))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repository_grammar() {
        for ok in ["tuf", "acme/tuf", "a.b_c-d/e__f", "a--b", "a---b"] {
            assert!(valid_repository_name(ok), "{ok:?}");
        }
        for bad in [
            "", "Acme", "/x", "x/", "a//b", "a/../b", "-a", "a:b", "a_.b", "a._b", "a___b", "a..b",
        ] {
            assert!(!valid_repository_name(bad), "{bad:?}");
        }
        assert!(valid_repository_name(&"a".repeat(255)));
        assert!(!valid_repository_name(&"a".repeat(256)));
    }

    #[test]
    fn tag_grammar() {
        let fallback_tag = format!("sha256-{}", "a".repeat(64));
        for ok in ["1.4", "latest", "_x", &"a".repeat(128), &fallback_tag] {
            assert!(valid_tag(ok), "{ok:?}");
        }
        for bad in ["", ".x", "-x", "a/b", "a:b", &"a".repeat(129)] {
            assert!(!valid_tag(bad), "{bad:?}");
        }
    }
}
