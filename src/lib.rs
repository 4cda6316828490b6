//! bedrock-sessions: the Amazon Bedrock Session Management model (sessions → invocations → invocation
//! steps), an embedded store with the service's rules, and the Python bindings (`bedrock_sessions._core`).
//!
//! The core modules carry no pyo3 types and are tested with `cargo test`; the bindings live in
//! [`python`], compiled with the `python` feature (maturin turns it on).

pub mod aws;
pub mod clock;
pub mod crypto;
pub mod error;
pub mod ids;
pub mod llama;
pub mod model;
pub mod observe;
pub mod ops;
pub mod saver;
pub mod server;
pub mod store;
pub mod threads;
pub mod timefmt;
pub mod token;
pub mod validate;
pub mod value;

#[cfg(feature = "python")]
mod python;
