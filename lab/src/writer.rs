//! The checking writer: an initiator outside both VMs (qemu-io over iSCSI in the lab's
//! initiator namespace) that writes through the VIP and records everything it saw.
//!
//! Write `seq` goes to its own 4 KiB block of the writer's region (wrapping round when the
//! region is full) and fills it with a byte derived from the writer's tag and `seq` (never 0,
//! which is what an unwritten block reads as), so every block names its writer and its moment.
//! With each write the writer reads back the newest block it saw acknowledged: a host serving
//! old data answers that read with something else. Every operation is kept ([`Op`]) with the
//! time it started and the time the writer had its answer, so a history can be checked
//! afterwards ([`crate::chaos::check`]) and shown compressed ([`Writer::view`]).

use std::fmt::Write as _;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use crate::error::{LabError, Result};
use crate::lab::Lab;
use crate::net::{SPARE_MAC_PREFIX, VIP};

/// The size of one write.
pub const BLOCK: u64 = 4096;

/// How long one initiator operation may take before the writer gives up on it.
pub const OP_TIMEOUT: Duration = Duration::from_secs(5);

/// One write: its sequence number, the block it targets and the byte it fills it with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Block {
    /// The writer's sequence number (0, 1, ...).
    pub seq: u64,
    /// Byte offset on the LUN.
    pub offset: u64,
    /// The fill byte (1..=255).
    pub byte: u8,
}

/// What a read-back of the newest acknowledged block found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadCheck {
    /// The newest acknowledged block read back.
    Current,
    /// It read back as something else: served by a host without that write.
    Stale,
    /// The read did not complete.
    Failed,
}

/// One operation of the writer: a write and, once something was acknowledged, a read-back.
#[derive(Debug, Clone)]
pub struct Op {
    /// When it started (from the writer's `t0`).
    pub at: Duration,
    /// When the writer had its answer (or gave up).
    pub done: Duration,
    /// The write.
    pub block: Block,
    /// Whether the initiator saw the write complete.
    pub acked: bool,
    /// The block read back with it and what the read found.
    pub read: Option<(Block, ReadCheck)>,
    /// The node whose MAC the initiator had for the VIP right after the operation.
    pub via: Option<u8>,
}

impl Op {
    /// Acknowledged, and its read-back (if any) found the newest acknowledged data.
    pub fn good(&self) -> bool {
        self.acked && !matches!(self.read, Some((_, ReadCheck::Stale | ReadCheck::Failed)))
    }
}

/// What another thread may learn of a running writer: its good operations so far.
#[derive(Debug, Default)]
pub struct Progress {
    /// (started, done) of each good operation, in order.
    good: Mutex<Vec<(Duration, Duration)>>,
}

impl Progress {
    fn good(&self) -> std::sync::MutexGuard<'_, Vec<(Duration, Duration)>> {
        self.good
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Whether an operation that started at or after `t` (writer time) was good ([`Op::good`]).
    pub fn good_since(&self, t: Duration) -> bool {
        self.good().last().is_some_and(|(at, _)| *at >= t)
    }

    /// When each good operation completed, in order.
    pub fn good_done(&self) -> Vec<Duration> {
        self.good().iter().map(|(_, done)| *done).collect()
    }

    fn note(&self, op: &Op) {
        if op.good() {
            self.good().push((op.at, op.done));
        }
    }
}

/// A writer through the VIP with a record of what it saw.
#[derive(Debug)]
pub struct Writer<'l> {
    lab: &'l Lab,
    url: String,
    /// Names the writer in its bytes and its messages.
    pub tag: u8,
    base: u64,
    blocks: u64,
    t0: Instant,
    next: u64,
    /// Every operation, in order.
    pub ops: Vec<Op>,
    /// Every acknowledged write, in order.
    pub acked: Vec<Block>,
    progress: Arc<Progress>,
}

impl<'l> Writer<'l> {
    /// A writer on `url` (through the VIP) whose writes go to the `len` bytes from `base`
    /// (whole blocks; round again when full); times are counted from `t0`.
    pub fn new(lab: &'l Lab, url: String, tag: u8, base: u64, len: u64, t0: Instant) -> Self {
        Self {
            lab,
            url,
            tag,
            base,
            blocks: (len / BLOCK).max(1),
            t0,
            next: 0,
            ops: Vec::new(),
            acked: Vec::new(),
            progress: Arc::default(),
        }
    }

