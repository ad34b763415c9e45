//! Each guard tgtd lacks, against a real tgtd: a clear error, and tgtd untouched (same
//! `tgtadm` view before and after, still answering).

mod common;

use common::{run, spec, text, Bench, STRANGER};
use iscsi_ha_core::ports::{IscsiTarget, TargetError};
use iscsi_ha_tgt::daemon::ManagedTgtd;
use iscsi_ha_tgt::ops::{LunBacking, LunSettings, Tgt};
use iscsi_ha_tgt::wire::{Body, Mode, Op, Request};
use iscsi_ha_tgt::{GuardError, TgtError};

const NAME: &str = "iqn.2024-01.com.example:guarded";

/// A tgtd holding one target (tid 1) with one LUN, and its tgtadm view.
struct World {
    bench: Bench,
    _tgtd: ManagedTgtd,
    tgt: Tgt,
    before: String,
}

impl World {
    fn new() -> Self {
        let bench = Bench::new();
        let tgtd = bench.start_tgtd();
        let tgt = bench.tgt();
        tgt.target_new(1, NAME).unwrap_or_else(|e| panic!("{e}"));
        let disk = bench.disk("g.img", 16);
        tgt.lun_new(1, 1, &LunBacking::rdwr(disk))
            .unwrap_or_else(|e| panic!("{e}"));
        let before = bench.tgtadm_show();
        Self {
            bench,
            _tgtd: tgtd,
            tgt,
            before,
        }
    }

    /// The refusal is the expected guard, and tgtd is as it was.
    fn refused(&self, result: Result<(), TgtError>, expected: impl Fn(&GuardError) -> bool) {
        match &result {
            Err(TgtError::Guard(g)) if expected(g) => {
                let message = g.to_string();
                assert!(message.contains("refused"), "unclear message: {message}");
            }
            other => panic!("expected a guard error, got {other:?}"),
        }
        self.untouched();
    }

    fn untouched(&self) {
        assert!(self.tgt.system_show().is_ok(), "tgtd stopped answering");
        assert_eq!(self.bench.tgtadm_show(), self.before, "tgtd was changed");
    }
}

#[test]
fn a_target_always_gets_a_name() {
    let w = World::new();
    w.refused(w.tgt.target_new(2, ""), |g| {
        matches!(g, GuardError::TargetName { .. })
    });
    w.refused(w.tgt.target_new(2, "iqn.2024-01.com.example:a b"), |g| {
        matches!(g, GuardError::TargetName { .. })
    });
    // Built by hand the way that crashes tgtd 1.0.85 (`foo=bar`, no targetname=).
    let mut raw = Request::new(Mode::Target, Op::New);
    raw.tid = 2;
    raw.body = Body::raw("foo=bar".into()).ok();
    w.refused(w.bench.client().send(&raw).map(drop), |g| {
        matches!(g, GuardError::TargetName { .. })
    });
}

#[test]
fn target_ids_start_at_one() {
    let w = World::new();
    w.refused(w.tgt.target_new(0, "iqn.2024-01.com.example:zero"), |g| {
        *g == GuardError::Tid(0)
    });
    w.refused(w.tgt.target_delete(0, true), |g| *g == GuardError::Tid(0));
}

#[test]
fn luns_start_at_one() {
    let w = World::new();
    let disk = w.bench.disk("l0.img", 1);
    w.refused(w.tgt.lun_new(1, 0, &LunBacking::rdwr(disk)), |g| {
        *g == GuardError::Lun(0)
    });
    w.refused(w.tgt.lun_delete(1, 0), |g| *g == GuardError::Lun(0));
    w.refused(
        w.tgt.lun_update(
            1,
            0,
            &LunSettings {
                readonly: Some(true),
                ..LunSettings::default()
            },
        ),
        |g| *g == GuardError::Lun(0),
    );
}

