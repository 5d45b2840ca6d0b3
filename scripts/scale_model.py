#!/usr/bin/env python3
"""The model behind docs/scale.md: a registry of 10M images in 100k organizations.

Each organization is one root of trust whose team role delegates to B = T/8 hash bins
(the next power of two, 2 to 2^20; T = 2 x images: the tag and digest names). Metadata sizes are
computed from the same encodings ocituf writes (canonical JSON of the entries, the 528-byte
inner nodes of docs/oci-mapping.md 11), and the Merkle path of a bin is found by building
the radix tree's shape over the real role names (sha256 of "app-<hex>"), exactly as
ocituf_tuf::merkle does. Constants measured with `cargo bench -p ocituf --bench scale` are
marked MEASURED; compare the model's per-org figures with that table.

Run: python3 scripts/scale_model.py [--orgs 100000] [--images 10000000] [--seed 1]
"""

import argparse
import hashlib
import json
import math
import random

LEAF_MAX = 16
INNER = 16 * 33
# One ed25519 signature and the envelope around `signed` (keyid, sig, braces): MEASURED
# from generated bins (the bench's classic and Merkle rows agree with it within 5%).
ENVELOPE = 190
TIMESTAMP = 460  # MEASURED: a timestamp with the snapshot's length and sha256
SNAPSHOT_HEAD = 330  # snapshot without entries (expires, version, spec_version, envelope)
MERKLE_FIELD = 110  # "x-ocituf-merkle":{"kind":..,"roles":..,"sha256":..}


def canonical(obj):
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def target_entry_bytes(rng):
    """Average bytes of one target entry (tag or digest name) as sign writes it."""
    total = 0
    n = 200
    for i in range(n):
        digest = hashlib.sha256(f"{i}".encode()).hexdigest()
        file = {
            "custom": {"oci": {"mediaType": "application/vnd.oci.image.manifest.v1+json"}},
            "hashes": {"sha256": digest},
            "length": 400 + rng.randrange(3000),
        }
        repo = f"acme/svc-{rng.randrange(100000):05d}"
        for name in (f"{repo}:1.{i % 10}.0", f"{repo}@sha256:{digest}"):
            total += len(canonical({name: file})) - 1  # without the outer braces, plus a comma
    return total / (2 * n)


def meta_entry_bytes(name):
    entry = {"hashes": {"sha256": "0" * 64}, "length": 12345, "version": 12}
    return len(canonical({name: entry})) - 1


def bin_names(bins):
    width = max(1, math.ceil(int(math.log2(bins)) / 4))
    return [f"app-{b:0{width}x}" for b in range(bins)]


def merkle_paths(roles, sample, rng):
    """Bytes of the path (inner nodes + leaf) to `sample` random roles, by the shape rule."""
    keys = sorted((hashlib.sha256(r.encode()).hexdigest(), r) for r in roles)

    def path(role):
        k = hashlib.sha256(role.encode()).hexdigest()
        subset = keys
        depth = 0
        size = 0
        nodes = 0
        while len(subset) > LEAF_MAX and depth < 64:
            size += INNER
            nodes += 1
            subset = [x for x in subset if x[0][depth] == k[depth]]
            depth += 1
        leaf = {"prefix": k[:depth], "roles": {}}
        size += len(canonical(leaf)) + sum(meta_entry_bytes(r) for _, r in subset)
        return size, nodes + 1

    picks = rng.sample(roles, min(sample, len(roles)))
    sizes = [path(r) for r in picks]
    return (sum(s for s, _ in sizes) / len(sizes), sum(n for _, n in sizes) / len(sizes))