    /// A handle on the writer's progress, for another thread.
    pub fn progress(&self) -> Arc<Progress> {
        self.progress.clone()
    }

    /// Write `seq`'s block.
    pub fn block(&self, seq: u64) -> Block {
        let byte = (u64::from(self.tag) * 41 + seq) % 255 + 1;
        Block {
            seq,
            offset: self.base + (seq % self.blocks) * BLOCK,
            byte: u8::try_from(byte).unwrap_or(1),
        }
    }

    /// The time since the writer's `t0`.
    pub fn now(&self) -> Duration {
        self.t0.elapsed()
    }

    fn qemu_io(&self, args: &[&str], commands: &[String], timeout: Duration) -> String {
        let mut cmd = match self.lab.qemu_io() {
            Ok(cmd) => cmd,
            Err(e) => return format!("(qemu-io: {e})"),
        };
        cmd.args(args);
        for c in commands {
            cmd.args(["-c", c]);
        }
        cmd.arg(&self.url);
        let mut child = match cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn() {
            Ok(child) => child,
            Err(e) => return format!("(qemu-io did not start: {e})"),
        };
        let t0 = Instant::now();
        while matches!(child.try_wait(), Ok(None)) {
            if t0.elapsed() > timeout {
                let _ = child.kill();
                break;
            }
            thread::sleep(Duration::from_millis(10));
        }
        match child.wait_with_output() {
            Ok(out) => format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
            Err(e) => format!("(qemu-io: {e})"),
        }
    }

    /// The node whose MAC the initiator has for the VIP.
    pub fn vip_owner(&self) -> Option<u8> {
        let out = self
            .lab
            .initiator(&format!("ip neigh show {VIP}"))
            .ok()?
            .stdout_text();
        let mac = out
            .split_whitespace()
            .skip_while(|w| *w != "lladdr")
            .nth(1)?
            .to_string();
        node_of_mac(&mac)
    }

    /// One write of the next block, with a read-back of the newest acknowledged one; whether
    /// the write was acknowledged.
    pub fn step(&mut self) -> bool {
        let block = self.block(self.next);
        self.next += 1;
        let mut commands = vec![format!(
            "write -P {:#04x} {} {BLOCK}",
            block.byte, block.offset
        )];
        let check = self.acked.last().copied();
        if let Some(c) = check {
            commands.push(format!("read -P {:#04x} {} {BLOCK}", c.byte, c.offset));
        }
        let at = self.t0.elapsed();
        let out = self.qemu_io(&["-f", "raw"], &commands, OP_TIMEOUT);
        let acked = out.contains(&format!(
            "wrote {BLOCK}/{BLOCK} bytes at offset {}",
            block.offset
        ));
        let read = check.map(|c| {
            let r = if out.contains("Pattern verification failed") {
                ReadCheck::Stale
            } else if out.contains(&format!(
                "read {BLOCK}/{BLOCK} bytes at offset {}",
                c.offset
            )) {
                ReadCheck::Current
            } else {
                ReadCheck::Failed
            };
            (c, r)
        });
        if acked {
            self.acked.push(block);
        }
        let via = self.vip_owner();
        let op = Op {
            at,
            done: self.t0.elapsed(),
            block,
            acked,
            read,
            via,
        };
        self.progress.note(&op);
        self.ops.push(op);
        acked
    }

    /// Writes `n` blocks in one initiator session with qemu's `unsafe` cache mode, so that no
    /// SYNCHRONIZE CACHE is ever sent (not even at close); returns how many were acknowledged
    /// once the last completed.
    pub fn write_batch_unflushed(&mut self, n: u64) -> usize {
        let blocks: Vec<Block> = (0..n).map(|i| self.block(self.next + i)).collect();
        self.next += n;
        let commands: Vec<String> = blocks
            .iter()
            .map(|b| format!("write -P {:#04x} {} {BLOCK}", b.byte, b.offset))
            .collect();
        let at = self.t0.elapsed();
        let text = self.qemu_io(
            &["-f", "raw", "-t", "unsafe"],
            &commands,
            Duration::from_secs(120),
        );
        let mut acked = 0;
        for &b in &blocks {
            let ok = text.contains(&format!(
                "wrote {BLOCK}/{BLOCK} bytes at offset {}\n",
                b.offset
            ));
            if ok {
                self.acked.push(b);
                acked += 1;
            }
            self.ops.push(Op {
                at,
                done: self.t0.elapsed(),
                block: b,
                acked: ok,
                read: None,
                via: None,
            });
        }
        acked
    }

