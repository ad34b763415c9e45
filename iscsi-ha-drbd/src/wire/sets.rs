//! The typed attribute sets this adapter reads and writes. Field numbers and flags follow the
//! kernel's `drbd_genl.h`; DRBD 9 additions are listed where they share a set.

use super::attr::{drbd_set, DRBD_GENLA_F_MANDATORY as M};

drbd_set! {
    /// `DRBD_NLA_CFG_REPLY`: the kernel's human-readable explanation of a refusal.
    pub struct CfgReply = "CFG_REPLY" {
        /// Free text.
        info_text: String = 1, M;
    }
}

drbd_set! {
    /// `DRBD_NLA_CFG_CONTEXT`: which object a request addresses (or a reply/event is about).
    pub struct CfgContext = "CFG_CONTEXT" {
        /// Volume number within the resource.
        volume: u32 = 1, M;
        /// Resource name (at most 127 bytes plus NUL).
        resource_name: String = 2, M;
        /// This node's replication address (raw `sockaddr_in`/`sockaddr_in6`).
        my_addr: Vec<u8> = 3, M;
        /// The peer's replication address.
        peer_addr: Vec<u8> = 4, M;
        /// DRBD 9: connection name.
        conn_name: String = 5, M;
        /// DRBD 9: the peer's node id.
        peer_node_id: u32 = 6, M;
    }
}

drbd_set! {
    /// `DRBD_NLA_SET_ROLE_PARMS`: options of PRIMARY/SECONDARY.
    pub struct SetRoleParms = "SET_ROLE_PARMS" {
        /// `--force`: 8.4 `assume_uptodate`, DRBD 9 `force` (same number).
        assume_uptodate: bool = 1, M;
    }
}

drbd_set! {
    /// `DRBD_NLA_DISCONNECT_PARMS`.
    pub struct DisconnectParms = "DISCONNECT_PARMS" {
        /// Disconnect without waiting for the peer.
        force_disconnect: bool = 1, M;
    }
}

drbd_set! {
    /// `DRBD_NLA_STATE_INFO` (8.4): a minor's state word, sizes and counters.
    pub struct StateInfo = "STATE_INFO" {
        /// Why this was sent (see [`SibReason`](crate::wire::SibReason)).
        sib_reason: u32 = 1, M;
        /// The state word now (see [`StateWord`](crate::state::StateWord)).
        current_state: u32 = 2, 0;
        /// Device size in 512-byte sectors.
        capacity: u64 = 3, M;
        /// Exposed data UUID.
        ed_uuid: u64 = 4, M;
        /// State word before the change (state-change events).
        prev_state: u32 = 5, M;
        /// State word after the change (state-change events).
        new_state: u32 = 6, M;
        /// The four data-generation UUIDs (32 bytes).
        uuids: Vec<u8> = 7, M;
        /// Metadata flags.
        disk_flags: u32 = 8, M;
        /// Bitmap size in bits (4 KiB each).
        bits_total: u64 = 9, M;
        /// Bits marked out of sync.
        bits_oos: u64 = 10, M;
        /// Bits to resync in the running resync/verify.
        bits_rs_total: u64 = 11, M;
        /// Bits that failed to resync.
        bits_rs_failed: u64 = 12, M;
        /// Name of the user-mode helper (helper events).
        helper: String = 13, M;
        /// The helper's exit code.
        helper_exit_code: u32 = 14, M;
        /// KiB sent over the network (counter, in sectors).
        send_cnt: u64 = 15, 0;
        /// Received over the network.
        recv_cnt: u64 = 16, 0;
        /// Read from the local disk.
        read_cnt: u64 = 17, 0;
        /// Written to the local disk.
        writ_cnt: u64 = 18, 0;
        /// Activity-log writes.
        al_writ_cnt: u64 = 19, 0;
        /// Bitmap writes.
        bm_writ_cnt: u64 = 20, 0;
        /// Application bios in flight.
        ap_bio_cnt: u32 = 21, 0;
        /// Application requests pending.
        ap_pending_cnt: u32 = 22, 0;
        /// Resync requests pending.
        rs_pending_cnt: u32 = 23, 0;
    }
}

