#!/usr/bin/env python3
"""Verify a TUF repository served over HTTP with python-tuf's ngclient.

Usage: verify_with_ngclient.py ROOT_FILE METADATA_URL TARGETS_URL TARGET_PATH...

Trusts ROOT_FILE, refreshes, then looks up and downloads every TARGET_PATH (each verified
by ngclient against its signed length and hashes). Prints one line per target,
"ok PATH SHA256", and exits 0; on any failure prints "refused: ERROR" and exits 1.
Exits 3 when python-tuf is not installed.
"""

import os
import shutil
import sys
import tempfile
from hashlib import sha256

try:
    from tuf.ngclient import Updater
except ImportError as e:  # pragma: no cover - the Rust test reports the install command
    print(f"python-tuf is missing ({e}): python3 -m pip install -r tests/interop/requirements.txt",
          file=sys.stderr)
    sys.exit(3)


def main() -> int:
    root_file, metadata_url, targets_url, *paths = sys.argv[1:]
    with tempfile.TemporaryDirectory() as work:
        md_dir = os.path.join(work, "metadata")
        tg_dir = os.path.join(work, "targets")
        os.mkdir(md_dir)
        os.mkdir(tg_dir)
        with open(root_file, "rb") as f:
            root = f.read()
        try:
            updater = Updater(md_dir, metadata_url, tg_dir, targets_url, bootstrap=root)
            updater.refresh()
            for path in paths:
                info = updater.get_targetinfo(path)
                if info is None:
                    raise LookupError(f"target {path!r} is not in the repository")
                local = updater.download_target(info)
                with open(local, "rb") as f:
                    print(f"ok {path} {sha256(f.read()).hexdigest()}")
        except Exception as e:  # noqa: BLE001 - every failure is a refusal for the caller
            print(f"refused: {type(e).__name__}: {e}")
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
