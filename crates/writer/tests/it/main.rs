//! The write path end to end: roots of trust written with `ocituf-writer` on an OCI layout
//! and on the real distribution 2.8 registry (testkit, 127.0.0.1), read back by the client
//! (`ocituf-resolver`), under every delegation shape and every name form.

mod fixture;
mod generate;
mod matrix;
mod placement;
mod props;
mod races;
mod sign_cost;
