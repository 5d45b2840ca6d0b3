//! The pinned root version 1 a writer checks the registry's root chain against (TUF 5.2: the
//! trusted root is obtained out of band). Without one, a registry that swapped the whole root
//! chain would get an operator to sign on top of an attacker's root.

use ocituf_oci::Digest;

/// A pinned root version 1: its exact bytes, or only their sha256.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pin {
    Bytes(Vec<u8>),
    Sha256(String),
}

impl Pin {
    /// Whether `bytes` is the pinned root.
    pub fn matches(&self, bytes: &[u8]) -> bool {
        match self {
            Pin::Bytes(b) => b == bytes,
            Pin::Sha256(hex) => Digest::of(bytes).hex() == hex.as_str(),
        }
    }

    /// The sha256 of the pinned root, for messages.
    pub fn sha256(&self) -> String {
        match self {
            Pin::Bytes(b) => Digest::of(b).hex().to_owned(),
            Pin::Sha256(hex) => hex.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pin_matches_only_its_root() {
        let root = b"{\"signed\":{}}".to_vec();
        let by_hash = Pin::Sha256(Digest::of(&root).hex().to_owned());
        for pin in [Pin::Bytes(root.clone()), by_hash] {
            assert!(pin.matches(&root));
            assert!(!pin.matches(b"{\"signed\":{\"x\":1}}"));
            assert_eq!(pin.sha256(), Digest::of(&root).hex());
        }
    }
}
