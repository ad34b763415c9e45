//! The history checker: a pure function from what the run recorded to the counts of the
//! summary line and the list of violations. Fed crafted histories by its tests, one per
//! violation, so that a checker that stops checking fails them.

use std::collections::HashSet;
use std::time::Duration;

use crate::writer::{Block, Op, ReadCheck};

/// One round of the ARP monitor: the nodes whose MAC answered a request for the VIP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArpRound {
    /// When the request went out (run time).
    pub at: Duration,
    /// The nodes that answered (each once).
    pub answered: Vec<u8>,
}

/// One look at a node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeSample {
    /// When the look began (run time).
    pub at: Duration,
    /// Node 1 or 2.
    pub node: u8,
    /// DRBD role Primary (the first resource).
    pub primary: bool,
    /// The VIP is assigned there.
    pub vip: bool,
    /// tgtd exports a target there.
    pub target: bool,
}

/// A side whose data the run discarded because `iscsi-cfg split-brain` advised it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Discard {
    /// The node whose data was discarded.
    pub node: u8,
    /// From when its acknowledged writes are lost (the takeover by the other side).
    pub since: Duration,
    /// The advice, as the tool gave it.
    pub advice: String,
}

/// What happened to one fault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FaultRecord {
    /// What it was.
    pub what: String,
    /// When it began (run time).
    pub at: Duration,
    /// When the run last saw it in effect or being recovered from: two Primaries are allowed
    /// until then for a fault that parts the nodes.
    pub until: Duration,
    /// Whether it parts the nodes.
    pub partitions: bool,
    /// From the fault to one server with good reads; `None` when it did not settle.
    pub settled: Option<Duration>,
    /// Why it did not settle, or what went wrong on the way.
    pub trouble: Option<String>,
    /// A side discarded on the tool's advice.
    pub discard: Option<Discard>,
    /// When a master that was hung or cut off while the pool moved its role came back: it
    /// still holds the VIP, and its kernel answers ARP for it until its daemon yields.
    pub returned: Option<Duration>,
}

/// Everything a run recorded.
#[derive(Debug, Clone, Default)]
pub struct History {
    /// The writer's operations.
    pub ops: Vec<Op>,
    /// The acknowledged writes that did not read back at the end.
    pub unreadable: Vec<Block>,
    /// The ARP monitor's rounds.
    pub arp: Vec<ArpRound>,
    /// The node samplers' looks, both nodes, in any order.
    pub samples: Vec<NodeSample>,
    /// The faults, in order.
    pub faults: Vec<FaultRecord>,
    /// Whether each node's daemon ran at the end.
    pub alive_at_end: [bool; 2],
    /// Panic lines found in the daemons' logs.
    pub panics: Vec<String>,
}

/// The checked history: the summary's counts and every violation in words.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Verdict {
    /// Faults injected.
    pub faults: usize,
    /// Faults after which the system settled.
    pub settled: usize,
    /// Acknowledged writes that did not read back.
    pub lost_acked: usize,
    /// Episodes with two nodes answering ARP for the VIP.
    pub dual_vip: usize,
    /// Episodes with two Primaries outside a partition.
    pub dual_primary: usize,
    /// Read-backs that found older data than an acknowledged write.
    pub stale_reads: usize,
    /// The longest I/O stall of any fault.
    pub max_stall: Duration,
    /// Each violation, in words.
    pub violations: Vec<String>,
    /// What the run allowed and why, in words (e.g. a returning stale master's ARP answers).
    pub notes: Vec<String>,
}

/// How long a master back from a hang or a cut may answer ARP for the VIP beside the new
/// master: until its daemon hears the other claim and yields (invariant 8; the lab's fault
/// scenarios measured 0.6–1.5 s). A paused or cut-off host cannot be told sooner.
pub const YIELD_BOUND: Duration = Duration::from_secs(15);

impl Verdict {
    /// `chaos: faults=N settled=N lost_acked=0 dual_vip=0 dual_primary=0 stale_reads=0 max_stall=<ms>`
    pub fn summary(&self) -> String {
        format!(
            "chaos: faults={} settled={} lost_acked={} dual_vip={} dual_primary={} stale_reads={} max_stall={}",
            self.faults,
            self.settled,
            self.lost_acked,
            self.dual_vip,
            self.dual_primary,
            self.stale_reads,
            self.max_stall.as_millis()
        )
    }

