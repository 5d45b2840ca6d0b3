//! File digests (`sha224`, `sha256`, `sha384`, `sha512`) and the length-and-hash check of
//! TUF 5.4.x/5.5.x/5.6.x/5.7.x.

use std::collections::BTreeMap;

use sha2::Digest as _;

use crate::error::Error;

/// Hex digest of `data` with the named algorithm, `None` if the algorithm is not supported.
pub fn digest(algorithm: &str, data: &[u8]) -> Option<String> {
    Some(match algorithm {
        "sha224" => hex::encode(sha2::Sha224::digest(data)),
        "sha256" => hex::encode(sha2::Sha256::digest(data)),
        "sha384" => hex::encode(sha2::Sha384::digest(data)),
        "sha512" => hex::encode(sha2::Sha512::digest(data)),
        _ => return None,
    })
}

/// Check `data` against a trusted length and trusted hashes, each optional.
///
/// # Errors
/// [`Error::LengthMismatch`], [`Error::HashMismatch`], or [`Error::UnsupportedHash`] when
/// any listed algorithm is unknown (a hash that cannot be checked is not skipped).
///
/// # Security
/// Every listed hash is checked, not just one.
pub fn verify_length_and_hashes(
    what: &str,
    data: &[u8],
    length: Option<u64>,
    hashes: Option<&BTreeMap<String, String>>,
) -> Result<(), Error> {
    let actual_len = data.len() as u64;
    if let Some(expected) = length {
        if actual_len != expected {
            return Err(Error::LengthMismatch {
                what: what.to_owned(),
                expected,
                actual: actual_len,
            });
        }
    }
    for (algorithm, expected) in hashes.into_iter().flatten() {
        let actual = digest(algorithm, data).ok_or_else(|| Error::UnsupportedHash {
            what: what.to_owned(),
            algorithm: algorithm.clone(),
        })?;
        if !actual.eq_ignore_ascii_case(expected) {
            return Err(Error::HashMismatch {
                what: what.to_owned(),
                algorithm: algorithm.clone(),
                expected: expected.clone(),
                actual,
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks_every_hash_and_the_length() {
        let data = b"abc";
        let mut hashes = BTreeMap::new();
        hashes.insert("sha256".to_owned(), digest("sha256", data).unwrap());
        hashes.insert("sha512".to_owned(), digest("sha512", data).unwrap());
        verify_length_and_hashes("f", data, Some(3), Some(&hashes)).unwrap();
        assert!(matches!(
            verify_length_and_hashes("f", data, Some(4), Some(&hashes)),
            Err(Error::LengthMismatch {
                expected: 4,
                actual: 3,
                ..
            })
        ));
        hashes.insert("sha512".to_owned(), digest("sha512", b"abd").unwrap());
        assert!(matches!(
            verify_length_and_hashes("f", data, None, Some(&hashes)),
            Err(Error::HashMismatch { algorithm, .. }) if algorithm == "sha512"
        ));
        hashes.clear();
        hashes.insert("md5".to_owned(), "00".to_owned());
        assert!(matches!(
            verify_length_and_hashes("f", data, None, Some(&hashes)),
            Err(Error::UnsupportedHash { .. })
        ));
    }
}
