//! The return code in a reply's DRBD header, classified as drbdsetup does: 101 (NO_ERROR) and
//! 1-4 (SS_SUCCESS, SS_NOTHING_TO_DO, SS_CW_SUCCESS, SS_CW_NO_NEED) succeed; 0 and negative
//! values are refused state changes (`enum drbd_state_rv`); 102 and above are `ERR_*` codes.

use std::fmt;

use crate::state::Dialect;

/// `NO_ERROR`.
pub const NO_ERROR: i32 = 101;

/// What a reply's return code means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplyCode {
    /// The request was carried out (or there was nothing to do).
    Success(i32),
    /// A state change was refused.
    StateRefused(StateRv),
    /// A configuration error.
    Error(ErrCode),
}

impl ReplyCode {
    /// Classifies a return code of the given dialect.
    pub fn classify(code: i32, dialect: Dialect) -> Self {
        match code {
            NO_ERROR | 1..=4 => ReplyCode::Success(code),
            c if c <= 0 => ReplyCode::StateRefused(StateRv::from_code(c, dialect)),
            c => ReplyCode::Error(ErrCode::from_code(c)),
        }
    }

    /// Whether the request succeeded.
    pub fn is_success(self) -> bool {
        matches!(self, ReplyCode::Success(_))
    }
}

/// A refused state change (`enum drbd_state_rv`, negative values).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StateRv {
    /// 0: SS_UNKNOWN_ERROR.
    UnknownError,
    /// -1: SS_TWO_PRIMARIES: the peer is Primary and two primaries are not allowed.
    TwoPrimaries,
    /// -2: SS_NO_UP_TO_DATE_DISK: no access to up-to-date data.
    NoUpToDateDisk,
    /// -4: SS_NO_LOCAL_DISK.
    NoLocalDisk,
    /// -5: SS_NO_REMOTE_DISK.
    NoRemoteDisk,
    /// -6: SS_CONNECTED_OUTDATES.
    ConnectedOutdates,
    /// -7: SS_PRIMARY_NOP: refusing to be Primary without at least one up-to-date disk.
    PrimaryNop,
    /// -8: SS_RESYNC_RUNNING.
    ResyncRunning,
    /// -9: SS_ALREADY_STANDALONE.
    AlreadyStandAlone,
    /// -10: SS_CW_FAILED_BY_PEER: the peer refused the cluster-wide change.
    CwFailedByPeer,
    /// -11: SS_IS_DISKLESS.
    IsDiskless,
    /// -12: SS_DEVICE_IN_USE: the device is open.
    DeviceInUse,
    /// -13: SS_NO_NET_CONFIG.
    NoNetConfig,
    /// -14: SS_NO_VERIFY_ALG.
    NoVerifyAlg,
    /// -15: SS_NEED_CONNECTION.
    NeedConnection,
    /// -16: SS_LOWER_THAN_OUTDATED.
    LowerThanOutdated,
    /// -17: SS_NOT_SUPPORTED.
    NotSupported,
    /// -18: SS_IN_TRANSIENT_STATE.
    InTransientState,
    /// -19: SS_CONCURRENT_ST_CHG.
    ConcurrentStateChange,
    /// -20: SS_O_VOL_PEER_PRI: another volume's peer is Primary.
    OtherVolumePeerPrimary,
    /// -21 in 8.4: SS_OUTDATE_WO_CONN.
    OutdateWithoutConnection,
    /// -21 in DRBD 9: SS_INTERRUPTED.
    Interrupted,
    /// Another value.
    Other(i32),
}

impl StateRv {
    /// Decodes a (non-positive) state-change result of the given dialect.
    pub fn from_code(code: i32, dialect: Dialect) -> Self {
        match code {
            0 => StateRv::UnknownError,
            -1 => StateRv::TwoPrimaries,
            -2 => StateRv::NoUpToDateDisk,
            -4 => StateRv::NoLocalDisk,
            -5 => StateRv::NoRemoteDisk,
            -6 => StateRv::ConnectedOutdates,
            -7 => StateRv::PrimaryNop,
            -8 => StateRv::ResyncRunning,
            -9 => StateRv::AlreadyStandAlone,
            -10 => StateRv::CwFailedByPeer,
            -11 => StateRv::IsDiskless,
            -12 => StateRv::DeviceInUse,
            -13 => StateRv::NoNetConfig,
            -14 => StateRv::NoVerifyAlg,
            -15 => StateRv::NeedConnection,
            -16 => StateRv::LowerThanOutdated,
            -17 => StateRv::NotSupported,
            -18 => StateRv::InTransientState,
            -19 => StateRv::ConcurrentStateChange,
            -20 => StateRv::OtherVolumePeerPrimary,
            -21 if dialect == Dialect::V84 => StateRv::OutdateWithoutConnection,
            -21 => StateRv::Interrupted,
            c => StateRv::Other(c),
        }
    }

