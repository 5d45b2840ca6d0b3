#!/usr/bin/env python3
"""Print a new private key as unencrypted PKCS#8 PEM (what `openssl genpkey` writes).

Usage: genkey_pem.py rsa|ecdsa|ed25519

The interop tests sign ocituf's repository with keys made by another implementation
(pyca/cryptography, which python-tuf's signers use) read through ocituf's PKCS#8 loader.
Exits 3 when cryptography is not installed.
"""

import sys

try:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
except ImportError as e:  # pragma: no cover - the Rust test reports the install command
    print(f"cryptography is missing ({e}): python3 -m pip install -r tests/interop/requirements.txt",
          file=sys.stderr)
    sys.exit(3)


def main() -> int:
    kind = sys.argv[1]
    if kind == "rsa":
        key = rsa.generate_private_key(public_exponent=65537, key_size=3072)
    elif kind == "ecdsa":
        key = ec.generate_private_key(ec.SECP256R1())
    elif kind == "ed25519":
        key = ed25519.Ed25519PrivateKey.generate()
    else:
        print(f"unknown key type {kind!r}", file=sys.stderr)
        return 2
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    sys.stdout.write(pem.decode())
    return 0


if __name__ == "__main__":
    sys.exit(main())
