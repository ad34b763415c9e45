//! Our requests are byte for byte what the real `tgtadm` sends for the same operation.
//!
//! tgtadm honours `TGT_IPC_SOCKET`, so each case points it at a socket in a temp dir, records
//! what it writes, answers "success", and compares with `Request::encode`. tgtadm is the
//! witness here; no tgtd is involved.

use std::io::{Read, Write};
use std::os::unix::net::UnixListener;
use std::path::Path;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use iscsi_ha_tgt::guard::GuardError;
use iscsi_ha_tgt::ops::{LunBacking, LunSettings, State};
use iscsi_ha_tgt::wire::{AccountDirection, Request};

const IQN: &str = "iqn.2024-01.com.example:disk1";
const INI: &str = "iqn.2024-01.com.example:init1";

/// What tgtadm writes for `args`.
fn capture(args: &[&str]) -> Vec<u8> {
    assert!(
        Path::new("/usr/sbin/tgtadm").exists(),
        "tgtadm is missing: install Debian's `tgt` (scripts/packages.d/tgt.txt)"
    );
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let base = dir.path().join("socket");
    let listener =
        UnixListener::bind(dir.path().join("socket.0")).unwrap_or_else(|e| panic!("bind: {e}"));
    let server = thread::spawn(move || -> Vec<u8> {
        let (mut s, _) = listener.accept().unwrap_or_else(|e| panic!("accept: {e}"));
        let mut bytes = vec![0_u8; 120];
        s.read_exact(&mut bytes)
            .unwrap_or_else(|e| panic!("header: {e}"));
        let len = u32::from_ne_bytes([bytes[72], bytes[73], bytes[74], bytes[75]]);
        let mut body = vec![0_u8; usize::try_from(len).unwrap_or(120).saturating_sub(120)];
        s.read_exact(&mut body)
            .unwrap_or_else(|e| panic!("body: {e}"));
        bytes.extend_from_slice(&body);
        s.write_all(&[0, 0, 0, 0, 8, 0, 0, 0])
            .unwrap_or_else(|e| panic!("reply: {e}"));
        // Dropping the listener makes tgtadm's reconnect loop after `system delete` end.
        bytes
    });
    let mut child = Command::new("/usr/sbin/tgtadm")
        .args(args)
        .env("TGT_IPC_SOCKET", &base)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("tgtadm: {e}"));
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(20) {
        if let Ok(Some(_)) = child.try_wait() {
            break;
        }
        thread::sleep(Duration::from_millis(10));
    }
    let _ = child.kill();
    let out = child.wait_with_output().unwrap_or_else(|e| panic!("{e}"));
    assert!(
        out.status.success(),
        "tgtadm {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    server.join().unwrap_or_else(|_| panic!("capture thread"))
}

fn same(args: &[&str], ours: Result<Request, GuardError>) {
    let ours = ours.unwrap_or_else(|e| panic!("{e}"));
    let theirs = capture(args);
    assert_eq!(
        ours.encode(),
        theirs,
        "tgtadm {args:?} sent {:?}",
        Request::decode(&theirs)
    );
}

fn iscsi(args: &[&str]) -> Vec<String> {
    let mut v = vec!["--lld".to_string(), "iscsi".to_string()];
    v.extend(args.iter().map(|s| s.to_string()));
    v
}

fn same_iscsi(args: &[&str], ours: Result<Request, GuardError>) {
    let full = iscsi(args);
    let refs: Vec<&str> = full.iter().map(String::as_str).collect();
    same(&refs, ours);
}

#[test]
fn target_requests_match_tgtadm() {
    same_iscsi(
        &["--op", "new", "--mode", "target", "--tid", "1", "-T", IQN],
        Request::target_new(1, IQN),
    );
    same_iscsi(
        &["--op", "delete", "--mode", "target", "--tid", "1"],
        Request::target_delete(1, false),
    );
    same_iscsi(
        &[
            "--op", "delete", "--force", "--mode", "target", "--tid", "1",
        ],
        Request::target_delete(1, true),
    );
    same_iscsi(
        &["--op", "show", "--mode", "target"],
        Ok(Request::targets_show()),
    );
    same_iscsi(
        &["--op", "show", "--mode", "target", "--tid", "2"],
        Request::target_params_show(2),
    );
    same_iscsi(
        &[
            "--op", "update", "--mode", "target", "--tid", "1", "-n", "state", "-v", "offline",
        ],
        Request::target_set_state(1, State::Offline),
    );
    same_iscsi(
        &[
            "--op",
            "update",
            "--mode",
            "target",
            "--tid",
            "1",
            "-n",
            "MaxRecvDataSegmentLength",
            "-v",
            "65536",
        ],
        Request::target_update(1, "MaxRecvDataSegmentLength", "65536"),
    );
}

