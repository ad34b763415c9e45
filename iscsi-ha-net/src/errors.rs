//! Turning errno values into the port's typed errors.

use std::io;

use iscsi_ha_core::ports::FloatingIpError;

use crate::rtnl::NetlinkError;

/// Maps an OS error met while doing `what` on `interface` to the port's error.
pub(crate) fn from_io(error: &io::Error, interface: &str, what: &str) -> FloatingIpError {
    match error.raw_os_error() {
        Some(libc::EPERM | libc::EACCES) => FloatingIpError::PermissionDenied(
            format!("{what} on {interface} needs root or CAP_NET_ADMIN and CAP_NET_RAW: {error}")
                .into(),
        ),
        Some(libc::ENODEV | libc::ENXIO) => FloatingIpError::NoSuchInterface(interface.to_owned()),
        Some(libc::ENETDOWN) => FloatingIpError::InterfaceDown(interface.to_owned()),
        _ => FloatingIpError::Io(format!("{what} on {interface}: {error}").into()),
    }
}

/// Maps an rtnetlink failure met while doing `what` on `interface` to the port's error.
pub(crate) fn from_netlink(error: &NetlinkError, interface: &str, what: &str) -> FloatingIpError {
    match error {
        NetlinkError::Refused { source, .. } | NetlinkError::Io(source) => {
            from_io(source, interface, what)
        }
        NetlinkError::Malformed(m) => {
            FloatingIpError::Malformed(format!("{what} on {interface}: {m}").into())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errnos_become_typed_errors() {
        let e = |n| io::Error::from_raw_os_error(n);
        assert!(matches!(
            from_io(&e(libc::EPERM), "eth0", "add"),
            FloatingIpError::PermissionDenied(_)
        ));
        assert_eq!(
            from_io(&e(libc::ENODEV), "eth9", "add"),
            FloatingIpError::NoSuchInterface("eth9".into())
        );
        assert_eq!(
            from_io(&e(libc::ENETDOWN), "eth0", "send"),
            FloatingIpError::InterfaceDown("eth0".into())
        );
        assert!(matches!(
            from_io(&e(libc::EIO), "eth0", "send"),
            FloatingIpError::Io(_)
        ));
        assert!(matches!(
            from_netlink(&NetlinkError::Malformed("x".into()), "eth0", "list"),
            FloatingIpError::Malformed(_)
        ));
    }
}
