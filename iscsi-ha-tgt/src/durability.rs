//! Write durability: how a LUN's backend-neutral [`LunSpec::stable_writes`] and
//! [`LunSpec::volatile_cache_reported`] become tgtd settings, and why the safe default is
//! what it is (our rule 5: acknowledged means on both disks).
//!
//! # What tgt does (v1.0.85, unchanged in v1.0.97)
//!
//! * **The caching mode page.** `sbc_lu_init` (usr/sbc.c) gives every disk LU mode page 8
//!   with byte 2 = `0x14` (WCE | DISC): tgtd reports a volatile write cache by default, and
//!   its changeable mask lets the initiator flip WCE with MODE SELECT
//!   (`sbc_mode_page_update`).
//! * **targets.conf `write-cache off`** is not a tgtd setting: tgt-admin turns it into
//!   `tgtadm --op update --mode logicalunit --params mode_page=8:0:18:0x10:0:0xff:0xff:0:0:`
//!   `0xff:0xff:0xff:0xff:0x80:0x14:0:0:0:0:0:0` (scripts/tgt-admin `add_params`), i.e. the
//!   same page with WCE cleared; `on` sends nothing. tgtd's `add_mode_page` (usr/spc.c)
//!   replaces the page with a freshly zeroed one, so the changeable mask becomes zero too:
//!   afterwards an initiator's MODE SELECT cannot turn the cache back on (checked with
//!   libiscsi: WCE_CHANGEABLE goes from 1 to 0).
//! * **What WCE changes in the rdwr backing store** (usr/bs_rdwr.c `bs_rdwr_request`):
//!   WRITE(6/10/12/16), WRITE AND VERIFY and COMPARE AND WRITE do `pwrite64` into the
//!   backing fd (the page cache, for a file or a block device such as `/dev/drbd1`), then
//!   `fdatasync(fd)` when the CDB has FUA **or** the caching page has WCE clear. SYNCHRONIZE
//!   CACHE does `fdatasync`. WRITE SAME (without UNMAP) writes its blocks with `pwrite64`
//!   and **never** syncs, whatever WCE says. Checked with strace: with WCE=0 every WRITE(16)
//!   is followed by one `fdatasync` in a tgtd worker thread.
//! * **`bsoflags`** (`--bsoflags sync|direct|sync:direct`, body `bsoflags=`) are `open(2)`
//!   flags of the backing fd (usr/util.c `str_to_open_flags`: `sync` = `O_SYNC`, `direct` =
//!   `O_DIRECT`), given only when the LU is created (usr/target.c `tgt_device_create`);
//!   rdwr accepts both, aio none (it always opens `O_DIRECT` and never flushes). They cannot
//!   be changed on a live LU: `bsoflags=` in an update is refused as an invalid request (17).
//!   `O_SYNC` makes every `pwrite64` — WRITE SAME's included — return only once the data is
//!   on stable storage (for a block device: written and the device flushed).
//! * **What tgtd shows.** `show target` prints `Backing store flags: sync` (usr/target.c),
//!   but no mode page: WCE is visible only to an initiator's MODE SENSE.
//!
//! DRBD sees a write only when it reaches `/dev/drbdN`; with protocol C it completes a write
//! (and a flush) once both hosts' disks have it. A write still in the master's page cache is
//! on neither disk.
//!
//! # The mapping
//!
//! | spec | tgtd |
//! | --- | --- |
//! | `stable_writes` | `bsoflags` gains `sync` at LU creation |
//! | `volatile_cache_reported = false` | `mode_page=8:…:0x10:…` (WCE=0) |
//! | `volatile_cache_reported = true` | `mode_page=8:…:0x14:…` (WCE=1, tgt's own default) |
//!
//! The configuration's default (`write_cache = false`) is stable writes **and** WCE=0:
//! `O_SYNC` makes every completed write stable, WRITE SAME included, without relying on the
//! initiator's SYNCHRONIZE CACHE; WCE=0 tells the initiator so (it then need not flush) and,
//! because tgt fsyncs after each WRITE with WCE=0, it also makes ordinary writes stable on a
//! LUN created before `sync` was asked for. The price is two flushes per WRITE (the
//! `O_SYNC` one and tgt's `fdatasync`); measured by `tests/write_cache.rs` (`cargo test -p
//! iscsi-ha-tgt --test write_cache write_throughput -- --nocapture`). On the lab VM (file on
//! ext4, one WRITE(16) at a time, two 3 s runs): 4 KiB writes 1 313–2 586 IOPS against
//! 6 869–11 683 with `write_cache = true`; 64 KiB writes 94–110 MB/s against 301–355 MB/s,
//! i.e. roughly a third to a fifth of the cached speed. Reads (iscsi-perf, which only reads)
//! are not slowed by design (`O_SYNC` affects writes only); the runs measured 85–138 MB/s
//! against 115–142 MB/s, within the VM's noise.
//! `write_cache = true` is tgt's default: page cache, WCE=1.
//!
//! # Converging a running LU
//!
//! * WCE is set in place by a logical-unit update. tgtd applies it between commands, but it
//!   frees and re-allocates the page while its rdwr worker threads may be reading it (a
//!   write racing the update may, rarely, find no caching page and fail with ILLEGAL
//!   REQUEST). Turning WCE **off** is done even with initiators logged in: they keep
//!   flushing as before, now needlessly. Turning it **on** waits until no initiator is
//!   logged in: one that read WCE=0 would never flush, so nothing would make its writes
//!   stable ([`crate::plan::Deferred::VolatileCache`]).
//! * WCE is not shown by tgtd, so the adapter remembers what it set; after adopting a tgtd
//!   it sets WCE=0 again (harmless), and WCE=1 again only with no initiator logged in.
//! * Open flags differ: the LU is deleted and created again when no initiator is logged in
//!   to the target; otherwise it is left alone and reported
//!   ([`crate::plan::Deferred::OpenFlags`]) — deleting it would fail the initiators' I/O.
//!
//! [`LunSpec::stable_writes`]: iscsi_ha_core::target::LunSpec::stable_writes
//! [`LunSpec::volatile_cache_reported`]: iscsi_ha_core::target::LunSpec::volatile_cache_reported

