//! Helpers shared by the integration tests: reading the vector files,
//! (`process`) tests of process-wide state, and (`fork`) fork tests.
#![allow(dead_code)]

pub mod fork;
pub mod process;

use serde_json::Value;
use std::path::PathBuf;

/// Parses `tests/vectors/<name>`.
pub fn vectors(name: &str) -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/vectors").join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).expect("valid JSON")
}

/// Decodes a hex field.
pub fn hex(v: &Value) -> Vec<u8> {
    hex::decode(v.as_str().expect("hex string")).expect("valid hex")
}

/// A string field.
pub fn s(v: &Value) -> &str {
    v.as_str().expect("string")
}
