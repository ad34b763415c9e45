//! The numbers of tgtd's management protocol: modes, operations and reply codes
//! (`usr/tgtadm.h`, `usr/tgtadm_error.h`, unchanged since tgt 1.0.30).

use std::fmt;

/// What a request is about (`enum tgtadm_mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mode {
    /// The daemon as a whole (`--mode system`).
    System,
    /// A target (`--mode target`).
    Target,
    /// A logical unit (`--mode logicalunit`).
    Device,
    /// A listening portal (`--mode portal`).
    Portal,
    /// A low-level driver (`--mode lld`).
    Lld,
    /// A session (`--mode session`).
    Session,
    /// A connection (`--mode conn`).
    Connection,
    /// A CHAP account (`--mode account`).
    Account,
    /// A number this adapter does not know (seen only when decoding).
    Other(u32),
}

impl Mode {
    /// The number on the wire.
    pub fn code(self) -> u32 {
        match self {
            Mode::System => 0,
            Mode::Target => 1,
            Mode::Device => 2,
            Mode::Portal => 3,
            Mode::Lld => 4,
            Mode::Session => 5,
            Mode::Connection => 6,
            Mode::Account => 7,
            Mode::Other(n) => n,
        }
    }

    /// The mode of a wire number.
    pub fn from_code(code: u32) -> Self {
        match code {
            0 => Mode::System,
            1 => Mode::Target,
            2 => Mode::Device,
            3 => Mode::Portal,
            4 => Mode::Lld,
            5 => Mode::Session,
            6 => Mode::Connection,
            7 => Mode::Account,
            n => Mode::Other(n),
        }
    }
}

/// What to do (`enum tgtadm_op`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    /// Create.
    New,
    /// Remove.
    Delete,
    /// List.
    Show,
    /// Add an access rule or account binding.
    Bind,
    /// Remove an access rule or account binding.
    Unbind,
    /// Change parameters.
    Update,
    /// Statistics.
    Stats,
    /// Start a driver.
    Start,
    /// Stop a driver.
    Stop,
    /// A number this adapter does not know (seen only when decoding).
    Other(u32),
}

impl Op {
    /// The number on the wire.
    pub fn code(self) -> u32 {
        match self {
            Op::New => 0,
            Op::Delete => 1,
            Op::Show => 2,
            Op::Bind => 3,
            Op::Unbind => 4,
            Op::Update => 5,
            Op::Stats => 6,
            Op::Start => 7,
            Op::Stop => 8,
            Op::Other(n) => n,
        }
    }

    /// The operation of a wire number.
    pub fn from_code(code: u32) -> Self {
        match code {
            0 => Op::New,
            1 => Op::Delete,
            2 => Op::Show,
            3 => Op::Bind,
            4 => Op::Unbind,
            5 => Op::Update,
            6 => Op::Stats,
            7 => Op::Start,
            8 => Op::Stop,
            n => Op::Other(n),
        }
    }
}

/// tgtd's answer code (`tgtadm_err`), with tgtadm's message for each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReplyCode {
    /// 0: success.
    Success,
    /// 1: unknown error.
    UnknownErr,
    /// 2: out of memory.
    NoMem,
    /// 3: can't find the driver.
    NoDriver,
    /// 4: can't find the target.
    NoTarget,
    /// 5: can't find the logical unit.
    NoLun,
    /// 6: can't find the session.
    NoSession,
    /// 7: can't find the connection.
    NoConnection,
    /// 8: can't find the binding.
    NoBinding,
    /// 9: this target already exists.
    TargetExist,
    /// 10: this logical unit number already exists.
    LunExist,
    /// 11: this binding already exists.
    BindingExist,
    /// 12: this access control rule already exists.
    AclExist,
    /// 13: this access control rule does not exist.
    AclNoExist,
    /// 14: this account already exists.
    UserExist,
    /// 15: can't find the account.
    NoUser,
    /// 16: too many accounts.
    TooManyUser,
    /// 17: invalid request.
    InvalidRequest,
    /// 18: this target already has an outgoing account.
    OutAccountExist,
    /// 19: this target is still active.
    TargetActive,
    /// 20: this logical unit is still active.
    LunActive,
    /// 21: this driver is busy.
    DriverActive,
    /// 22: this operation isn't supported.
    UnsupportedOperation,
    /// 23: unknown parameter.
    UnknownParam,
    /// 24: this device has Prevent Removal set.
    PreventRemoval,
    /// A code this adapter does not know.
    Other(u32),
}

