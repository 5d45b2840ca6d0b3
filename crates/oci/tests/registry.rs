//! Integration tests of the registry store against real registries started on 127.0.0.1,
//! and an in-process `hostile_fake_registry` for misbehaviour no real registry shows.

#[path = "registry/auth.rs"]
mod auth;
#[path = "registry/concurrency.rs"]
mod concurrency;
#[path = "registry/costs.rs"]
mod costs;
#[path = "registry/distribution.rs"]
mod distribution;
#[path = "registry/harness.rs"]
mod harness;
#[path = "registry/hostile.rs"]
mod hostile;
#[path = "registry/http.rs"]
mod http;
#[path = "registry/native.rs"]
mod native;
#[path = "registry/oras.rs"]
mod oras;