def org_figures(images, entry, rng, cache):
    targets = 2 * images
    bins = min(1 << 20, max(2, 1 << max(1, math.ceil(math.log2(max(2, targets / 8))))))
    per_bin = targets / bins
    bin_bytes = ENVELOPE + 120 + per_bin * entry
    if bins not in cache:
        names = bin_names(bins) + ["app"]
        cache[bins] = merkle_paths(names, 16 if bins > 65536 else 64, rng)
    path_bytes, path_nodes = cache[bins]
    snapshot_classic = SNAPSHOT_HEAD + (bins + 2) * meta_entry_bytes("app-0000.json")
    # Warm pull after the client's own bin changed: listing, timestamp, snapshot, the bin;
    # Merkle adds the bin's path and the team role's path (its root node is shared).
    classic = TIMESTAMP + snapshot_classic + bin_bytes
    merkle = (TIMESTAMP + SNAPSHOT_HEAD + MERKLE_FIELD + meta_entry_bytes("targets.json")
              + bin_bytes + path_bytes + (path_bytes - INNER))
    # Classic snapshots at their best bin count (a power of two minimizing snapshot + bin).
    best = min(
        TIMESTAMP + SNAPSHOT_HEAD + (b + 2) * meta_entry_bytes("app-0000.json")
        + ENVELOPE + 120 + targets / b * entry
        for b in (1 << k for k in range(1, 21))
    )
    return {
        "classic_best_pull": best,
        "bins": bins,
        "bin_bytes": bin_bytes,
        "classic_pull": classic,
        "merkle_pull": merkle,
        "classic_requests": 4,
        "merkle_requests": 4 + 2 * path_nodes - 1,
        "snapshot_classic": snapshot_classic,
        "storage": bins * bin_bytes,
        "nodes_per_publish": path_nodes,
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--orgs", type=int, default=100_000)
    ap.add_argument("--images", type=int, default=10_000_000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--zipf", type=float, default=1.1, help="exponent of org sizes")
    a = ap.parse_args()
    rng = random.Random(a.seed)
    entry = target_entry_bytes(rng)
    # Organization sizes: Zipf-like weights over ranks, scaled to the image total, each at
    # least one image.
    weights = [1 / (r ** a.zipf) for r in range(1, a.orgs + 1)]
    scale = a.images / sum(weights)
    sizes = [max(1, round(w * scale)) for w in weights]
    cache = {}
    rows = [org_figures(s, entry, rng, cache) for s in sizes]
    total_images = sum(sizes)
    pulls = sizes  # pulls proportional to images
    wsum = sum(pulls)

    def wmean(key):
        return sum(r[key] * p for r, p in zip(rows, pulls)) / wsum

    print(f"organizations {a.orgs:,}, images {total_images:,} (Zipf {a.zipf}), seed {a.seed}")
    print(f"average target entry: {entry:.0f} B")
    print(f"largest org: {sizes[0]:,} images, {rows[0]['bins']:,} bins; "
          f"median org: {sorted(sizes)[len(sizes)//2]:,} images")
    print()
    print("| org images | bins | bin KiB | classic pull KiB (same bins) | classic pull KiB (best bins) | Merkle pull KiB | requests classic / Merkle | classic snapshot KiB | metadata MiB (one version per bin) |")
    print("|---|---|---|---|---|---|---|---|---|")
    for images in (1_000, 10_000, 100_000, 500_000, 1_000_000, 5_000_000):
        r = org_figures(images, entry, rng, cache)
        print(f"| {images:,} | {r['bins']:,} | {r['bin_bytes']/1024:.1f} | {r['classic_pull']/1024:.1f} | "
              f"{r['classic_best_pull']/1024:.1f} | "
              f"{r['merkle_pull']/1024:.1f} | {r['classic_requests']} / {r['merkle_requests']:.0f} | "
              f"{r['snapshot_classic']/1024:.0f} | {r['storage']/2**20:.1f} |")
    print()
    print("Registry-wide, pulls proportional to org size:")
    print(f"- mean metadata per warm pull after the client's bin changed: classic at its best "
          f"bin count {wmean('classic_best_pull')/1024:.1f} KiB, Merkle {wmean('merkle_pull')/1024:.1f} KiB")
    print(f"- mean requests per such pull: classic {wmean('classic_requests'):.1f}, "
          f"Merkle {wmean('merkle_requests'):.1f}")
    print(f"- targets metadata stored (one version of every bin): "
          f"{sum(r['storage'] for r in rows)/2**30:.2f} GiB in {sum(r['bins'] for r in rows):,} bins")
    print(f"- classic snapshot bytes of all orgs (one version each): "
          f"{sum(r['snapshot_classic'] for r in rows)/2**30:.2f} GiB")


if __name__ == "__main__":
    main()