const CODES: [ReplyCode; 25] = [
    ReplyCode::Success,
    ReplyCode::UnknownErr,
    ReplyCode::NoMem,
    ReplyCode::NoDriver,
    ReplyCode::NoTarget,
    ReplyCode::NoLun,
    ReplyCode::NoSession,
    ReplyCode::NoConnection,
    ReplyCode::NoBinding,
    ReplyCode::TargetExist,
    ReplyCode::LunExist,
    ReplyCode::BindingExist,
    ReplyCode::AclExist,
    ReplyCode::AclNoExist,
    ReplyCode::UserExist,
    ReplyCode::NoUser,
    ReplyCode::TooManyUser,
    ReplyCode::InvalidRequest,
    ReplyCode::OutAccountExist,
    ReplyCode::TargetActive,
    ReplyCode::LunActive,
    ReplyCode::DriverActive,
    ReplyCode::UnsupportedOperation,
    ReplyCode::UnknownParam,
    ReplyCode::PreventRemoval,
];

impl ReplyCode {
    /// The code of a wire number.
    pub fn from_code(code: u32) -> Self {
        usize::try_from(code)
            .ok()
            .and_then(|i| CODES.get(i).copied())
            .unwrap_or(ReplyCode::Other(code))
    }

    /// The number on the wire.
    pub fn code(self) -> u32 {
        if let ReplyCode::Other(n) = self {
            return n;
        }
        CODES
            .iter()
            .position(|c| *c == self)
            .and_then(|i| u32::try_from(i).ok())
            .unwrap_or(u32::MAX)
    }

    /// tgtadm's message for the code (`tgtadm_strerror`).
    pub fn message(self) -> &'static str {
        match self {
            ReplyCode::Success => "success",
            ReplyCode::UnknownErr => "unknown error",
            ReplyCode::NoMem => "out of memory",
            ReplyCode::NoDriver => "can't find the driver",
            ReplyCode::NoTarget => "can't find the target",
            ReplyCode::NoLun => "can't find the logical unit",
            ReplyCode::NoSession => "can't find the session",
            ReplyCode::NoConnection => "can't find the connection",
            ReplyCode::NoBinding => "can't find the binding",
            ReplyCode::TargetExist => "this target already exists",
            ReplyCode::LunExist => "this logical unit number already exists",
            ReplyCode::BindingExist => "this binding already exists",
            ReplyCode::AclExist => "this access control rule already exists",
            ReplyCode::AclNoExist => "this access control rule does not exist",
            ReplyCode::UserExist => "this account already exists",
            ReplyCode::NoUser => "can't find the account",
            ReplyCode::TooManyUser => "too many accounts",
            ReplyCode::InvalidRequest => "invalid request",
            ReplyCode::OutAccountExist => "this target already has an outgoing account",
            ReplyCode::TargetActive => "this target is still active",
            ReplyCode::LunActive => "this logical unit is still active",
            ReplyCode::DriverActive => "this driver is busy",
            ReplyCode::UnsupportedOperation => "this operation isn't supported",
            ReplyCode::UnknownParam => "unknown parameter",
            ReplyCode::PreventRemoval => "this device has Prevent Removal set",
            ReplyCode::Other(_) => "unknown error code",
        }
    }

    /// Whether the daemon refused because something is in use, so that the same request may
    /// succeed a moment later (I/O in flight, sessions still logged in).
    pub fn is_busy(self) -> bool {
        matches!(
            self,
            ReplyCode::TargetActive | ReplyCode::LunActive | ReplyCode::DriverActive
        )
    }
}

impl fmt::Display for ReplyCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (code {})", self.message(), self.code())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_with_tgt_numbers() {
        for n in 0..40 {
            assert_eq!(ReplyCode::from_code(n).code(), n);
            assert_eq!(Mode::from_code(n).code(), n);
            assert_eq!(Op::from_code(n).code(), n);
        }
        assert_eq!(ReplyCode::from_code(19), ReplyCode::TargetActive);
        assert_eq!(ReplyCode::from_code(20), ReplyCode::LunActive);
        assert_eq!(ReplyCode::from_code(24), ReplyCode::PreventRemoval);
        assert_eq!(ReplyCode::from_code(25), ReplyCode::Other(25));
        assert_eq!(Mode::Account.code(), 7);
        assert_eq!(Op::Stop.code(), 8);
    }

    #[test]
    fn messages_are_tgtadms() {
        assert_eq!(
            ReplyCode::InvalidRequest.to_string(),
            "invalid request (code 17)"
        );
        assert!(ReplyCode::LunActive.is_busy());
        assert!(!ReplyCode::NoTarget.is_busy());
    }
}
