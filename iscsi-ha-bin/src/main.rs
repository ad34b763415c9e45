//! `iscsi-ha`: the daemon and its commands.

fn main() {}