    /// Writes until `n` more writes are acknowledged (each attempt bounded by [`OP_TIMEOUT`]);
    /// an error with the writer's view when `timeout` passes first.
    pub fn write_acked(&mut self, n: usize, timeout: Duration) -> Result<()> {
        let t0 = Instant::now();
        let mut done = 0;
        while done < n {
            if t0.elapsed() >= timeout {
                return Err(LabError::WaitTimeout {
                    what: format!("writer {}: {n} acknowledged writes", self.tag),
                    timeout,
                    last: self.view(),
                });
            }
            if self.step() {
                done += 1;
            } else {
                thread::sleep(Duration::from_millis(200));
            }
        }
        Ok(())
    }

    /// What each block written should read as now: the newest write to it still in
    /// [`Writer::acked`] (a caller may drop writes it gave up, as after a forced promotion), and
    /// any write to it after that which was not (it may or may not have landed).
    pub fn expected(&self) -> Vec<(Block, Vec<u8>)> {
        let kept: std::collections::HashSet<u64> = self.acked.iter().map(|b| b.seq).collect();
        let ops: Vec<Op> = self
            .ops
            .iter()
            .map(|op| Op {
                acked: kept.contains(&op.block.seq),
                ..op.clone()
            })
            .collect();
        expected_contents(&ops)
    }

    /// Reads back every block the writer had acknowledged through the VIP; returns the
    /// acknowledged writes that do not read back (as their newest acknowledged write, or a
    /// later unacknowledged one).
    pub fn verify_all(&self) -> Vec<Block> {
        let mut bad = Vec::new();
        let expected = self.expected();
        for chunk in expected.chunks(64) {
            let commands: Vec<String> = chunk
                .iter()
                .map(|(b, _)| format!("read -P {:#04x} {} {BLOCK}", b.byte, b.offset))
                .collect();
            let out = self.qemu_io(&["-f", "raw"], &commands, Duration::from_secs(60));
            for (b, maybe) in chunk {
                if read_matches(&out, b.offset) {
                    continue;
                }
                // A later write that was not acknowledged may have landed.
                let later = maybe.iter().any(|byte| {
                    let out = self.qemu_io(
                        &["-f", "raw"],
                        &[format!("read -P {byte:#04x} {} {BLOCK}", b.offset)],
                        Duration::from_secs(30),
                    );
                    read_matches(&out, b.offset)
                });
                if !later {
                    bad.push(*b);
                }
            }
        }
        bad
    }

    /// The writer's view, compressed into runs of like operations.
    pub fn view(&self) -> String {
        view(&self.ops, self.acked.len(), self.base, self.block(0).byte)
    }

    /// Operations from `from` on whose read-back found old data.
    pub fn stale_reads_since(&self, from: Duration) -> Vec<&Op> {
        self.ops
            .iter()
            .filter(|op| op.at >= from && matches!(op.read, Some((_, ReadCheck::Stale))))
            .collect()
    }
}

fn read_matches(out: &str, offset: u64) -> bool {
    out.contains(&format!("read {BLOCK}/{BLOCK} bytes at offset {offset}\n"))
        && !out.contains(&format!("Pattern verification failed at offset {offset},"))
}

/// The node (1 or 2) a link-layer address belongs to: either of its NICs.
pub fn node_of_mac(mac: &str) -> Option<u8> {
    [1u8, 2].into_iter().find(|id| {
        mac.eq_ignore_ascii_case(&format!("52:54:00:99:00:{id:02x}"))
            || mac.eq_ignore_ascii_case(&format!("{SPARE_MAC_PREFIX}{id:02x}"))
    })
}

/// Per block written: the newest acknowledged write and the bytes of the unacknowledged writes
/// to the same block after it (in `ops` order, which is the order they were issued).
pub fn expected_contents(ops: &[Op]) -> Vec<(Block, Vec<u8>)> {
    let mut newest: std::collections::BTreeMap<u64, (Block, Vec<u8>)> = Default::default();
    for op in ops {
        let b = op.block;
        if op.acked {
            newest.insert(b.offset, (b, Vec::new()));
        } else if let Some((_, later)) = newest.get_mut(&b.offset) {
            later.push(b.byte);
        }
    }
    let mut v: Vec<(Block, Vec<u8>)> = newest.into_values().collect();
    v.sort_by_key(|(b, _)| b.seq);
    v
}

