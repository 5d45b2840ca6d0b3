//! Large repositories for tests and benchmarks (issue 10): many images with realistic OCI
//! target entries (manifest lengths, media types of images and indexes, sha256 digests),
//! deterministic from a seed, signed with [`crate::sign::sign_images`] in batches. No image
//! is pushed: the entries are what metadata size and write cost depend on, and a verifying
//! pull of one of them is refused (the registry has no such manifest), as it should be.

use ocituf_oci::Digest;

use crate::sign::{ImageManifest, ImageToSign};

/// The media types of what CI pushes, in the proportions the generator uses (3 in 4 single
/// manifests, 1 in 4 multi-arch indexes).
const MEDIA_TYPES: [&str; 4] = [
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.oci.image.index.v1+json",
];

/// `repositories` repositories `ORG/svc-NNNNN` with `tags` tags each (`1.J.0`): one
/// [`ImageToSign`] per tag, with a manifest digest and length unique to (seed, repository,
/// tag). The same arguments give the same images.
pub fn synthetic_images(
    org: &str,
    repositories: usize,
    tags: usize,
    seed: u64,
) -> Vec<ImageToSign> {
    let mut out = Vec::with_capacity(repositories * tags);
    for r in 0..repositories {
        for t in 0..tags {
            let id = format!("{seed}/{org}/{r}/{t}");
            let digest = Digest::of(id.as_bytes());
            // Manifest sizes of real images: a few hundred bytes to a few KiB.
            let hex = digest.hex();
            let n = u64::from_str_radix(&hex[..4], 16).unwrap_or(0);
            let media_type = MEDIA_TYPES[usize::from(hex.as_bytes()[4] % 4)];
            out.push(ImageToSign {
                repository: format!("{org}/svc-{r:05}"),
                tag: format!("1.{t}.0"),
                manifest: ImageManifest {
                    digest,
                    length: 400 + n % 3000,
                    media_type: media_type.to_owned(),
                },
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_gives_the_same_images_and_every_digest_is_unique() {
        let a = synthetic_images("acme", 20, 5, 7);
        let b = synthetic_images("acme", 20, 5, 7);
        assert_eq!(a.len(), 100);
        for (x, y) in a.iter().zip(&b) {
            assert_eq!(
                (&x.repository, &x.tag, &x.manifest.digest),
                (&y.repository, &y.tag, &y.manifest.digest)
            );
        }
        let digests: std::collections::BTreeSet<_> = a.iter().map(|i| &i.manifest.digest).collect();
        assert_eq!(digests.len(), 100);
        assert!(a.iter().all(|i| (400..3400).contains(&i.manifest.length)));
        let other = synthetic_images("acme", 20, 5, 8);
        assert_ne!(a[0].manifest.digest, other[0].manifest.digest);
    }
}
