//! The online signer against the real test registries: many publishers at once, each image
//! signed with ocituf-writer and submitted to the signer, verified at the end by the
//! resolver as a client would; and the leases of several replicas on a real PostgreSQL.

mod fates;
mod fixture;
mod leases;
mod publishers;
mod retention;
