//! The committed DRBD genl fixtures (fixtures/drbd/genl/) are complete and consistent: every
//! scenario has its pcap, nlhex and txt; each nlhex is exactly what the pcap renders to; the
//! facts the DRBD adapter relies on are in them. Runs in the plain `cargo test` (no VM).

use std::path::PathBuf;

use iscsi_ha_lab::capture::{drbd_family_id, parse_pcap, render_nlhex, SCENARIOS};

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fixtures/drbd/genl")
}

/// The data lines of an nlhex file: (record index, message bytes).
fn messages(nlhex: &str) -> Vec<(usize, Vec<u8>)> {
    nlhex
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| {
            let (idx, hex) = l.split_once(' ').expect("index and hex");
            let bytes = (0..hex.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex"))
                .collect();
            (idx.parse().expect("index"), bytes)
        })
        .collect()
}

fn drbd_messages(nlhex: &str, family: u16) -> Vec<Vec<u8>> {
    messages(nlhex)
        .into_iter()
        .map(|(_, m)| m)
        .filter(|m| u16::from_le_bytes([m[4], m[5]]) == family)
        .collect()
}

/// (genl cmd, flags/ret_code) of a drbd message.
fn cmd_and_ret(m: &[u8]) -> (u8, i32) {
    (m[16], i32::from_le_bytes([m[24], m[25], m[26], m[27]]))
}

#[test]
fn every_scenario_is_there_and_its_nlhex_matches_its_pcap() {
    for s in SCENARIOS {
        let pcap = std::fs::read(dir().join(format!("{}.pcap", s.name))).expect(s.name);
        let nlhex = std::fs::read_to_string(dir().join(format!("{}.nlhex", s.name))).expect(s.name);
        let txt = std::fs::read_to_string(dir().join(format!("{}.txt", s.name))).expect(s.name);
        assert!(txt.contains("[exit status"), "{}: {txt}", s.name);
        let packets = parse_pcap(&pcap).expect(s.name);
        let family = drbd_family_id(&packets).expect("the capture resolves the drbd family");
        let title = nlhex.lines().next().unwrap().trim_start_matches("# ");
        assert_eq!(render_nlhex(title, &packets, family), nlhex, "{}", s.name);
        assert!(!drbd_messages(&nlhex, family).is_empty(), "{}", s.name);
    }
}

#[test]
fn role_changes_and_the_refusal_carry_their_return_codes() {
    let read = |name: &str| std::fs::read_to_string(dir().join(format!("{name}.nlhex"))).unwrap();
    let family = 32;
    // PRIMARY (14) succeeds with SS_SUCCESS (1); the refused one gets SS_TWO_PRIMARIES (-1).
    let replies = |name: &str, cmd: u8| -> Vec<i32> {
        drbd_messages(&read(name), family)
            .iter()
            .filter(|m| m[6] & 1 == 0)
            .map(|m| cmd_and_ret(m))
            .filter(|(c, _)| *c == cmd)
            .map(|(_, r)| r)
            .collect()
    };
    assert_eq!(replies("primary", 14), [1]);
    assert_eq!(replies("primary-refused", 14), [-1]);
    assert_eq!(replies("secondary", 15), [1]);
    // The events captures hold DRBD_EVENT (1) broadcasts from the kernel (pid 0).
    for name in ["events-role-change", "events-connect", "events-resync"] {
        let events = drbd_messages(&read(name), family)
            .into_iter()
            .filter(|m| m[16] == 1 && m[12..16] == [0, 0, 0, 0])
            .count();
        assert!(events >= 2, "{name}: {events} DRBD_EVENT broadcasts");
    }
}
