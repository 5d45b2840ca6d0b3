//! A tiny, valid OCI image (one uncompressed tar layer holding `hello.txt`), for the quick
//! start and the tests: no skopeo or Docker needed to have something to sign.

use crate::{ArtifactStore, Digest};

const LAYER_MEDIA_TYPE: &str = "application/vnd.oci.image.layer.v1.tar";
const CONFIG_MEDIA_TYPE: &str = "application/vnd.oci.image.config.v1+json";
const MANIFEST_MEDIA_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";

/// A POSIX ustar archive with one regular file.
pub fn tar_one_file(name: &str, content: &[u8]) -> Vec<u8> {
    let mut header = [0u8; 512];
    let put = |h: &mut [u8; 512], at: usize, bytes: &[u8]| {
        h[at..at + bytes.len()].copy_from_slice(bytes);
    };
    let name = &name.as_bytes()[..name.len().min(100)];
    put(&mut header, 0, name);
    put(&mut header, 100, b"0000644\0");
    put(&mut header, 108, b"0000000\0");
    put(&mut header, 116, b"0000000\0");
    put(
        &mut header,
        124,
        format!("{:011o}\0", content.len()).as_bytes(),
    );
    put(&mut header, 136, b"00000000000\0");
    put(&mut header, 148, b"        ");
    header[156] = b'0';
    put(&mut header, 257, b"ustar\0");
    put(&mut header, 263, b"00");
    let sum: u32 = header.iter().map(|&b| u32::from(b)).sum();
    put(&mut header, 148, format!("{sum:06o}\0 ").as_bytes());
    let mut out = header.to_vec();
    out.extend_from_slice(content);
    out.resize(out.len().next_multiple_of(512), 0);
    out.extend_from_slice(&[0u8; 1024]);
    out
}

/// The bytes of the example image: (config, layer, manifest).
pub fn image(message: &str) -> (Vec<u8>, Vec<u8>, Vec<u8>) {
    let layer = tar_one_file("hello.txt", format!("{message}\n").as_bytes());
    let layer_digest = Digest::of(&layer);
    let config = serde_json::to_vec(&serde_json::json!({
        "architecture": "amd64",
        "os": "linux",
        "config": {"Cmd": ["/bin/cat", "/hello.txt"]},
        "rootfs": {"type": "layers", "diff_ids": [layer_digest.as_str()]},
    }))
    .unwrap_or_default();
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": MANIFEST_MEDIA_TYPE,
        "config": {"mediaType": CONFIG_MEDIA_TYPE, "digest": Digest::of(&config).as_str(), "size": config.len()},
        "layers": [{"mediaType": LAYER_MEDIA_TYPE, "digest": layer_digest.as_str(), "size": layer.len()}],
    }))
    .unwrap_or_default();
    (config, layer, manifest)
}

/// Push the example image to `store` under `tag`; returns its manifest digest.
pub async fn push<S: ArtifactStore>(
    store: &S,
    tag: &str,
    message: &str,
) -> Result<Digest, crate::Error> {
    let (config, layer, manifest) = image(message);
    store.put_blob(&config).await?;
    store.put_blob(&layer).await?;
    store
        .put_manifest(MANIFEST_MEDIA_TYPE, &manifest, Some(tag))
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tar_is_readable_by_tar() {
        let dir = tempfile::tempdir().unwrap();
        let t = tar_one_file("hello.txt", b"hi\n");
        assert_eq!(t.len() % 512, 0);
        std::fs::write(dir.path().join("x.tar"), &t).unwrap();
        let out = std::process::Command::new("tar")
            .args(["-xOf", "x.tar", "hello.txt"])
            .current_dir(dir.path())
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        assert_eq!(out.stdout, b"hi\n");
    }

    #[test]
    fn different_messages_make_different_digests() {
        let (_, _, a) = image("one");
        let (_, _, b) = image("two");
        assert_ne!(Digest::of(&a), Digest::of(&b));
        let v: serde_json::Value = serde_json::from_slice(&a).unwrap();
        assert_eq!(v["schemaVersion"], 2);
    }
}