#[test]
fn logical_unit_requests_match_tgtadm() {
    same_iscsi(
        &[
            "--op",
            "new",
            "--mode",
            "logicalunit",
            "--tid",
            "1",
            "--lun",
            "1",
            "-b",
            "/p",
            "--bstype",
            "rdwr",
        ],
        Request::lun_new(1, 1, &LunBacking::rdwr("/p")),
    );
    same_iscsi(
        &[
            "--op",
            "new",
            "--mode",
            "logicalunit",
            "--tid",
            "1",
            "--lun",
            "2",
            "-b",
            "/q",
            "--bstype",
            "rdwr",
            "--bsoflags",
            "sync",
            "--blocksize",
            "4096",
        ],
        Request::lun_new(
            1,
            2,
            &LunBacking {
                path: "/q".into(),
                bstype: "rdwr".into(),
                block_size: Some(4096),
                bsoflags: Some("sync".into()),
            },
        ),
    );
    same_iscsi(
        &[
            "--op",
            "delete",
            "--mode",
            "logicalunit",
            "--tid",
            "1",
            "--lun",
            "1",
        ],
        Request::lun_delete(1, 1),
    );
    same_iscsi(
        &[
            "--op",
            "update",
            "--mode",
            "logicalunit",
            "--tid",
            "2",
            "--lun",
            "1",
            "--params",
            "scsi_id=id-1,scsi_sn=SN1,vendor_id=ACME,product_id=Widget,readonly=1,\
             mode_page=8:0:18:0x10:0:0xff:0xff:0:0:0xff:0xff:0xff:0xff:0x80:0x14:0:0:0:0:0:0",
        ],
        Request::lun_update(
            2,
            1,
            &LunSettings {
                scsi_id: Some("id-1".into()),
                scsi_sn: Some("SN1".into()),
                vendor_id: Some("ACME".into()),
                product_id: Some("Widget".into()),
                readonly: Some(true),
                write_cache: Some(false),
            },
        ),
    );
}

#[test]
fn acl_requests_match_tgtadm() {
    same_iscsi(
        &[
            "--op", "bind", "--mode", "target", "--tid", "1", "-I", "ALL",
        ],
        Request::acl_bind_all(1),
    );
    same_iscsi(
        &[
            "--op",
            "bind",
            "--mode",
            "target",
            "--tid",
            "1",
            "-I",
            "10.0.0.0/24",
        ],
        Request::acl_bind_address(1, "10.0.0.0/24"),
    );
    same_iscsi(
        &[
            "--op",
            "unbind",
            "--mode",
            "target",
            "--tid",
            "1",
            "-I",
            "10.0.0.0/24",
        ],
        Request::acl_unbind_address(1, "10.0.0.0/24"),
    );
    same_iscsi(
        &["--op", "bind", "--mode", "target", "--tid", "1", "-Q", INI],
        Request::acl_bind_name(1, INI),
    );
    same_iscsi(
        &[
            "--op", "unbind", "--mode", "target", "--tid", "1", "-Q", INI,
        ],
        Request::acl_unbind_name(1, INI),
    );
}

#[test]
fn account_and_connection_requests_match_tgtadm() {
    same_iscsi(
        &[
            "--mode",
            "account",
            "--op",
            "new",
            "--user",
            "alice",
            "--password",
            "pw12",
        ],
        Request::account_new("alice", "pw12"),
    );
    same_iscsi(
        &["--mode", "account", "--op", "delete", "--user", "alice"],
        Request::account_delete("alice"),
    );
    same_iscsi(
        &[
            "--mode", "account", "--op", "bind", "--tid", "1", "--user", "alice",
        ],
        Request::account_bind(1, "alice", AccountDirection::Incoming),
    );
    same_iscsi(
        &[
            "--mode",
            "account",
            "--op",
            "bind",
            "--tid",
            "1",
            "--user",
            "out",
            "--outgoing",
        ],
        Request::account_bind(1, "out", AccountDirection::Outgoing),
    );
    same_iscsi(
        &[
            "--mode", "account", "--op", "unbind", "--tid", "1", "--user", "alice",
        ],
        Request::account_unbind(1, "alice", AccountDirection::Incoming),
    );
    same_iscsi(
        &["--mode", "account", "--op", "show"],
        Ok(Request::accounts_show()),
    );
    same_iscsi(
        &["--op", "show", "--mode", "conn", "--tid", "1"],
        Request::connections_show(1),
    );
    same_iscsi(
        &[
            "--op", "delete", "--mode", "conn", "--tid", "1", "--sid", "8", "--cid", "0",
        ],
        Request::connection_delete(1, 8, 0),
    );
}

#[test]
fn system_requests_match_tgtadm() {
    same(
        &["--op", "show", "--mode", "system"],
        Ok(Request::system_show()),
    );
    same(
        &[
            "--op", "update", "--mode", "sys", "--name", "State", "-v", "offline",
        ],
        Request::system_set_state(State::Offline),
    );
    same(
        &["--op", "delete", "--mode", "system"],
        Ok(Request::system_delete()),
    );
}
