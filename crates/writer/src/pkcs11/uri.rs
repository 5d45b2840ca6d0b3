//! PKCS#11 URIs (RFC 7512) as `--key` specs: which module, which token, which key, and the
//! PIN. Only what naming a signing key needs is read; an attribute this parser does not know
//! is refused rather than ignored, so a typo never selects another key.
//!
//! ```text
//! pkcs11:token=ocituf;object=timestamp?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=file:/run/secrets/pin
//! ```
//!
//! Path attributes (`;`-separated): `token`, `manufacturer`, `serial`, `model` (the token),
//! `slot-id`, `object` (the key's label), `id` (its `CKA_ID`, percent-encoded bytes),
//! `type` (`private`, the default, is the only one that signs). Query attributes
//! (`&`-separated): `module-path`, `pin-value`, `pin-source` (`file:PATH` or a path).

use crate::error::{fail, Result};
use crate::ErrorKind;

/// A parsed `pkcs11:` URI. Values are percent-decoded.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pkcs11Uri {
    pub token: Option<String>,
    pub manufacturer: Option<String>,
    pub serial: Option<String>,
    pub model: Option<String>,
    pub slot_id: Option<u64>,
    /// `CKA_LABEL` of the key.
    pub object: Option<String>,
    /// `CKA_ID` of the key (raw bytes).
    pub id: Option<Vec<u8>>,
    pub module_path: Option<String>,
    pub pin_value: Option<String>,
    pub pin_source: Option<String>,
}

impl Pkcs11Uri {
    /// The URI for messages: the PIN value is never shown.
    pub fn redacted(spec: &str) -> String {
        let Some((path, query)) = spec.split_once('?') else {
            return spec.to_owned();
        };
        let query: Vec<String> = query
            .split('&')
            .map(|kv| {
                if kv.starts_with("pin-value=") {
                    "pin-value=…".to_owned()
                } else {
                    kv.to_owned()
                }
            })
            .collect();
        format!("{path}?{}", query.join("&"))
    }

    /// Parse a `pkcs11:` URI.
    ///
    /// # Errors
    /// A configuration error naming the attribute that is malformed, repeated or unknown.
    pub fn parse(spec: &str) -> Result<Self> {
        let shown = Self::redacted(spec);
        let bad = |why: String| {
            fail(
                ErrorKind::Config,
                format!("{shown} is not a usable PKCS#11 URI (RFC 7512): {why}"),
            )
        };
        let rest = spec
            .strip_prefix("pkcs11:")
            .ok_or_else(|| bad("it must start with pkcs11:".to_owned()))?;
        let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
        let mut uri = Pkcs11Uri::default();
        for attr in path.split(';').filter(|a| !a.is_empty()) {
            let (name, value) = attr
                .split_once('=')
                .ok_or_else(|| bad(format!("{attr:?} has no '='")))?;
            let bytes =
                percent_decode(value).ok_or_else(|| bad(format!("{name}: bad %-escape")))?;
            let text = || {
                String::from_utf8(bytes.clone())
                    .map_err(|_| bad(format!("{name} is not UTF-8 after %-decoding")))
            };
            let slot = match name {
                "token" => &mut uri.token,
                "manufacturer" => &mut uri.manufacturer,
                "serial" => &mut uri.serial,
                "model" => &mut uri.model,
                "object" => &mut uri.object,
                "id" => {
                    if uri.id.replace(bytes.clone()).is_some() {
                        return Err(bad("id is given twice".to_owned()));
                    }
                    continue;
                }
                "slot-id" => {
                    let n = text()?
                        .parse::<u64>()
                        .map_err(|_| bad(format!("slot-id {value:?} is not a number")))?;
                    if uri.slot_id.replace(n).is_some() {
                        return Err(bad("slot-id is given twice".to_owned()));
                    }
                    continue;
                }
                "type" => {
                    if text()? != "private" {
                        return Err(bad(format!(
                            "type={value} cannot sign: name the private key (type=private, or leave type out)"
                        )));
                    }
                    continue;
                }
                // Attributes that only narrow the library or the slot: accepted, unused.
                "library-manufacturer"
                | "library-description"
                | "library-version"
                | "slot-manufacturer"
                | "slot-description" => continue,
                other => return Err(bad(format!("unknown path attribute {other:?}"))),
            };
            if slot.replace(text()?).is_some() {
                return Err(bad(format!("{name} is given twice")));
            }
        }
        for attr in query.split('&').filter(|a| !a.is_empty()) {
            let (name, value) = attr.split_once('=').ok_or_else(|| {
                bad(format!(
                    "query attribute {name:?} has no '='",
                    name = attr.split('=').next().unwrap_or("")
                ))
            })?;
            let value = percent_decode(value)
                .and_then(|b| String::from_utf8(b).ok())
                .ok_or_else(|| bad(format!("{name}: bad %-escape or not UTF-8")))?;
            let slot = match name {
                "module-path" => &mut uri.module_path,
                "pin-value" => &mut uri.pin_value,
                "pin-source" => &mut uri.pin_source,
                "module-name" => {
                    return Err(bad(
                        "module-name is not supported: give module-path=/path/to/module.so"
                            .to_owned(),
                    ))
                }
                other => return Err(bad(format!("unknown query attribute {other:?}"))),
            };
            if slot.replace(value).is_some() {
                return Err(bad(format!("{name} is given twice")));
            }
        }
        if uri.object.is_none() && uri.id.is_none() {
            return Err(bad(
                "name the key with object=LABEL or id=%XX… (pkcs11-tool --list-objects shows them)"
                    .to_owned(),
            ));
        }
        Ok(uri)
    }
}

