//! tgt adapter for iscsi-ha.
//!
//! Will hold the `IscsiTarget` port implementation that speaks tgtd's management protocol over its
//! UNIX socket (the bytes `tgtadm` sends), with parsers for its `show` replies. No `tgtadm` process.