#[test]
fn acl_ranges_are_normalised_so_tgtd_matches_them() {
    let w = World::new();
    // tgtd never matches 127.0.0.1/8; sent as 127.0.0.0/8 it does.
    w.tgt
        .acl_bind_address(1, "127.0.0.1/8")
        .unwrap_or_else(|e| panic!("{e}"));
    let show = w.bench.tgtadm_show();
    assert!(show.contains("        127.0.0.0/8\n"), "{show}");
    assert!(!show.contains("127.0.0.1/8"), "{show}");
    let inq = run("iscsi-inq", &["-i", STRANGER, &w.bench.url(NAME, 1, None)]);
    assert!(inq.status.success(), "{}", text(&inq));
    // /0 is refused (tgtd's IPv4 mask for it is undefined).
    let before = w.bench.tgtadm_show();
    let r = w.tgt.acl_bind_address(1, "0.0.0.0/0");
    assert!(
        matches!(r, Err(TgtError::Guard(GuardError::Address { .. }))),
        "{r:?}"
    );
    assert_eq!(w.bench.tgtadm_show(), before);
}

#[test]
fn one_acl_per_request() {
    let w = World::new();
    w.refused(w.tgt.acl_bind_address(1, "10.0.0.0/8,ALL"), |g| {
        matches!(g, GuardError::Address { .. })
    });
    let mut raw = Request::new(Mode::Target, Op::Bind);
    raw.tid = 1;
    raw.body = Body::raw("initiator-address=10.0.0.0/8,initiator-address=ALL".into()).ok();
    w.refused(w.bench.client().send(&raw).map(drop), |g| {
        matches!(g, GuardError::Address { .. })
    });
}

#[test]
fn all_only_when_asked_for() {
    let w = World::new();
    w.refused(w.tgt.acl_bind_address(1, "ALL"), |g| {
        *g == GuardError::AllNotExplicit
    });
    w.refused(w.tgt.acl_bind_address(1, " all "), |g| {
        *g == GuardError::AllNotExplicit
    });
}

#[test]
fn a_bind_always_has_a_body() {
    let w = World::new();
    for op in [Op::Bind, Op::Unbind] {
        let mut raw = Request::new(Mode::Target, op);
        raw.tid = 1;
        w.refused(w.bench.client().send(&raw).map(drop), |g| {
            matches!(g, GuardError::BindWithoutBody { .. })
        });
    }
}

#[test]
fn values_tgtd_would_split_or_truncate() {
    let w = World::new();
    let disk = w.bench.disk("x.img", 1);
    w.refused(
        w.tgt.lun_new(1, 2, &LunBacking::rdwr(format!("{disk},x"))),
        |g| matches!(g, GuardError::Path { .. }),
    );
    w.refused(
        w.tgt.lun_update(
            1,
            1,
            &LunSettings {
                vendor_id: Some("TOOLONGVENDOR".into()),
                ..LunSettings::default()
            },
        ),
        |g| matches!(g, GuardError::Identity { .. }),
    );
    w.refused(w.tgt.account_new("al,ice", "secretpass12"), |g| {
        matches!(g, GuardError::User { .. })
    });
    // A body over tgtd's 8192 bytes would be dropped without a reply.
    let big = "x".repeat(9000);
    w.refused(w.tgt.target_update(1, "nop_interval", &big), |g| {
        matches!(g, GuardError::Wire(_))
    });
}

#[test]
fn a_bad_spec_is_refused_whole_before_anything_is_sent() {
    let w = World::new();
    let mut config = iscsi_ha_tgt::TgtConfig::adopt(w.bench.control_port);
    config.request_timeout = std::time::Duration::from_secs(20);
    let mut target = iscsi_ha_tgt::TgtTarget::new(config);
    let good = w.bench.disk("ok.img", 1);
    let mut bad = spec("bad", &[good, "/tmp/a,b.img".to_string()]);
    bad.access.incoming = vec![common::chap("carol", "secretpass12")];
    let err = target.serve(&bad);
    assert!(matches!(err, Err(TargetError::Invalid(_))), "{err:?}");
    w.untouched();
    assert!(w
        .tgt
        .accounts()
        .unwrap_or_else(|e| panic!("{e}"))
        .is_empty());
}
