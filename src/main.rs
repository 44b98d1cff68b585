//! The `creditd` command line.
fn main() {}
