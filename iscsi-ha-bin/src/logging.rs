//! Where the daemon's log goes: the systemd journal when there is one, else syslog (tag
//! `iscsi-ha`, facility daemon), else standard error. The level comes from `[logging] level`;
//! `RUST_LOG` overrides it.
//!
//! Secrets never reach the log because they are [`iscsi_ha_core::secret::Secret`]s, which print
//! redacted; nothing here has to filter.
//!
//! Syslog goes through `syslog-tracing` (libc's `openlog`/`syslog`): it keeps the C library's
//! reconnection and `/dev/log` handling and needs no socket code of ours.

use iscsi_ha_core::config::schema::{LogLevel, LogTarget, LoggingSection};
use std::path::Path;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::EnvFilter;

/// The identifier log lines carry (journal `SYSLOG_IDENTIFIER`, syslog tag).
pub const IDENTIFIER: &str = "iscsi-ha";

/// journald's native socket.
pub const JOURNAL_SOCKET: &str = "/run/systemd/journal/socket";

/// The syslog socket.
pub const SYSLOG_SOCKET: &str = "/dev/log";

/// Where the log ended up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogSink {
    /// The systemd journal.
    Journald,
    /// syslog.
    Syslog,
    /// Standard error.
    Stderr,
}

impl std::fmt::Display for LogSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            LogSink::Journald => "the journal",
            LogSink::Syslog => "syslog",
            LogSink::Stderr => "standard error",
        })
    }
}

/// Which sink `to` asks for on this machine. `auto`: the journal when standard error already
/// goes to it (systemd's `JOURNAL_STREAM`), standard error when it is a terminal (someone runs
/// the daemon by hand), else the journal when its socket exists, else syslog when `/dev/log`
/// exists, else standard error.
pub fn choose(to: LogTarget) -> LogSink {
    match to {
        LogTarget::Journald => LogSink::Journald,
        LogTarget::Syslog => LogSink::Syslog,
        LogTarget::Stderr => LogSink::Stderr,
        LogTarget::Auto => auto_choice(Surroundings {
            stderr_is_journal: stderr_is_journal(),
            stderr_is_terminal: std::io::IsTerminal::is_terminal(&std::io::stderr()),
            journal_socket: Path::new(JOURNAL_SOCKET).exists(),
            syslog_socket: Path::new(SYSLOG_SOCKET).exists(),
        }),
    }
}

/// What `auto` looks at.
#[derive(Debug, Clone, Copy)]
pub struct Surroundings {
    /// Standard error is connected to the journal.
    pub stderr_is_journal: bool,
    /// Standard error is a terminal.
    pub stderr_is_terminal: bool,
    /// journald's socket exists.
    pub journal_socket: bool,
    /// `/dev/log` exists.
    pub syslog_socket: bool,
}

/// The `auto` rule (see [`choose`]).
pub fn auto_choice(s: Surroundings) -> LogSink {
    if s.stderr_is_journal {
        LogSink::Journald
    } else if s.stderr_is_terminal {
        LogSink::Stderr
    } else if s.journal_socket {
        LogSink::Journald
    } else if s.syslog_socket {
        LogSink::Syslog
    } else {
        LogSink::Stderr
    }
}

/// Whether standard error is the journal stream systemd connected (`JOURNAL_STREAM` holds its
/// device and inode numbers).
fn stderr_is_journal() -> bool {
    use std::os::unix::fs::MetadataExt;
    let Ok(value) = std::env::var("JOURNAL_STREAM") else {
        return false;
    };
    let Some((dev, ino)) = value.split_once(':') else {
        return false;
    };
    let (Ok(dev), Ok(ino)) = (dev.parse::<u64>(), ino.parse::<u64>()) else {
        return false;
    };
    std::fs::metadata("/proc/self/fd/2").is_ok_and(|m| m.dev() == dev && m.ino() == ino)
}

/// The filter directive for a configured level.
pub fn level_directive(level: LogLevel) -> &'static str {
    match level {
        LogLevel::Error => "error",
        LogLevel::Warn => "warn",
        LogLevel::Info => "info",
        LogLevel::Debug => "debug",
        LogLevel::Trace => "trace",
    }
}

fn filter(level: LogLevel) -> EnvFilter {
    EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level_directive(level)))
}

/// Installs the global subscriber for `[logging]`. A sink that cannot be opened (no journal
/// although `journald` was asked for) falls back to standard error with a warning there: a
/// daemon that guards storage does not refuse to start over its log.
pub fn init(section: &LoggingSection) -> LogSink {
    let wanted = choose(section.to);
    match wanted {
        LogSink::Journald => match tracing_journald::layer() {
            Ok(layer) => {
                let layer = layer.with_syslog_identifier(IDENTIFIER.to_string());
                if tracing_subscriber::registry()
                    .with(filter(section.level))
                    .with(layer)
                    .try_init()
                    .is_ok()
                {
                    return LogSink::Journald;
                }
            }
            Err(e) => eprintln!("iscsi-ha: cannot log to the journal ({e}); logging to stderr"),
        },
        LogSink::Syslog => {
            let (options, facility) = (
                syslog_tracing::Options::LOG_PID,
                syslog_tracing::Facility::Daemon,
            );
            match syslog_tracing::Syslog::new(c"iscsi-ha", options, facility) {
                Some(syslog) => {
                    let layer = tracing_subscriber::fmt::layer()
                        .with_writer(syslog)
                        .with_ansi(false)
                        .without_time()
                        .with_level(false)
                        .with_target(false);
                    if tracing_subscriber::registry()
                        .with(filter(section.level))
                        .with(layer)
                        .try_init()
                        .is_ok()
                    {
                        return LogSink::Syslog;
                    }
                }
                None => eprintln!("iscsi-ha: syslog is already open; logging to stderr"),
            }
        }
        LogSink::Stderr => {}
    }
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter(section.level))
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .try_init();
    LogSink::Stderr
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn explicit_targets_are_taken_as_given() {
        assert_eq!(choose(LogTarget::Stderr), LogSink::Stderr);
        assert_eq!(choose(LogTarget::Syslog), LogSink::Syslog);
        assert_eq!(choose(LogTarget::Journald), LogSink::Journald);
    }

    #[test]
    fn auto_prefers_the_journal_then_a_terminal_then_syslog() {
        let none = Surroundings {
            stderr_is_journal: false,
            stderr_is_terminal: false,
            journal_socket: false,
            syslog_socket: false,
        };
        assert_eq!(auto_choice(none), LogSink::Stderr);
        let syslog = Surroundings {
            syslog_socket: true,
            ..none
        };
        assert_eq!(auto_choice(syslog), LogSink::Syslog);
        let journal = Surroundings {
            journal_socket: true,
            ..syslog
        };
        assert_eq!(auto_choice(journal), LogSink::Journald);
        let by_hand = Surroundings {
            stderr_is_terminal: true,
            ..journal
        };
        assert_eq!(auto_choice(by_hand), LogSink::Stderr);
        let service = Surroundings {
            stderr_is_journal: true,
            ..by_hand
        };
        assert_eq!(auto_choice(service), LogSink::Journald);
    }
}
