//! Copying one image (a manifest, or an index and its platform manifests, with every blob)
//! between two stores, checking every digest and size on the way.

use ocituf_oci::image::is_index;
use ocituf_oci::mapping::MAX_MANIFEST_LEN;
use ocituf_oci::{ArtifactStore, Digest, ManifestRef};
use ocituf_resolver::{AnyStore, ErrorKind};

use crate::error::{fail, Result};

/// Index children followed per index, and levels of nested indexes.
const MAX_CHILDREN: usize = 1024;
const MAX_DEPTH: u32 = 4;
/// Largest blob copied (each is held in memory while it is copied).
pub const MAX_BLOB_LEN: u64 = 8 * 1024 * 1024 * 1024;

/// What a copy moved.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Copied {
    pub manifests: usize,
    pub blobs: usize,
    pub bytes: u64,
}

/// Copy manifest `digest` of `length` bytes (and what it references) from `from` to `to`
/// (`None`: only read and check everything, for a dry run), tagging it `tag` last.
///
/// # Errors
/// `Refused` when a manifest or blob is missing or has another digest or size than its
/// parent names; `Network` when a store fails.
pub(crate) async fn copy_image(
    from: &AnyStore,
    to: Option<&AnyStore>,
    digest: &Digest,
    length: u64,
    tag: Option<&str>,
) -> Result<Copied> {
    let mut copied = Copied::default();
    copy_manifest(from, to, digest, length, tag, 0, &mut copied).await?;
    Ok(copied)
}

fn net(e: ocituf_oci::Error, what: String) -> crate::Error {
    let kind = match e {
        ocituf_oci::Error::DigestMismatch { .. }
        | ocituf_oci::Error::TooLarge { .. }
        | ocituf_oci::Error::MalformedManifest { .. } => ErrorKind::Refused,
        _ => ErrorKind::Network,
    };
    let what = if kind == ErrorKind::Refused {
        format!("{what}: its content does not match its digest or size (tampered or corrupt)")
    } else {
        what
    };
    crate::Error::wrap(kind, what, e)
}

#[allow(clippy::too_many_arguments)]
async fn copy_manifest(
    from: &AnyStore,
    to: Option<&AnyStore>,
    digest: &Digest,
    length: u64,
    tag: Option<&str>,
    depth: u32,
    copied: &mut Copied,
) -> Result<()> {
    let src = from.location();
    if depth > MAX_DEPTH {
        return Err(fail(
            ErrorKind::Refused,
            format!("{src}@{digest}: indexes nested deeper than {MAX_DEPTH} levels"),
        ));
    }
    let max_len = length.min(MAX_MANIFEST_LEN);
    let manifest = from
        .get_manifest(ManifestRef::Digest(digest), max_len)
        .await
        .map_err(|e| net(e, format!("could not read manifest {digest} from {src}")))?
        .ok_or_else(|| {
            fail(
                ErrorKind::Refused,
                format!("{src} has no manifest {digest}"),
            )
        })?;
    // Hash as received: the digest (and the length) were signed or listed by a parent.
    let actual = Digest::of(&manifest.bytes);
    if actual != *digest || manifest.bytes.len() as u64 != length {
        return Err(fail(
            ErrorKind::Refused,
            format!(
                "manifest {digest} from {src} has sha256 {actual} and {} bytes, expected {length} bytes: tampered",
                manifest.bytes.len()
            ),
        ));
    }
    let json: serde_json::Value = serde_json::from_slice(&manifest.bytes).map_err(|e| {
        crate::Error::wrap(
            ErrorKind::Refused,
            format!("manifest {digest} from {src} is not JSON"),
            e,
        )
    })?;
    let media_type = json
        .get("mediaType")
        .and_then(serde_json::Value::as_str)
        .unwrap_or(&manifest.media_type)
        .to_owned();
    let children = |key: &str| -> Result<Vec<(Digest, u64)>> {
        let Some(list) = json.get(key) else {
            return Ok(Vec::new());
        };
        let list = list.as_array().ok_or_else(|| {
            fail(
                ErrorKind::Refused,
                format!("manifest {digest}: {key} is not a list"),
            )
        })?;
        if list.len() > MAX_CHILDREN {
            return Err(fail(
                ErrorKind::Refused,
                format!("manifest {digest} lists more than {MAX_CHILDREN} {key}"),
            ));
        }
        list.iter().map(|d| descriptor(digest, d)).collect()
    };
    if is_index(&media_type) || json.get("manifests").is_some() {
        for (child, size) in children("manifests")? {
            Box::pin(copy_manifest(
                from,
                to,
                &child,
                size,
                None,
                depth + 1,
                copied,
            ))
            .await?;
        }
    } else {
        let mut blobs = children("layers")?;
        if let Some(config) = json.get("config") {
            blobs.insert(0, descriptor(digest, config)?);
        }
        for (blob, size) in blobs {
            copy_blob(from, to, &blob, size, copied).await?;
        }
    }
    if let Some(to) = to {
        to.put_manifest(&media_type, &manifest.bytes, tag)
            .await
            .map_err(|e| {
                net(
                    e,
                    format!("could not write manifest {digest} to {}", to.location()),
                )
            })?;
    }
    copied.manifests += 1;
    Ok(())
}

/// `(digest, size)` of a descriptor inside manifest `parent`.
fn descriptor(parent: &Digest, d: &serde_json::Value) -> Result<(Digest, u64)> {
    let digest = d
        .get("digest")
        .and_then(serde_json::Value::as_str)
        .map(Digest::parse)
        .transpose()
        .map_err(|e| {
            crate::Error::wrap(
                ErrorKind::Refused,
                format!("manifest {parent} names a bad digest"),
                e,
            )
        })?;
    let size = d.get("size").and_then(serde_json::Value::as_u64);
    match (digest, size) {
        (Some(digest), Some(size)) => Ok((digest, size)),
        _ => Err(fail(
            ErrorKind::Refused,
            format!("manifest {parent} has a descriptor without digest or size"),
        )),
    }
}

async fn copy_blob(
    from: &AnyStore,
    to: Option<&AnyStore>,
    digest: &Digest,
    size: u64,
    copied: &mut Copied,
) -> Result<()> {
    let src = from.location();
    if size > MAX_BLOB_LEN {
        return Err(fail(
            ErrorKind::Refused,
            format!("blob {digest} of {src} is {size} bytes, more than the {MAX_BLOB_LEN} a bundle copies"),
        ));
    }
    let bytes = from
        .get_blob(digest, size)
        .await
        .map_err(|e| net(e, format!("could not read blob {digest} from {src}")))?
        .ok_or_else(|| fail(ErrorKind::Refused, format!("{src} has no blob {digest}")))?;
    let actual = Digest::of(&bytes);
    if actual != *digest || bytes.len() as u64 != size {
        return Err(fail(
            ErrorKind::Refused,
            format!("blob {digest} from {src} has sha256 {actual}: tampered"),
        ));
    }
    if let Some(to) = to {
        to.put_blob(&bytes).await.map_err(|e| {
            net(
                e,
                format!("could not write blob {digest} to {}", to.location()),
            )
        })?;
    }
    copied.blobs += 1;
    copied.bytes += size;
    Ok(())
}
