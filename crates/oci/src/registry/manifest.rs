//! What ocituf reads out of a manifest it pushes or lists: subject, artifact type,
//! annotations (for referrers bookkeeping; never trusted for verification).

use std::collections::BTreeMap;

use crate::store::{Descriptor, Digest};

/// What a manifest says about itself, for referrers bookkeeping.
#[derive(Debug, Default)]
pub(crate) struct ManifestFacts {
    pub(crate) media_type: Option<String>,
    pub(crate) subject: Option<Digest>,
    pub(crate) artifact_type: Option<String>,
    pub(crate) annotations: BTreeMap<String, String>,
}

impl ManifestFacts {
    pub(crate) fn parse(bytes: &[u8]) -> Result<Self, serde_json::Error> {
        let v: serde_json::Value = serde_json::from_slice(bytes)?;
        let s = |v: Option<&serde_json::Value>| v.and_then(|x| x.as_str()).map(str::to_owned);
        let subject =
            s(v.get("subject").and_then(|x| x.get("digest"))).and_then(|d| Digest::parse(&d).ok());
        // OCI image spec: artifactType, else the config media type.
        let artifact_type = s(v.get("artifactType"))
            .or_else(|| s(v.get("config").and_then(|c| c.get("mediaType"))));
        let annotations = v
            .get("annotations")
            .and_then(|a| a.as_object())
            .map(|m| {
                m.iter()
                    .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
                    .collect()
            })
            .unwrap_or_default();
        Ok(Self {
            media_type: s(v.get("mediaType")),
            subject,
            artifact_type,
            annotations,
        })
    }

    pub(crate) fn descriptor(&self, media_type: &str, digest: Digest, size: u64) -> Descriptor {
        Descriptor {
            media_type: self
                .media_type
                .clone()
                .unwrap_or_else(|| media_type.to_owned()),
            digest,
            size,
            artifact_type: self.artifact_type.clone(),
            annotations: self.annotations.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn artifact_type_falls_back_to_the_config_media_type() {
        let s = Digest::of(b"s");
        let m = format!(
            r#"{{"mediaType":"application/vnd.oci.image.manifest.v1+json",
                "config":{{"mediaType":"application/vnd.example.config"}},
                "subject":{{"digest":"{s}"}},"annotations":{{"a":"b","n":1}}}}"#
        );
        let f = ManifestFacts::parse(m.as_bytes()).unwrap();
        assert_eq!(
            f.artifact_type.as_deref(),
            Some("application/vnd.example.config")
        );
        assert_eq!(f.subject, Some(s));
        // Non-string annotation values are dropped, not fatal.
        assert_eq!(f.annotations.len(), 1);
        let f =
            ManifestFacts::parse(br#"{"artifactType":"x","config":{"mediaType":"y"}}"#).unwrap();
        assert_eq!(f.artifact_type.as_deref(), Some("x"));
        assert!(f.subject.is_none());
        // A subject with a digest ocituf cannot use is no subject.
        let f = ManifestFacts::parse(br#"{"subject":{"digest":"sha512:00"}}"#).unwrap();
        assert!(f.subject.is_none());
        assert!(ManifestFacts::parse(b"not json").is_err());
    }
}
