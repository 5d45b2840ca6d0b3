//! Image reference to verified digest: the trust policy, and resolve/verify over a root of trust.