drbd_set! {
    /// `DRBD_NLA_RESOURCE_INFO` (events2).
    pub struct ResourceInfo = "RESOURCE_INFO" {
        /// The resource's role (role enum).
        res_role: u32 = 1, 0;
        /// I/O suspended by the user.
        res_susp: bool = 2, 0;
        /// I/O suspended for lack of data.
        res_susp_nod: bool = 3, 0;
        /// I/O suspended by fencing.
        res_susp_fen: bool = 4, 0;
        /// DRBD 9: suspended for lack of quorum.
        res_susp_quorum: bool = 5, 0;
        /// DRBD 9: failing I/O.
        res_fail_io: bool = 6, 0;
    }
}

drbd_set! {
    /// `DRBD_NLA_DEVICE_INFO` (events2).
    pub struct DeviceInfo = "DEVICE_INFO" {
        /// Local disk state (dialect's disk enum).
        dev_disk_state: u32 = 1, 0;
        /// DRBD 9: diskless on purpose.
        is_intentional_diskless: bool = 2, 0;
        /// DRBD 9: the device has quorum.
        dev_has_quorum: bool = 3, 0;
    }
}

drbd_set! {
    /// `DRBD_NLA_CONNECTION_INFO` (events2).
    pub struct ConnectionInfo = "CONNECTION_INFO" {
        /// Connection state (dialect's connection enum).
        conn_connection_state: u32 = 1, 0;
        /// The peer's role.
        conn_role: u32 = 2, 0;
    }
}

drbd_set! {
    /// `DRBD_NLA_PEER_DEVICE_INFO` (events2).
    pub struct PeerDeviceInfo = "PEER_DEVICE_INFO" {
        /// Replication state (8.4: the connection enum; 9: the repl-state enum).
        peer_repl_state: u32 = 1, 0;
        /// The peer's disk state.
        peer_disk_state: u32 = 2, 0;
        /// Resync paused by the user (8.4: u32, DRBD 9: flag).
        peer_resync_susp_user: bool = 3, 0;
        /// Resync paused by the peer.
        peer_resync_susp_peer: bool = 4, 0;
        /// Resync paused by a dependency.
        peer_resync_susp_dependency: bool = 5, 0;
    }
}

drbd_set! {
    /// `DRBD_NLA_NOTIFICATION_HEADER` (events2).
    pub struct NotificationHeader = "NOTIFICATION_HEADER" {
        /// `NOTIFY_*` type, possibly ORed with `NOTIFY_CONTINUES`.
        nh_type: u32 = 1, M;
    }
}

drbd_set! {
    /// `DRBD_NLA_HELPER` (events2 helper calls).
    pub struct HelperInfo = "HELPER" {
        /// The helper's name (e.g. `fence-peer`).
        helper_name: String = 1, M;
        /// Its exit status (on the response).
        helper_status: u32 = 2, M;
    }
}

drbd_set! {
    /// `DRBD_NLA_DEVICE_STATISTICS` (events2 dumps and notifications).
    pub struct DeviceStatistics = "DEVICE_STATISTICS" {
        /// Device size, sectors.
        dev_size: u64 = 1, 0;
        /// Read, sectors.
        dev_read: u64 = 2, 0;
        /// Written, sectors.
        dev_write: u64 = 3, 0;
        /// Activity-log writes.
        dev_al_writes: u64 = 4, 0;
        /// Bitmap writes.
        dev_bm_writes: u64 = 5, 0;
        /// Application requests in progress.
        dev_upper_pending: u32 = 6, 0;
        /// Backing-device requests in progress.
        dev_lower_pending: u32 = 7, 0;
    }
}

drbd_set! {
    /// `DRBD_NLA_PEER_DEVICE_STATISTICS` (events2 dumps and notifications).
    pub struct PeerDeviceStatistics = "PEER_DEVICE_STATISTICS" {
        /// Received, sectors.
        peer_dev_received: u64 = 1, 0;
        /// Sent, sectors.
        peer_dev_sent: u64 = 2, 0;
        /// Requests pending.
        peer_dev_pending: u32 = 3, 0;
        /// Requests unacknowledged.
        peer_dev_unacked: u32 = 4, 0;
        /// Out of sync with this peer, sectors.
        peer_dev_out_of_sync: u64 = 5, 0;
        /// Failed to resync, sectors.
        peer_dev_resync_failed: u64 = 6, 0;
        /// The bitmap UUID.
        peer_dev_bitmap_uuid: u64 = 7, 0;
        /// Flags.
        peer_dev_flags: u32 = 9, 0;
        /// DRBD 9: sectors to resync in the running resync.
        peer_dev_rs_total: u64 = 10, 0;
    }
}
