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
    /// When the round stopped listening: an answer may have left a node at any time up to
    /// then, so a node back from a pause before this moment may be among those that answered.
    pub until: Duration,
    /// The nodes that answered (each once).
    pub answered: Vec<u8>,
}

/// One look at a node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeSample {
    /// When the look began (run time).
    pub at: Duration,
    /// When its answer came back: the state it shows held at some moment in `at..=until`,
    /// which the command channel's latency makes up to a few hundred ms wide.
    pub until: Duration,
    /// Node 1 or 2.
    pub node: u8,
    /// DRBD role Primary (the first resource).
    pub primary: bool,
    /// DRBD's own view of the peer's role, Primary (`ro:…/Primary`): with this node Primary
    /// too, DRBD itself says two Primaries are connected.
    pub peer_primary: bool,
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
                        .is_some_and(|b| b <= r.until && r.at <= b + YIELD_BOUND)
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
    for (at, what) in two_primaries(h) {
        v.dual_primary += 1;
        v.violations.push(format!(
            "{what} at +{:.1}s outside any partition",
            at.as_secs_f64()
        ));
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

/// Whether a moment falls in the window of a fault that parts the nodes (two Primaries are
/// then allowed: each side may be promoted by the pool, and DRBD's fencing freezes the stale one).
fn in_partition(h: &History, at: Duration) -> bool {
    h.faults
        .iter()
        .any(|f| f.partitions && f.at <= at && at <= f.until)
}

/// The episodes with two Primaries outside a partition, each with its start and how it is known.
///
/// Two looks at different nodes are never taken as one moment: each shows its node's state at
/// some instant inside the look (`at..=until`), and a planned switch takes less time than the
/// command channel's latency, so the old master's last Primary look and the new master's first
/// can both be true without overlapping. A node is known Primary between the end of one look and
/// the start of the next that both show it Primary (the run moves roles only between checks, one
/// fault at a time, never twice within two looks); two such spans that overlap are two
/// Primaries. DRBD's own view is the other witness: a look in which a Primary sees its peer
/// Primary too.
fn two_primaries(h: &History) -> Vec<(Duration, &'static str)> {
    let mut spans: [Vec<(Duration, Duration)>; 2] = [vec![], vec![]];
    let mut seen_by_drbd = Vec::new();
    for node in [1u8, 2] {
        let mut looks: Vec<&NodeSample> = h.samples.iter().filter(|s| s.node == node).collect();
        looks.sort_by_key(|s| s.at);
        for pair in looks.windows(2) {
            if pair[0].primary && pair[1].primary && pair[0].until < pair[1].at {
                spans[usize::from(node - 1)].push((pair[0].until, pair[1].at));
            }
        }
        seen_by_drbd.extend(
            looks
                .iter()
                .filter(|s| s.primary && s.peer_primary)
                .map(|s| s.at),
        );
    }
    let mut both: Vec<(Duration, Duration)> = Vec::new();
    for a in &spans[0] {
        for b in &spans[1] {
            let (from, to) = (a.0.max(b.0), a.1.min(b.1));
            if from < to {
                both.push((from, to));
            }
        }
    }
    let mut episodes: Vec<(Duration, &'static str)> = Vec::new();
    let mut found: Vec<(Duration, Duration, &'static str)> = both
        .into_iter()
        .map(|(f, t)| (f, t, "both nodes Primary"))
        .chain(
            seen_by_drbd
                .into_iter()
                .map(|at| (at, at, "DRBD reports both nodes Primary")),
        )
        .collect();
    found.sort_by_key(|e| e.0);
    let mut last_end: Option<Duration> = None;
    for (from, to, what) in found {
        if in_partition(h, from) && in_partition(h, to) {
            continue;
        }
        // One episode per stretch: a finding that starts inside the last one adds nothing.
        if let Some(end) = last_end.filter(|end| from <= *end + SAMPLE_GAP) {
            last_end = Some(end.max(to));
            continue;
        }
        last_end = Some(to);
        episodes.push((from, what));
    }
    episodes
}

/// How close two findings of two Primaries must be to count as one episode.
const SAMPLE_GAP: Duration = Duration::from_millis(1500);

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

    /// A look that took 200 ms, as over the lab's command channel.
    fn sample(at: u64, node: u8, primary: bool) -> NodeSample {
        NodeSample {
            at: ms(at),
            until: ms(at + 200),
            node,
            primary,
            peer_primary: false,
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
                    until: ms(i * 100 + 100),
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
            until: ms(5150) + YIELD_BOUND + ms(1),
            answered: vec![1, 2],
        });
        assert_eq!(check(&h).dual_vip, 2);
    }

    #[test]
    fn a_round_that_listened_past_a_stale_masters_return_tolerates_its_answer() {
        // The monitor asked at 5.0 s and, on a busy host, listened until 5.2 s; the paused
        // master was let go at 5.15 s and answered within the round.
        let mut h = clean();
        h.arp[50].answered = vec![1, 2];
        h.arp[50].until = ms(5200);
        h.faults[1].returned = Some(ms(5150));
        assert_eq!(check(&h).dual_vip, 0);
        // Let go after the round stopped listening: its answer cannot be in the round.
        h.faults[1].returned = Some(ms(5201));
        assert_eq!(check(&h).dual_vip, 1);
    }

    /// Node 2 Primary in looks every 500 ms from `from` to `to` (ms).
    fn node2_primary(h: &mut History, from: u64, to: u64) {
        for s in h.samples.iter_mut().filter(|s| s.node == 2) {
            let at = u64::try_from(s.at.as_millis()).unwrap_or(u64::MAX);
            if (from..=to).contains(&at) {
                s.primary = true;
            }
        }
    }

    #[test]
    fn two_primaries_count_outside_a_partition_only() {
        // Node 1 is Primary throughout `clean()`; node 2's looks are at 100, 600, ... ms.
        let mut h = clean();
        // Inside the partitioning fault's window (5..7 s): allowed.
        node2_primary(&mut h, 5100, 6600);
        assert_eq!(check(&h).dual_primary, 0);
        // Outside it (8.1..9.1 s): a violation, one for the episode.
        node2_primary(&mut h, 8100, 9100);
        let v = check(&h);
        assert_eq!(v.dual_primary, 1, "{:?}", v.violations);
        assert!(v.violations[0].contains("at +8.3s"), "{:?}", v.violations);
        // The same in a fault that does not partition (1..3 s).
        node2_primary(&mut h, 1600, 2600);
        assert_eq!(check(&h).dual_primary, 2);
    }

    #[test]
    fn a_switch_faster_than_a_look_is_not_two_primaries() {
        // A planned switch at 3.0 s: node 1's last Primary look began at 2.9 s and node 2's
        // first at 3.1 s; each look shows a moment somewhere inside it, so they do not prove
        // that both held the role at once.
        let mut h = clean();
        h.faults.clear();
        h.samples = vec![
            sample(2400, 1, true),
            sample(2900, 1, true),
            sample(3400, 1, false),
            sample(2600, 2, false),
            sample(3100, 2, true),
            sample(3600, 2, true),
        ];
        assert_eq!(check(&h).dual_primary, 0);
        // Node 1 seen Primary again after node 2's first Primary look ended: both held it
        // from 3.3 s (node 2's look ended) to 3.4 s (node 1's next look began).
        h.samples[2].primary = true;
        let v = check(&h);
        assert_eq!(v.dual_primary, 1, "{:?}", v.violations);
        // One look in which DRBD itself sees its peer Primary is enough.
        let mut h = clean();
        h.faults.clear();
        h.samples[6].peer_primary = true;
        let v = check(&h);
        assert_eq!(v.dual_primary, 1, "{:?}", v.violations);
        assert!(
            v.violations[0].starts_with("DRBD reports"),
            "{:?}",
            v.violations
        );
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
