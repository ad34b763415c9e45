//! Noticing a tgtd's exit from a poll loop, on any kernel the product runs on.
//!
//! A pidfd (`pidfd_open`, Linux ≥ 5.3) becomes readable once the process has exited. The dom0
//! kernels of XCP-ng 8.2/8.3 (4.19) and XenServer 7 (4.4) answer `pidfd_open` with ENOSYS;
//! there a timerfd that fires every [`EXIT_CHECK_PERIOD`] stands in for it: each expiry makes
//! the owner look (`waitpid` for our child, `/proc/<pid>/stat` for an adopted tgtd), so the
//! exit is still seen within that period instead of at the next scan.

use std::fs::File;
use std::io::Read;
use std::os::fd::{AsFd, BorrowedFd, FromRawFd, OwnedFd};
use std::time::Duration;

use nix::sys::time::TimeSpec;
use nix::sys::timerfd::{ClockId, Expiration, TimerFd, TimerFlags, TimerSetTimeFlags};

/// How often a process is looked at where the kernel has no pidfds: the longest a tgtd's exit
/// goes unnoticed there. The loop wakes this often while a tgtd runs; each wake-up is one
/// `waitpid(WNOHANG)` or one small `/proc` read.
pub const EXIT_CHECK_PERIOD: Duration = Duration::from_millis(500);

/// A descriptor that becomes readable when a process may have exited.
#[derive(Debug)]
pub enum ExitWatch {
    /// A pidfd: readable exactly when the process has exited.
    Pidfd(OwnedFd),
    /// No pidfds on this kernel: a periodic timer. Readable means "look now".
    Tick {
        /// Fires every [`EXIT_CHECK_PERIOD`].
        timer: TimerFd,
        /// The process's start time (`/proc/<pid>/stat` field 22) when the watch was made:
        /// a different one later means the pid was reused. `None` for our own child, whose
        /// exit `waitpid` reports.
        start_time: Option<u64>,
    },
}

impl ExitWatch {
    /// A watch on our own child `pid` (its exit is then taken with `waitpid`).
    pub fn child(pid: u32) -> Option<Self> {
        match pidfd_open(pid) {
            Some(fd) => Some(Self::Pidfd(fd)),
            None => Self::tick(None),
        }
    }

    /// A watch on `pid`, not our child (an adopted tgtd). `None` when the process is already
    /// gone or cannot be watched.
    pub fn process(pid: u32) -> Option<Self> {
        match pidfd_open(pid) {
            Some(fd) => Some(Self::Pidfd(fd)),
            None => {
                let stat = ProcStat::read(pid)?;
                if stat.zombie {
                    return None;
                }
                Self::tick(Some(stat.start_time))
            }
        }
    }

    fn tick(start_time: Option<u64>) -> Option<Self> {
        let timer = TimerFd::new(
            ClockId::CLOCK_MONOTONIC,
            TimerFlags::TFD_NONBLOCK | TimerFlags::TFD_CLOEXEC,
        )
        .map_err(|e| tracing::warn!(%e, "no pidfd and no timerfd: a tgtd's exit is seen at the next scan only"))
        .ok()?;
        let period = TimeSpec::from_duration(EXIT_CHECK_PERIOD);
        timer
            .set(Expiration::Interval(period), TimerSetTimeFlags::empty())
            .map_err(|e| tracing::warn!(%e, "cannot arm the tgtd exit timer"))
            .ok()?;
        Some(Self::Tick { timer, start_time })
    }

    /// Whether the watch is a pidfd (false: the periodic fallback).
    pub fn is_pidfd(&self) -> bool {
        matches!(self, Self::Pidfd(_))
    }

    /// Consumes a pending tick, so that the descriptor is quiet again until the next one.
    /// A pidfd stays readable once the process has exited, which its owner then forgets.
    pub fn consume(&self) {
        if let Self::Tick { timer, .. } = self {
            // EAGAIN when no expiry is pending: nothing to consume.
            let _ = timer.wait();
        }
    }