    /// No violation.
    pub fn passed(&self) -> bool {
        self.violations.is_empty()
    }
}

/// The longest time in `from..=to` without a good operation completing, given the
/// completion times of the good operations in order.
pub fn stall(good_done: &[Duration], from: Duration, to: Duration) -> Duration {
    let mut last = from;
    let mut worst = Duration::ZERO;
    for &d in good_done.iter().filter(|d| **d > from && **d <= to) {
        worst = worst.max(d - last);
        last = d;
    }
    worst.max(to.saturating_sub(last))
}

/// The completion times of the good operations, in order.
pub fn good_done(ops: &[Op]) -> Vec<Duration> {
    let mut v: Vec<Duration> = ops.iter().filter(|o| o.good()).map(|o| o.done).collect();
    v.sort();
    v
}

/// Checks a history.
pub fn check(h: &History) -> Verdict {
    let mut v = Verdict {
        faults: h.faults.len(),
        ..Verdict::default()
    };
    // Settling, and the stalls.
    let done = good_done(&h.ops);
    for f in &h.faults {
        match f.settled {
            Some(s) => {
                v.settled += 1;
                v.max_stall = v.max_stall.max(stall(&done, f.at, f.at + s));
            }
            None => v.violations.push(format!(
                "{} at +{:.1}s did not settle: {}",
                f.what,
                f.at.as_secs_f64(),
                f.trouble.as_deref().unwrap_or("(no reason recorded)")
            )),
        }
    }
    // Lost acknowledged writes, and which of them the advice explains.
    v.lost_acked = h.unreadable.len();
    if !h.unreadable.is_empty() {
        let lost: HashSet<u64> = h.unreadable.iter().map(|b| b.seq).collect();
        let mut explained = Vec::new();
        for d in h.faults.iter().filter_map(|f| f.discard.as_ref()) {
            let by: HashSet<u64> = h
                .ops
                .iter()
                .filter(|o| o.acked && o.at >= d.since && o.via == Some(d.node))
                .map(|o| o.block.seq)
                .collect();
            explained.push(format!(
                "{} lost by discarding node{}'s data on the advice \"{}\"{}",
                by.intersection(&lost).count(),
                d.node,
                d.advice,
                if by == lost {
                    " (exactly the writes it acknowledged after the takeover)"
                } else {
                    ""
                }
            ));
        }
        let mut seqs: Vec<u64> = lost.into_iter().collect();
        seqs.sort_unstable();
        v.violations.push(format!(
            "{} acknowledged writes do not read back (sequence numbers {:?}){}",
            seqs.len(),
            &seqs[..seqs.len().min(20)],
            if explained.is_empty() {
                String::new()
            } else {
                format!(": {}", explained.join("; "))
            }
        ));
    }
    // Two hosts answering for the VIP: episodes of consecutive rounds. A stale master's
    // answers right after it came back are the yield's window, noted with their length.
    let mut episode: Option<(Duration, bool)> = None;
    let close = |v: &mut Verdict, start: Duration, end: Duration, tolerated: bool| {
        if tolerated {
            v.notes.push(format!(
                "a master back from a hang or cut answered ARP for the VIP beside the new master for {} ms from +{:.1}s, until it yielded",
                (end - start).as_millis(),
                start.as_secs_f64()
            ));
        }
    };
    for r in &h.arp {
        let dual = r.answered.len() >= 2;
        match (dual, episode) {
            (true, None) => {
                // A request sent just before the node came back is answered after: the round
                // counts from its start.
                let tolerated = h.faults.iter().any(|f| {
                    f.returned
                        .is_some_and(|b| b <= r.at + ARP_ROUND && r.at <= b + YIELD_BOUND)
                });
                if !tolerated {
                    v.dual_vip += 1;
                    v.violations.push(format!(
                        "nodes {:?} answered ARP for the VIP at +{:.1}s",
                        r.answered,
                        r.at.as_secs_f64()
                    ));
                }
                episode = Some((r.at, tolerated));
            }
            (false, Some((start, tolerated))) => {
                close(&mut v, start, r.at, tolerated);
                episode = None;
            }
            _ => {}
        }
    }
    if let Some((start, tolerated)) = episode {
        let end = h.arp.last().map_or(start, |r| r.at);
        close(&mut v, start, end, tolerated);
    }
    // Two Primaries outside a partition: the latest look at each node, both fresh.
    let mut samples = h.samples.clone();
    samples.sort_by_key(|s| s.at);
    let mut last: [Option<&NodeSample>; 2] = [None, None];
    let mut in_dual = false;
    for s in &samples {
        let Some(slot) = s.node.checked_sub(1).map(usize::from).filter(|i| *i < 2) else {
            continue;
        };
        last[slot] = Some(s);
        let other = last[1 - slot];
        let dual = s.primary
            && other.is_some_and(|o| o.primary && s.at.saturating_sub(o.at) <= FRESH)
            && !h
                .faults
                .iter()
                .any(|f| f.partitions && f.at <= s.at && s.at <= f.until);
        if dual && !in_dual {
            v.dual_primary += 1;
            v.violations.push(format!(
                "both nodes Primary at +{:.1}s outside any partition",
                s.at.as_secs_f64()
            ));
        }
        in_dual = dual;
    }
    // Reads of old data.
    for o in &h.ops {
        if let Some((b, ReadCheck::Stale)) = o.read {
            v.stale_reads += 1;
            v.violations.push(format!(
                "the read at +{:.1}s of write {} (block {:#x}) found older data{}",
                o.at.as_secs_f64(),
                b.seq,
                b.offset,
                o.via
                    .map(|n| format!(" (VIP at node{n})"))
                    .unwrap_or_default()
            ));
        }
    }
    for (i, alive) in h.alive_at_end.iter().enumerate() {
        if !alive {
            v.violations
                .push(format!("node{}'s daemon is not running at the end", i + 1));
        }
    }
    for p in &h.panics {
        v.violations.push(format!("a daemon panicked: {p}"));
    }
    v
}

