//! The `herald` binary (being written).
fn main() {}