/// The backing store type whose open flags and WCE handling this module describes.
pub const RDWR: &str = "rdwr";

/// The `mode_page=` value for the caching page (page 8, 18 bytes) with WCE set or clear; the
/// other bytes are tgtd's own defaults (usr/sbc.c), so only WCE changes.
pub fn caching_mode_page(volatile_cache: bool) -> String {
    let byte2 = if volatile_cache { "0x14" } else { "0x10" };
    format!("8:0:18:{byte2}:0:0xff:0xff:0:0:0xff:0xff:0xff:0xff:0x80:0x14:0:0:0:0:0:0")
}

/// The open flags a LU is created with: the configured defaults plus `sync` for stable
/// writes, in tgtd's printed form (`sync`, `direct`, `sync:direct`); `None` for none.
pub fn open_flags(defaults: Option<&str>, stable_writes: bool) -> Option<String> {
    let mut sync = stable_writes;
    let mut direct = false;
    for flag in defaults.unwrap_or_default().split(':').map(str::trim) {
        match flag {
            "sync" => sync = true,
            "direct" => direct = true,
            _ => {}
        }
    }
    match (sync, direct) {
        (true, true) => Some("sync:direct".to_string()),
        (true, false) => Some("sync".to_string()),
        (false, true) => Some("direct".to_string()),
        (false, false) => None,
    }
}

/// Whether open flags as tgtd shows them make every completed write stable (`sync`).
pub fn flags_make_writes_stable(shown: &str) -> bool {
    shown.split(':').any(|f| f.trim() == "sync")
}

/// Whether two open-flag texts (as configured or as tgtd shows them) mean the same flags.
pub fn same_flags(a: Option<&str>, b: Option<&str>) -> bool {
    open_flags(a, false) == open_flags(b, false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caching_page_differs_only_in_wce() {
        let on = caching_mode_page(true);
        let off = caching_mode_page(false);
        assert_eq!(on.split(':').count(), 21);
        let diff: Vec<usize> = on
            .split(':')
            .zip(off.split(':'))
            .enumerate()
            .filter(|(_, (a, b))| a != b)
            .map(|(i, _)| i)
            .collect();
        assert_eq!(diff, vec![3]);
        // tgt-admin's `write-cache off`, byte for byte.
        assert_eq!(
            off,
            "8:0:18:0x10:0:0xff:0xff:0:0:0xff:0xff:0xff:0xff:0x80:0x14:0:0:0:0:0:0"
        );
    }

    #[test]
    fn flags_in_tgtds_form() {
        assert_eq!(open_flags(None, true).as_deref(), Some("sync"));
        assert_eq!(open_flags(None, false), None);
        assert_eq!(
            open_flags(Some("direct"), true).as_deref(),
            Some("sync:direct")
        );
        assert_eq!(open_flags(Some("sync"), false).as_deref(), Some("sync"));
        assert!(flags_make_writes_stable("sync:direct"));
        assert!(!flags_make_writes_stable(""));
        assert!(!flags_make_writes_stable("direct"));
        assert!(same_flags(Some(""), None));
        assert!(same_flags(Some("direct:sync"), Some("sync:direct")));
        assert!(!same_flags(Some("sync"), None));
    }
}