    /// DRBD's constant name.
    pub fn name(self) -> String {
        let s = match self {
            StateRv::UnknownError => "SS_UNKNOWN_ERROR",
            StateRv::TwoPrimaries => "SS_TWO_PRIMARIES",
            StateRv::NoUpToDateDisk => "SS_NO_UP_TO_DATE_DISK",
            StateRv::NoLocalDisk => "SS_NO_LOCAL_DISK",
            StateRv::NoRemoteDisk => "SS_NO_REMOTE_DISK",
            StateRv::ConnectedOutdates => "SS_CONNECTED_OUTDATES",
            StateRv::PrimaryNop => "SS_PRIMARY_NOP",
            StateRv::ResyncRunning => "SS_RESYNC_RUNNING",
            StateRv::AlreadyStandAlone => "SS_ALREADY_STANDALONE",
            StateRv::CwFailedByPeer => "SS_CW_FAILED_BY_PEER",
            StateRv::IsDiskless => "SS_IS_DISKLESS",
            StateRv::DeviceInUse => "SS_DEVICE_IN_USE",
            StateRv::NoNetConfig => "SS_NO_NET_CONFIG",
            StateRv::NoVerifyAlg => "SS_NO_VERIFY_ALG",
            StateRv::NeedConnection => "SS_NEED_CONNECTION",
            StateRv::LowerThanOutdated => "SS_LOWER_THAN_OUTDATED",
            StateRv::NotSupported => "SS_NOT_SUPPORTED",
            StateRv::InTransientState => "SS_IN_TRANSIENT_STATE",
            StateRv::ConcurrentStateChange => "SS_CONCURRENT_ST_CHG",
            StateRv::OtherVolumePeerPrimary => "SS_O_VOL_PEER_PRI",
            StateRv::OutdateWithoutConnection => "SS_OUTDATE_WO_CONN",
            StateRv::Interrupted => "SS_INTERRUPTED",
            StateRv::Other(c) => return format!("state change result {c}"),
        };
        s.to_string()
    }
}

impl fmt::Display for StateRv {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}

/// A configuration error code (`enum drbd_ret_code`, 102 and above).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrCode {
    /// 124: ERR_DISK_CONFIGURED.
    DiskConfigured,
    /// 125: ERR_NET_CONFIGURED.
    NetConfigured,
    /// 126: ERR_MANDATORY_TAG: the kernel did not understand a mandatory attribute.
    MandatoryTag,
    /// 127: ERR_MINOR_INVALID: no such minor.
    MinorInvalid,
    /// 138: ERR_NO_DISK.
    NoDisk,
    /// 151: ERR_CONNECTED.
    Connected,
    /// 158: ERR_RES_NOT_KNOWN: no such resource.
    ResourceNotKnown,
    /// 159: ERR_RES_IN_USE.
    ResourceInUse,
    /// 160: ERR_MINOR_CONFIGURED.
    MinorConfigured,
    /// 161: ERR_MINOR_OR_VOLUME_EXISTS.
    MinorOrVolumeExists,
    /// 162: ERR_INVALID_REQUEST.
    InvalidRequest,
    /// Another code.
    Other(i32),
}

impl ErrCode {
    /// Decodes an error code.
    pub fn from_code(code: i32) -> Self {
        match code {
            124 => ErrCode::DiskConfigured,
            125 => ErrCode::NetConfigured,
            126 => ErrCode::MandatoryTag,
            127 => ErrCode::MinorInvalid,
            138 => ErrCode::NoDisk,
            151 => ErrCode::Connected,
            158 => ErrCode::ResourceNotKnown,
            159 => ErrCode::ResourceInUse,
            160 => ErrCode::MinorConfigured,
            161 => ErrCode::MinorOrVolumeExists,
            162 => ErrCode::InvalidRequest,
            c => ErrCode::Other(c),
        }
    }

    /// DRBD's constant name.
    pub fn name(self) -> String {
        let s = match self {
            ErrCode::DiskConfigured => "ERR_DISK_CONFIGURED",
            ErrCode::NetConfigured => "ERR_NET_CONFIGURED",
            ErrCode::MandatoryTag => "ERR_MANDATORY_TAG",
            ErrCode::MinorInvalid => "ERR_MINOR_INVALID",
            ErrCode::NoDisk => "ERR_NO_DISK",
            ErrCode::Connected => "ERR_CONNECTED",
            ErrCode::ResourceNotKnown => "ERR_RES_NOT_KNOWN",
            ErrCode::ResourceInUse => "ERR_RES_IN_USE",
            ErrCode::MinorConfigured => "ERR_MINOR_CONFIGURED",
            ErrCode::MinorOrVolumeExists => "ERR_MINOR_OR_VOLUME_EXISTS",
            ErrCode::InvalidRequest => "ERR_INVALID_REQUEST",
            ErrCode::Other(c) => return format!("error code {c}"),
        };
        s.to_string()
    }
}

impl fmt::Display for ErrCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classification_follows_drbdsetup() {
        assert!(ReplyCode::classify(101, Dialect::V84).is_success());
        assert!(ReplyCode::classify(1, Dialect::V84).is_success());
        assert!(ReplyCode::classify(4, Dialect::V84).is_success());
        assert_eq!(
            ReplyCode::classify(-1, Dialect::V84),
            ReplyCode::StateRefused(StateRv::TwoPrimaries)
        );
        assert_eq!(
            ReplyCode::classify(-12, Dialect::V84),
            ReplyCode::StateRefused(StateRv::DeviceInUse)
        );
        assert_eq!(
            ReplyCode::classify(127, Dialect::V84),
            ReplyCode::Error(ErrCode::MinorInvalid)
        );
        assert_eq!(
            ReplyCode::classify(0, Dialect::V84),
            ReplyCode::StateRefused(StateRv::UnknownError)
        );
    }

    #[test]
    fn minus_21_differs_between_dialects() {
        assert_eq!(
            StateRv::from_code(-21, Dialect::V84),
            StateRv::OutdateWithoutConnection
        );
        assert_eq!(StateRv::from_code(-21, Dialect::V9), StateRv::Interrupted);
    }
}
