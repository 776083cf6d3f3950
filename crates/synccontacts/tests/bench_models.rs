//! Runs the unit tests of the benchmark's pure models (`benches/sync/model.rs`, `shape.rs`): a
//! `harness = false` bench target cannot run its own `#[test]`s, so they are compiled here too.

#[path = "../benches/sync/model.rs"]
mod model;
#[path = "../benches/sync/shape.rs"]
mod shape;
