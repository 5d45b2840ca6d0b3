//! Helpers shared by the registry tests: artifact manifests as ocituf writes them.

use ocituf_oci::{Descriptor, Digest};

pub const EMPTY_CONFIG: &[u8] = b"{}";
pub const MANIFEST_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";

/// An OCI artifact manifest: empty config, one layer, optional subject.
pub fn artifact(
    artifact_type: &str,
    layer: &[u8],
    subject: Option<&Descriptor>,
    annotations: &[(&str, &str)],
) -> Vec<u8> {
    let mut m = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": MANIFEST_TYPE,
        "artifactType": artifact_type,
        "config": {
            "mediaType": "application/vnd.oci.empty.v1+json",
            "digest": Digest::of(EMPTY_CONFIG).as_str(),
            "size": 2
        },
        "layers": [{
            "mediaType": "application/vnd.tuf.metadata+json",
            "digest": Digest::of(layer).as_str(),
            "size": layer.len()
        }]
    });
    if let Some(s) = subject {
        m["subject"] = serde_json::json!({
            "mediaType": s.media_type,
            "digest": s.digest.as_str(),
            "size": s.size
        });
    }
    if !annotations.is_empty() {
        let a: serde_json::Map<String, serde_json::Value> = annotations
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).into()))
            .collect();
        m["annotations"] = a.into();
    }
    serde_json::to_vec(&m).expect("json")
}

pub fn descriptor_of(bytes: &[u8]) -> Descriptor {
    Descriptor {
        media_type: MANIFEST_TYPE.to_owned(),
        digest: Digest::of(bytes),
        size: bytes.len() as u64,
        artifact_type: None,
        annotations: std::collections::BTreeMap::default(),
    }
}