/// How long one ARP round listens for answers (the monitor asks every round).
pub const ARP_ROUND: Duration = Duration::from_millis(100);

/// How far apart two looks at the nodes may be and still count as the same moment.
pub const FRESH: Duration = Duration::from_millis(1500);

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn op(seq: u64, at: u64, acked: bool, read: Option<ReadCheck>, via: u8) -> Op {
        let block = Block {
            seq,
            offset: seq * 4096,
            byte: 1,
        };
        Op {
            at: ms(at),
            done: ms(at + 300),
            block,
            acked,
            read: read.map(|r| (block, r)),
            via: Some(via),
        }
    }

    fn fault(at: u64, until: u64, partitions: bool, settled: Option<u64>) -> FaultRecord {
        FaultRecord {
            what: "a fault".into(),
            at: ms(at),
            until: ms(until),
            partitions,
            settled: settled.map(ms),
            trouble: settled.is_none().then(|| "no server".into()),
            discard: None,
            returned: None,
        }
    }

    fn sample(at: u64, node: u8, primary: bool) -> NodeSample {
        NodeSample {
            at: ms(at),
            node,
            primary,
            vip: primary,
            target: primary,
        }
    }

    /// A run with nothing wrong: two faults, writes all good, one server throughout.
    fn clean() -> History {
        History {
            ops: (0..20)
                .map(|i| op(i, i * 500, true, Some(ReadCheck::Current), 1))
                .collect(),
            unreadable: vec![],
            arp: (0..100)
                .map(|i| ArpRound {
                    at: ms(i * 100),
                    answered: vec![1],
                })
                .collect(),
            samples: (0..20)
                .flat_map(|i| [sample(i * 500, 1, true), sample(i * 500 + 100, 2, false)])
                .collect(),
            faults: vec![
                fault(1000, 3000, false, Some(1500)),
                fault(5000, 7000, true, Some(900)),
            ],
            alive_at_end: [true, true],
            panics: vec![],
        }
    }

    #[test]
    fn a_clean_history_passes_with_its_counts() {
        let v = check(&clean());
        assert!(v.passed(), "{:?}", v.violations);
        assert_eq!(
            v.summary(),
            "chaos: faults=2 settled=2 lost_acked=0 dual_vip=0 dual_primary=0 stale_reads=0 max_stall=500"
        );
    }

    #[test]
    fn a_fault_that_did_not_settle_is_a_violation_naming_why() {
        let mut h = clean();
        h.faults[1].settled = None;
        h.faults[1].trouble = Some("both nodes Secondary".into());
        let v = check(&h);
        assert_eq!(v.settled, 1);
        assert!(v.violations[0].contains("both nodes Secondary"), "{v:?}");
    }

    #[test]
    fn lost_acknowledged_writes_are_counted_and_explained_by_a_discard() {
        let mut h = clean();
        h.unreadable = vec![h.ops[3].block];
        let v = check(&h);
        assert_eq!(v.lost_acked, 1);
        assert!(!v.passed());
        // Writes acknowledged through node 2 after +5 s, discarded on advice.
        let mut h = clean();
        for o in &mut h.ops[12..] {
            o.via = Some(2);
        }
        h.unreadable = h.ops[12..].iter().map(|o| o.block).collect();
        h.faults[1].discard = Some(Discard {
            node: 2,
            since: ms(5000),
            advice: "keep: the OTHER host's data".into(),
        });
        let v = check(&h);
        assert_eq!(v.lost_acked, 8);
        assert!(
            v.violations[0].contains("8 lost by discarding node2's data")
                && v.violations[0].contains("exactly the writes"),
            "{:?}",
            v.violations
        );
    }

    #[test]
    fn two_nodes_answering_arp_for_the_vip_is_one_violation_per_episode() {
        let mut h = clean();
        for r in &mut h.arp[10..13] {
            r.answered = vec![1, 2];
        }
        h.arp[50].answered = vec![2, 1];
        let v = check(&h);
        assert_eq!(v.dual_vip, 2, "{:?}", v.violations);
        // The second began in the round during which a stale master came back: its yield's
        // window, noted.
        h.faults[1].returned = Some(ms(5050));
        let v = check(&h);
        assert_eq!(v.dual_vip, 1, "{:?}", v.violations);
        assert!(v.notes[0].contains("100 ms from +5.0s"), "{:?}", v.notes);
        // Past the bound it is a violation again.
        h.arp.push(ArpRound {
            at: ms(5050) + YIELD_BOUND + ms(1),
            answered: vec![1, 2],
        });
        assert_eq!(check(&h).dual_vip, 2);
    }

    #[test]
    fn two_primaries_count_outside_a_partition_only() {
        let mut h = clean();
        // Inside the partitioning fault's window (5..7 s): allowed.
        h.samples.push(sample(6100, 2, true));
        assert_eq!(check(&h).dual_primary, 0);
        // Outside it (9 s): a violation.
        h.samples.push(sample(9100, 2, true));
        let v = check(&h);
        assert_eq!(v.dual_primary, 1, "{:?}", v.violations);
        // The same in a fault that does not partition (1..3 s).
        h.samples.push(sample(2100, 2, true));
        assert_eq!(check(&h).dual_primary, 2);
        // Looks too far apart are not the same moment.
        let fresh = u64::try_from(FRESH.as_millis()).unwrap_or(u64::MAX);
        let mut h = clean();
        h.faults.clear();
        h.samples = vec![sample(1000, 1, true), sample(1001 + fresh, 2, true)];
        assert_eq!(check(&h).dual_primary, 0);
        h.samples.push(sample(1002 + fresh, 1, true));
        assert_eq!(check(&h).dual_primary, 1);
    }

    #[test]
    fn a_stale_read_is_counted() {
        let mut h = clean();
        h.ops[7].read = Some((h.ops[6].block, ReadCheck::Stale));
        let v = check(&h);
        assert_eq!(v.stale_reads, 1);
        assert!(v.violations[0].contains("found older data"), "{v:?}");
        // A failed read is not stale.
        let mut h = clean();
        h.ops[7].read = Some((h.ops[6].block, ReadCheck::Failed));
        assert_eq!(check(&h).stale_reads, 0);
    }

    #[test]
    fn a_dead_daemon_or_a_panic_at_the_end_is_a_violation() {
        let mut h = clean();
        h.alive_at_end = [true, false];
        assert!(check(&h).violations[0].contains("node2's daemon"));
        let mut h = clean();
        h.panics = vec!["node1: thread 'main' panicked at src/x.rs:1".into()];
        assert!(!check(&h).passed());
    }

    #[test]
    fn the_stall_is_the_longest_gap_without_a_good_operation() {
        let done = [ms(100), ms(400), ms(2400), ms(2700)];
        assert_eq!(stall(&done, ms(0), ms(3000)), ms(2000));
        assert_eq!(stall(&done, ms(500), ms(2500)), ms(1900));
        assert_eq!(stall(&[], ms(500), ms(2500)), ms(2000));
        // Failed writes break the run of good ones.
        let mut h = clean();
        for o in &mut h.ops[10..16] {
            o.acked = false;
        }
        h.faults[1].settled = Some(ms(4000));
        assert_eq!(check(&h).max_stall, ms(3300));
    }
}
