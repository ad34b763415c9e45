//! A long-lived initiator session through the VIP that writes continuously and times every
//! write: the I/O gap a VM on the initiator side feels across a failover.
//!
//! It is `qemu-io` in interactive mode, one process and one iSCSI session for the whole run,
//! fed one write at a time on its standard input. qemu's iSCSI driver (libiscsi underneath)
//! behaves as open-iscsi does where it matters here: it sends a NOP-Out every 5 s and
//! reconnects after 3 go unanswered (qemu `block/iscsi.c`, `NOP_INTERVAL`,
//! `MAX_NOP_FAILURES`), it reconnects at once when its connection is reset, and it replays the
//! commands that were in flight after logging in again; a write is never failed to the caller
//! for a lost connection. So a write's latency is how long the guest's I/O hung.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crate::error::{LabError, Result};
use crate::lab::Lab;

/// The size of each write.
pub const BLOCK: u64 = 4096;

/// How long one write may hang before the session is declared dead.
pub const WRITE_LIMIT: Duration = Duration::from_secs(120);

/// One timed write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimedWrite {
    /// When it was issued, from the session's start.
    pub at: Duration,
    /// How long until qemu-io answered.
    pub took: Duration,
    /// Where it wrote.
    pub offset: u64,
    /// The byte it wrote ([`BLOCK`] of them).
    pub byte: u8,
    /// Whether qemu-io reported it written (acknowledged by the target).
    pub acked: bool,
}

/// A running session; [`Session::stop`] ends it and gives its record.
#[derive(Debug)]
pub struct Session {
    stop: Arc<AtomicBool>,
    writer: JoinHandle<Result<Vec<TimedWrite>>>,
    started: Instant,
}

impl Session {
    /// Logs in to `url` from the initiator namespace and writes block after block from
    /// `base`, pausing `pause` between writes, each byte derived from `tag` and the index.
    pub fn start(lab: &Lab, url: &str, base: u64, tag: u8, pause: Duration) -> Result<Session> {
        let mut cmd = lab.qemu_io()?;
        cmd.args(["-f", "raw", url])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd
            .spawn()
            .map_err(|e| LabError::io("starting qemu-io in the initiator namespace", e))?;
        let lines = read_lines(&mut child);
        let stop = Arc::new(AtomicBool::new(false));
        let started = Instant::now();
        let flag = Arc::clone(&stop);
        let writer = thread::Builder::new()
            .name("iha-lab-session".into())
            .spawn(move || write_loop(child, &lines, &flag, started, base, tag, pause))
            .map_err(|e| LabError::io("starting the session's writer thread", e))?;
        Ok(Session {
            stop,
            writer,
            started,
        })
    }

    /// Since when the session runs.
    pub fn started(&self) -> Instant {
        self.started
    }

    /// Ends the session after the write in progress and returns every write.
    pub fn stop(self) -> Result<Vec<TimedWrite>> {
        self.stop.store(true, Ordering::Relaxed);
        self.writer
            .join()
            .map_err(|_| LabError::Invalid("the session's writer thread panicked".into()))?
    }
}

/// Both of qemu-io's output streams as timestamped lines on one channel.
fn read_lines(child: &mut Child) -> Receiver<String> {
    let (tx, rx) = mpsc::channel();
    if let Some(out) = child.stdout.take() {
        let tx = tx.clone();
        thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(std::io::Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
    }
    if let Some(err) = child.stderr.take() {
        thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(std::io::Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
    }
    rx
}

fn write_loop(
    mut child: Child,
    lines: &Receiver<String>,
    stop: &AtomicBool,
    started: Instant,
    base: u64,
    tag: u8,
    pause: Duration,
) -> Result<Vec<TimedWrite>> {
    let mut stdin = child
        .stdin
        .take()
        .ok_or_else(|| LabError::Invalid("qemu-io has no standard input".into()))?;
    let mut record = Vec::new();
    let mut i: u64 = 0;
    let result = loop {
        if stop.load(Ordering::Relaxed) {
            break Ok(());
        }
        let offset = base + i * BLOCK;
        let byte = u8::try_from((u64::from(tag) * 41 + i) % 255 + 1).unwrap_or(1);
        i += 1;
        let at = started.elapsed();
        let t0 = Instant::now();
        if let Err(e) = writeln!(stdin, "write -P {byte:#04x} {offset} {BLOCK}") {
            break Err(LabError::io("writing to qemu-io", e));
        }
        let wrote = format!("wrote {BLOCK}/{BLOCK} bytes at offset {offset}");
        let acked = loop {
            match lines.recv_timeout(WRITE_LIMIT.saturating_sub(t0.elapsed())) {
                Ok(line) if line.contains(&wrote) => break Ok(true),
                Ok(line) if line.contains("write failed") => break Ok(false),
                Ok(_) => {}
                Err(RecvTimeoutError::Timeout) => {
                    break Err(LabError::Invalid(format!(
                        "a write through the long-lived session hung for {WRITE_LIMIT:?}"
                    )))
                }
                Err(RecvTimeoutError::Disconnected) => {
                    break Err(LabError::Invalid("qemu-io exited mid-session".into()))
                }
            }
        };
        match acked {
            Ok(acked) => record.push(TimedWrite {
                at,
                took: t0.elapsed(),
                offset,
                byte,
                acked,
            }),
            Err(e) => break Err(e),
        }
        thread::sleep(pause);
    };
    drop(stdin);
    let _ = child.kill();
    let _ = child.wait();
    result.map(|()| record)
}

/// The longest a write hung: the I/O gap a guest felt.
pub fn io_gap(writes: &[TimedWrite]) -> Duration {
    writes.iter().map(|w| w.took).max().unwrap_or_default()
}

/// The acknowledged writes that do not read back through `url` (a fresh session per 64).
pub fn not_read_back(lab: &Lab, url: &str, writes: &[TimedWrite]) -> Result<Vec<TimedWrite>> {
    let acked: Vec<&TimedWrite> = writes.iter().filter(|w| w.acked).collect();
    let mut bad = Vec::new();
    for chunk in acked.chunks(64) {
        let mut cmd = lab.qemu_io()?;
        cmd.args(["-f", "raw"]);
        for w in chunk {
            cmd.args([
                "-c",
                &format!("read -P {:#04x} {} {BLOCK}", w.byte, w.offset),
            ]);
        }
        let out = cmd
            .arg(url)
            .output()
            .map_err(|e| LabError::io("running qemu-io to read back", e))?;
        let text = String::from_utf8_lossy(&out.stdout);
        for w in chunk {
            let read = text.contains(&format!(
                "read {BLOCK}/{BLOCK} bytes at offset {}\n",
                w.offset
            ));
            let mismatch = text.contains(&format!(
                "Pattern verification failed at offset {},",
                w.offset
            ));
            if !read || mismatch {
                bad.push(**w);
            }
        }
    }
    Ok(bad)
}
