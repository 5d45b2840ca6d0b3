#!/usr/bin/env python3
"""Write a TUF repository with python-tuf, for the ocituf interop tests.

Usage: make_python_repo.py OUT_DIR

Writes, in the standard layout with consistent snapshots:
  OUT_DIR/metadata/   1.root.json, 2.root.json, timestamp.json, N.ROLE.json for every other role
  OUT_DIR/targets/    DIR/SHA256.NAME for every target
  OUT_DIR/initial_root.json   the trust anchor (a copy of 1.root.json)
  OUT_DIR/expected.json       {"target path": "sha256 of its content", ...}

The repository exercises every key type and the delegation shapes ocituf must verify:
  root        v1: ed25519 + ecdsa, threshold 2; v2 rotates the ecdsa key to rsa (signed by
              the keys of v1 and v2, TUF 5.3.4)
  timestamp   ed25519;  snapshot: ecdsa;  targets: rsa (RSASSA-PSS)
  targets     delegates "team" (rsa, paths team/*) and "hashed" (ed25519, paths bins/*)
  hashed      delegates to 16 succinct hash bins (TAP 15, "bin-0".."bin-f", ecdsa)
Keys are fresh on every run; expiry is one year from now.
"""

import json
import os
import sys
from datetime import datetime, timedelta, timezone
from hashlib import sha256
from urllib.parse import quote

try:
    from securesystemslib.signer import CryptoSigner
    from tuf.api.metadata import (
        DelegatedRole,
        Delegations,
        Metadata,
        MetaFile,
        Root,
        Snapshot,
        SuccinctRoles,
        TargetFile,
        Targets,
        Timestamp,
    )
    from tuf.api.serialization.json import JSONSerializer
except ImportError as e:  # pragma: no cover - the Rust test reports the install command
    print(f"python-tuf is missing ({e}): python3 -m pip install -r tests/interop/requirements.txt",
          file=sys.stderr)
    sys.exit(3)

SERIALIZER = JSONSerializer(compact=False)


def main() -> int:
    out = sys.argv[1]
    md_dir = os.path.join(out, "metadata")
    tg_dir = os.path.join(out, "targets")
    os.makedirs(md_dir, exist_ok=True)
    os.makedirs(tg_dir, exist_ok=True)
    expires = datetime.now(timezone.utc).replace(microsecond=0) + timedelta(days=365)

    root_ed = CryptoSigner.generate_ed25519()
    root_ec = CryptoSigner.generate_ecdsa()
    root_rsa = CryptoSigner.generate_rsa()
    ts = CryptoSigner.generate_ed25519()
    sn = CryptoSigner.generate_ecdsa()
    tg = CryptoSigner.generate_rsa()
    team = CryptoSigner.generate_rsa()
    hashed = CryptoSigner.generate_ed25519()
    bins = CryptoSigner.generate_ecdsa()

    def write(md: Metadata, name: str) -> None:
        with open(os.path.join(md_dir, name), "wb") as f:
            f.write(md.to_bytes(SERIALIZER))

    # root v1
    root = Root(expires=expires, consistent_snapshot=True)
    root.add_key(root_ed.public_key, "root")
    root.add_key(root_ec.public_key, "root")
    root.roles["root"].threshold = 2
    root.add_key(ts.public_key, "timestamp")
    root.add_key(sn.public_key, "snapshot")
    root.add_key(tg.public_key, "targets")
    root_md = Metadata(root)
    root_md.sign(root_ed, append=True)
    root_md.sign(root_ec, append=True)
    write(root_md, "1.root.json")
    with open(os.path.join(out, "initial_root.json"), "wb") as f:
        f.write(root_md.to_bytes(SERIALIZER))

    # root v2: ecdsa root key replaced by rsa; signed by v1's and v2's thresholds.
    root.revoke_key(root_ec.public_key.keyid, "root")
    root.add_key(root_rsa.public_key, "root")
    root.version = 2
    root_md = Metadata(root)
    for s in (root_ed, root_ec, root_rsa):
        root_md.sign(s, append=True)
    write(root_md, "2.root.json")

    expected = {}

    def add_target(role: Targets, path: str, data: bytes) -> None:
        tf = TargetFile.from_data(path, data, ["sha256", "sha512"])
        role.targets[path] = tf
        dirname, sep, base = path.rpartition("/")
        dest = os.path.join(tg_dir, f"{dirname}{sep}{tf.hashes['sha256']}.{base}")
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        with open(dest, "wb") as f:
            f.write(data)
        expected[path] = sha256(data).hexdigest()

    # top-level targets
    targets = Targets(expires=expires)
    add_target(targets, "top.txt", b"top-level target from python-tuf\n")
    targets.delegations = Delegations(
        keys={team.public_key.keyid: team.public_key, hashed.public_key.keyid: hashed.public_key},
        roles={
            "team": DelegatedRole("team", [team.public_key.keyid], 1, False, paths=["team/*"]),
            "hashed": DelegatedRole("hashed", [hashed.public_key.keyid], 1, True, paths=["bins/*"]),
        },
    )

    team_t = Targets(expires=expires)
    add_target(team_t, "team/app.bin", bytes(range(256)))

    hashed_t = Targets(expires=expires)
    succinct = SuccinctRoles([bins.public_key.keyid], 1, 4, "bin")
    hashed_t.delegations = Delegations(
        keys={bins.public_key.keyid: bins.public_key}, roles=None, succinct_roles=succinct
    )
    bin_roles = {name: Targets(expires=expires) for name in succinct.get_roles()}
    for i in range(24):
        path = f"bins/file-{i}.txt"
        add_target(bin_roles[succinct.get_role_for_target(path)], path, f"binned {i}\n".encode())

    snapshot = Snapshot(expires=expires)
    signed_roles = [("targets", targets, tg), ("team", team_t, team), ("hashed", hashed_t, hashed)]
    signed_roles += [(name, t, bins) for name, t in bin_roles.items()]
    for name, signed, signer in signed_roles:
        md = Metadata(signed)
        md.sign(signer)
        write(md, f"{signed.version}.{quote(name, '')}.json")
        snapshot.meta[f"{name}.json"] = MetaFile(signed.version)

    snap_md = Metadata(snapshot)
    snap_md.sign(sn)
    snap_bytes = snap_md.to_bytes(SERIALIZER)
    with open(os.path.join(md_dir, f"{snapshot.version}.snapshot.json"), "wb") as f:
        f.write(snap_bytes)

    timestamp = Timestamp(expires=expires)
    timestamp.snapshot_meta = MetaFile(
        snapshot.version, len(snap_bytes), {"sha256": sha256(snap_bytes).hexdigest()}
    )
    ts_md = Metadata(timestamp)
    ts_md.sign(ts)
    write(ts_md, "timestamp.json")

    with open(os.path.join(out, "expected.json"), "w") as f:
        json.dump(expected, f, indent=1, sort_keys=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