fn view(ops: &[Op], acked: usize, base: u64, first_byte: u8) -> String {
    let mut o = String::new();
    let describe = |op: &Op| {
        let w = if op.acked {
            "write acked"
        } else {
            "write failed"
        };
        let r = match op.read {
            None => "",
            Some((_, ReadCheck::Current)) => ", read current",
            Some((_, ReadCheck::Stale)) => ", READ STALE DATA",
            Some((_, ReadCheck::Failed)) => ", read failed",
        };
        let via = op
            .via
            .map_or("VIP unresolved".into(), |n| format!("VIP at node{n}"));
        let took = op.done.saturating_sub(op.at);
        let slow = if took > Duration::from_millis(1500) {
            format!(", took {:.1} s", took.as_secs_f64())
        } else {
            String::new()
        };
        format!("{w}{r} ({via}{slow})")
    };
    let mut i = 0;
    while i < ops.len() {
        let d = describe(&ops[i]);
        let mut j = i;
        while j + 1 < ops.len() && describe(&ops[j + 1]) == d {
            j += 1;
        }
        let _ = writeln!(
            o,
            "    +{:6.1}s..+{:6.1}s {:3} x {d}",
            ops[i].at.as_secs_f64(),
            ops[j].done.as_secs_f64(),
            j - i + 1
        );
        i = j + 1;
    }
    let _ = write!(
        o,
        "    {} writes, {acked} acknowledged (blocks {base:#x}.. of bytes {first_byte:#04x}..)",
        ops.len(),
    );
    o
}

/// Runs `body` while a background thread drives `writer` (one operation every ~200 ms);
/// returns the writer with its record. When `body` panics, the writer's view is printed
/// before the panic goes on.
pub fn with_writer<'l, T>(writer: Writer<'l>, body: impl FnOnce() -> T) -> (Writer<'l>, T) {
    let stop = AtomicBool::new(false);
    thread::scope(|s| {
        let h = s.spawn(|| {
            let mut w = writer;
            while !stop.load(Ordering::Relaxed) {
                w.step();
                thread::sleep(Duration::from_millis(200));
            }
            w
        });
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(body));
        stop.store(true, Ordering::Relaxed);
        let w = match h.join() {
            Ok(w) => w,
            Err(p) => std::panic::resume_unwind(p),
        };
        match result {
            Ok(t) => (w, t),
            Err(p) => {
                eprintln!("initiator's view when the scenario failed:\n{}", w.view());
                std::panic::resume_unwind(p)
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(seq: u64, offset: u64, byte: u8, acked: bool) -> Op {
        Op {
            at: Duration::from_millis(seq * 100),
            done: Duration::from_millis(seq * 100 + 50),
            block: Block { seq, offset, byte },
            acked,
            read: None,
            via: Some(1),
        }
    }

    #[test]
    fn the_newest_acknowledged_write_is_expected_and_later_unacknowledged_ones_may_be_there() {
        let ops = [
            op(0, 0, 1, true),
            op(1, 4096, 2, false),
            op(2, 0, 3, true),
            op(3, 0, 4, false),
            op(4, 8192, 5, true),
        ];
        let e = expected_contents(&ops);
        assert_eq!(
            e,
            vec![
                (
                    Block {
                        seq: 2,
                        offset: 0,
                        byte: 3
                    },
                    vec![4]
                ),
                (
                    Block {
                        seq: 4,
                        offset: 8192,
                        byte: 5
                    },
                    vec![]
                ),
            ],
            "a block never acknowledged is not expected; an overwritten one expects its newest"
        );
    }

    #[test]
    fn only_the_nodes_macs_name_a_node() {
        assert_eq!(node_of_mac("52:54:00:99:00:02"), Some(2));
        assert_eq!(node_of_mac("52:54:00:99:01:01"), Some(1));
        assert_eq!(node_of_mac("52:54:00:99:00:03"), None);
        assert_eq!(node_of_mac("garbage"), None);
    }

    #[test]
    fn a_good_operation_is_acknowledged_with_a_current_read() {
        let mut o = op(1, 0, 1, true);
        assert!(o.good());
        o.read = Some((o.block, ReadCheck::Stale));
        assert!(!o.good());
        o.read = Some((o.block, ReadCheck::Current));
        assert!(o.good());
        o.acked = false;
        assert!(!o.good());
    }
}