    /// For a process that is not our child: whether `pid` has exited (or its pid now names
    /// another process). Consumes a pending tick.
    pub fn process_exited(&self, pid: u32) -> bool {
        match self {
            Self::Pidfd(fd) => {
                let mut fds = [nix::poll::PollFd::new(
                    fd.as_fd(),
                    nix::poll::PollFlags::POLLIN,
                )];
                nix::poll::poll(&mut fds, nix::poll::PollTimeout::ZERO).is_ok_and(|n| n > 0)
            }
            Self::Tick { start_time, .. } => {
                self.consume();
                match ProcStat::read(pid) {
                    None => true,
                    Some(stat) => stat.zombie || Some(stat.start_time) != *start_time,
                }
            }
        }
    }
}

impl AsFd for ExitWatch {
    fn as_fd(&self) -> BorrowedFd<'_> {
        match self {
            Self::Pidfd(fd) => fd.as_fd(),
            Self::Tick { timer, .. } => timer.as_fd(),
        }
    }
}

/// What `/proc/<pid>/stat` says about a process's life.
struct ProcStat {
    zombie: bool,
    start_time: u64,
}

impl ProcStat {
    /// `None` when there is no such process (or its stat line cannot be read).
    fn read(pid: u32) -> Option<Self> {
        let file = File::open(format!("/proc/{pid}/stat")).ok()?;
        let mut text = String::new();
        // The line is a few hundred bytes; a bound keeps a strange /proc from costing more.
        file.take(4096).read_to_string(&mut text).ok()?;
        Self::parse(&text)
    }

    /// `pid (comm) state ppid ... starttime ...`: comm may hold spaces and parentheses, so the
    /// fields are counted from the last `)`; the state is field 3, the start time field 22.
    fn parse(text: &str) -> Option<Self> {
        let rest = &text[text.rfind(')')? + 1..];
        let mut fields = rest.split_whitespace();
        let state = fields.next()?;
        let start_time = fields.nth(18)?.parse().ok()?;
        Some(Self {
            zombie: state == "Z" || state == "X",
            start_time,
        })
    }
}

/// A pidfd for any process (Linux ≥ 5.3; not only a child): readable once it has exited.
/// `None` where the kernel lacks `pidfd_open` (ENOSYS) or the process is gone.
pub(crate) fn pidfd_open(pid: u32) -> Option<OwnedFd> {
    let pid = libc::pid_t::try_from(pid).ok()?;
    // SAFETY: pidfd_open takes a pid and flags and returns a new fd or -1; no memory is shared.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    let fd = i32::try_from(fd).ok().filter(|&fd| fd >= 0)?;
    // SAFETY: the kernel just returned this fd to us and nothing else owns it.
    Some(unsafe { OwnedFd::from_raw_fd(fd) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_are_counted_from_the_last_parenthesis() {
        let line = "4242 (tg td) (x)) S 1 4242 4242 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 1000 10";
        let stat = ProcStat::parse(line).unwrap_or_else(|| panic!("unparsed"));
        assert_eq!(stat.start_time, 987_654);
        assert!(!stat.zombie);
        let zombie = line.replace(")) S ", ")) Z ");
        assert!(ProcStat::parse(&zombie).is_some_and(|s| s.zombie));
        assert!(ProcStat::parse("4242 (tgtd").is_none());
        assert!(ProcStat::parse("4242 (tgtd) S 1 2").is_none());
    }

    #[test]
    fn our_own_process_is_alive_and_a_stale_start_time_is_an_exit() {
        let me = std::process::id();
        let stat = ProcStat::read(me).unwrap_or_else(|| panic!("no /proc/self/stat"));
        let watch = ExitWatch::tick(Some(stat.start_time)).unwrap_or_else(|| panic!("no timerfd"));
        assert!(!watch.process_exited(me));
        let reused =
            ExitWatch::tick(Some(stat.start_time + 1)).unwrap_or_else(|| panic!("no timerfd"));
        assert!(
            reused.process_exited(me),
            "another start time is another process"
        );
    }
}
