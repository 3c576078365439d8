//! Test support shared by the integration tests and `examples/fake-waldur.rs`.
//!
//! Each test crate uses a different part of it, hence `dead_code` is allowed here.
#![allow(dead_code, unused_imports)]

pub mod fake_waldur;
pub mod openapi;
pub mod pattern;
pub mod prometheus;
pub mod rng;
pub mod scratch;
pub mod text;
