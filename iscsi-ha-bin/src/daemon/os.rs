//! The daemon's OS plumbing: blocked signals read from a signalfd, a monotonic timerfd for the
//! next wake-up, and systemd's notify protocol.

use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::time::TimeSpec;
use nix::sys::timerfd::{ClockId, Expiration, TimerFd, TimerFlags, TimerSetTimeFlags};
use std::cell::Cell;
use std::os::fd::{AsFd, BorrowedFd};
use std::time::{Duration, Instant};

/// What a signal asks of the daemon.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignalRequest {
    /// SIGTERM / SIGINT: stop, leaving the storage as it is.
    Stop,
    /// SIGHUP: reload the configuration.
    Reload,
    /// A signal whose default action would end the daemon but that asks nothing of it
    /// (SIGUSR1, SIGUSR2, SIGPIPE, SIGALRM): logged and otherwise ignored.
    Ignore(Signal),
}

/// Every signal the daemon reads from its descriptor: those that ask something of it and
/// those that would otherwise end it for nothing.
const HANDLED: [Signal; 7] = [
    Signal::SIGTERM,
    Signal::SIGINT,
    Signal::SIGHUP,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
    Signal::SIGPIPE,
    Signal::SIGALRM,
];

fn handled() -> SigSet {
    let mut mask = SigSet::empty();
    for signal in HANDLED {
        mask.add(signal);
    }
    mask
}

/// Blocks the daemon's signals in the calling thread. Call it before any thread is started:
/// threads inherit the mask, and a process-directed signal goes to any thread that does not
/// block it, whose default action would end the whole process.
pub fn block_signals() -> nix::Result<()> {
    handled().thread_block()
}

/// The daemon's signals, blocked and read from a descriptor.
#[derive(Debug)]
pub struct Signals {
    fd: SignalFd,
}

impl Signals {
    /// Blocks the signals for this thread (see [`block_signals`]) and opens the descriptor.
    pub fn new() -> nix::Result<Self> {
        block_signals()?;
        let fd = SignalFd::with_flags(&handled(), SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC)?;
        Ok(Self { fd })
    }

    /// The pending requests.
    pub fn drain(&mut self) -> Vec<SignalRequest> {
        let mut out = Vec::new();
        while let Ok(Some(info)) = self.fd.read_signal() {
            let signo = i32::try_from(info.ssi_signo).unwrap_or(0);
            match Signal::try_from(signo) {
                Ok(Signal::SIGHUP) => out.push(SignalRequest::Reload),
                Ok(Signal::SIGTERM | Signal::SIGINT) => out.push(SignalRequest::Stop),
                Ok(other) => out.push(SignalRequest::Ignore(other)),
                Err(_) => {}
            }
        }
        out
    }
}

impl AsFd for Signals {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// A one-shot monotonic timer.
#[derive(Debug)]
pub struct WakeTimer {
    fd: TimerFd,
}

impl WakeTimer {
    /// A disarmed timer.
    pub fn new() -> nix::Result<Self> {
        Ok(Self {
            fd: TimerFd::new(
                ClockId::CLOCK_MONOTONIC,
                TimerFlags::TFD_NONBLOCK | TimerFlags::TFD_CLOEXEC,
            )?,
        })
    }

    /// Fires once after `after` (at least 1 ms).
    pub fn arm(&mut self, after: Duration) -> nix::Result<()> {
        let after = after.max(Duration::from_millis(1));
        self.fd.set(
            Expiration::OneShot(TimeSpec::from_duration(after)),
            TimerSetTimeFlags::empty(),
        )
    }

    /// Consumes an expiry.
    pub fn drain(&mut self) {
        let _ = self.fd.wait();
    }
}

impl AsFd for WakeTimer {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// systemd's notify protocol, when the daemon runs under systemd (`NOTIFY_SOCKET` set).
///
/// A watchdog keep-alive says the loop is alive, and only that: it is sent between passes and
/// between the steps of a pass, each of which is bounded (see the daemon's module doc), so a
/// loop that is stuck (not merely busy with bounded steps) stops sending it.
#[derive(Debug)]
pub struct Notifier {
    watchdog: Option<Duration>,
    /// A cell: keep-alives are sent from the port wrappers that share the notifier.
    last_keepalive: Cell<Option<Instant>>,
}

impl Notifier {
    /// Reads the watchdog interval systemd asks for, if any.
    pub fn new() -> Self {
        let mut usec = 0;
        let watchdog =
            sd_notify::watchdog_enabled(false, &mut usec).then(|| Duration::from_micros(usec));
        Self::with_watchdog(watchdog)
    }

    /// A notifier for systemd's watchdog interval `watchdog` (`None`: no watchdog).
    pub fn with_watchdog(watchdog: Option<Duration>) -> Self {
        Self {
            watchdog,
            last_keepalive: Cell::new(None),
        }
    }

    /// How often keep-alives must be sent (half systemd's interval), if the watchdog is on.
    pub fn keepalive_interval(&self) -> Option<Duration> {
        self.watchdog.map(|w| w / 2)
    }

    /// When the next keep-alive is due, if the watchdog is on.
    pub fn keepalive_due(&self) -> Option<Instant> {
        let every = self.keepalive_interval()?;
        Some(
            self.last_keepalive
                .get()
                .map_or_else(Instant::now, |at| at + every),
        )
    }

    /// A watchdog keep-alive alone, sent once a quarter of systemd's interval has passed since
    /// the last (it is called often, between passes and steps; the calls between are no-ops).
    pub fn keepalive(&self) {
        let Some(every) = self.keepalive_interval() else {
            return;
        };
        if self
            .last_keepalive
            .get()
            .is_some_and(|at| at.elapsed() < every / 2)
        {
            return;
        }
        self.last_keepalive.set(Some(Instant::now()));
        let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Watchdog]);
    }

    /// Tells systemd the daemon is ready.
    pub fn ready(&self, status: &str) {
        let _ = sd_notify::notify(
            false,
            &[
                sd_notify::NotifyState::Ready,
                sd_notify::NotifyState::Status(status),
            ],
        );
    }

    /// A watchdog keep-alive and a one-line status.
    pub fn alive(&self, status: &str) {
        let mut states = vec![sd_notify::NotifyState::Status(status)];
        if self.watchdog.is_some() {
            self.last_keepalive.set(Some(Instant::now()));
            states.push(sd_notify::NotifyState::Watchdog);
        }
        let _ = sd_notify::notify(false, &states);
    }

    /// Tells systemd the daemon is stopping.
    pub fn stopping(&self) {
        let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Stopping]);
    }
}

impl Default for Notifier {
    fn default() -> Self {
        Self::new()
    }
}