/// RFC 3986 percent-decoding (`%41` → `A`); `None` for a malformed escape.
fn percent_decode(s: &str) -> Option<Vec<u8>> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_uri_parses_with_percent_escapes() {
        let u = Pkcs11Uri::parse(
            "pkcs11:token=my%20token;object=ts;id=%01%ff;slot-id=3;type=private\
             ?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-value=12%334",
        )
        .unwrap();
        assert_eq!(u.token.as_deref(), Some("my token"));
        assert_eq!(u.object.as_deref(), Some("ts"));
        assert_eq!(u.id, Some(vec![1, 0xff]));
        assert_eq!(u.slot_id, Some(3));
        assert_eq!(
            u.module_path.as_deref(),
            Some("/usr/lib/softhsm/libsofthsm2.so")
        );
        assert_eq!(u.pin_value.as_deref(), Some("1234"));
    }

    #[test]
    fn a_typo_in_an_attribute_is_refused_not_ignored() {
        let e = Pkcs11Uri::parse("pkcs11:tokn=a;object=b").unwrap_err();
        assert!(e.message.contains("unknown path attribute \"tokn\""), "{e}");
        let e = Pkcs11Uri::parse("pkcs11:object=b?pin=1").unwrap_err();
        assert!(e.message.contains("unknown query attribute \"pin\""), "{e}");
    }

    #[test]
    fn a_uri_that_names_no_key_is_refused() {
        let e = Pkcs11Uri::parse("pkcs11:token=a").unwrap_err();
        assert!(e.message.contains("object=LABEL"), "{e}");
    }

    #[test]
    fn a_public_key_or_certificate_type_is_refused_for_signing() {
        let e = Pkcs11Uri::parse("pkcs11:object=a;type=public").unwrap_err();
        assert!(e.message.contains("cannot sign"), "{e}");
    }

    #[test]
    fn repeated_and_malformed_attributes_are_refused() {
        for spec in [
            "pkcs11:object=a;object=b",
            "pkcs11:object=a%zz",
            "pkcs11:object=a;slot-id=x",
            "pkcs11:object",
            "pkcs11:object=a?pin-value=1&pin-value=2",
            "pkcs11:object=%ff",
            "pkcs11:object=a?module-name=softhsm2",
        ] {
            assert!(Pkcs11Uri::parse(spec).is_err(), "{spec}");
        }
    }

    #[test]
    fn messages_never_show_the_pin() {
        let e = Pkcs11Uri::parse("pkcs11:tokn=a?pin-value=secret").unwrap_err();
        assert!(!e.message.contains("secret"), "{e}");
    }
}
