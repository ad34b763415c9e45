//! Typed operations on one tgtd: each builds the request tgtadm would send (guards applied),
//! sends it, and parses the reply.

mod requests;

pub use requests::{LunBacking, LunSettings, State};

use crate::client::Client;
use crate::error::TgtError;
use crate::show::{self, ConnectionInfo, SystemInfo, TargetInfo};
use crate::wire::{AccountDirection, Request};

/// One tgtd, reached through its management socket.
#[derive(Debug, Clone)]
pub struct Tgt {
    client: Client,
}

impl Tgt {
    /// Operations over `client`.
    pub fn new(client: Client) -> Self {
        Self { client }
    }

    /// The underlying client.
    pub fn client(&self) -> &Client {
        &self.client
    }

    fn run(&self, request: Result<Request, crate::guard::GuardError>) -> Result<String, TgtError> {
        self.client.send(&request?)
    }

    /// `show system`.
    pub fn system_show(&self) -> Result<SystemInfo, TgtError> {
        let text = self.client.send(&Request::system_show())?;
        Ok(show::parse_system(&text))
    }

    /// Sets the daemon-wide login state.
    pub fn system_set_state(&self, state: State) -> Result<(), TgtError> {
        self.run(Request::system_set_state(state)).map(drop)
    }

    /// Asks tgtd to exit; refused (invalid request) while any target exists.
    pub fn system_delete(&self) -> Result<(), TgtError> {
        self.client.send(&Request::system_delete()).map(drop)
    }

    /// Every target with its LUNs, sessions, accounts and ACL.
    pub fn targets(&self) -> Result<Vec<TargetInfo>, TgtError> {
        let text = self.client.send(&Request::targets_show())?;
        let (targets, stray) = show::parse_targets(&text);
        if !stray.is_empty() {
            tracing::debug!(?stray, "unrecognised lines in tgtd's target list");
        }
        Ok(targets)
    }

    /// A target's iSCSI parameters (`MaxRecvDataSegmentLength=8192`...).
    pub fn target_params(&self, tid: i64) -> Result<Vec<(String, String)>, TgtError> {
        let text = self.run(Request::target_params_show(tid))?;
        Ok(show::parse_params(&text).0)
    }

    /// Creates a target (ready at once, with no LUN but the controller and no ACL).
    pub fn target_new(&self, tid: i64, name: &str) -> Result<(), TgtError> {
        self.run(Request::target_new(tid, name)).map(drop)
    }

    /// Deletes a target; with `force`, also while sessions are logged in (they are closed).
    pub fn target_delete(&self, tid: i64, force: bool) -> Result<(), TgtError> {
        self.run(Request::target_delete(tid, force)).map(drop)
    }

    /// Sets a target's login state.
    pub fn target_set_state(&self, tid: i64, state: State) -> Result<(), TgtError> {
        self.run(Request::target_set_state(tid, state)).map(drop)
    }

    /// Sets one target parameter (an iSCSI key, `nop_interval`, `nop_count`...).
    pub fn target_update(&self, tid: i64, key: &str, value: &str) -> Result<(), TgtError> {
        self.run(Request::target_update(tid, key, value)).map(drop)
    }

    /// Adds a logical unit.
    pub fn lun_new(&self, tid: i64, lun: u64, backing: &LunBacking) -> Result<(), TgtError> {
        self.run(Request::lun_new(tid, lun, backing)).map(drop)
    }

    /// Removes a logical unit (refused while I/O is queued on it).
    pub fn lun_delete(&self, tid: i64, lun: u64) -> Result<(), TgtError> {
        self.run(Request::lun_delete(tid, lun)).map(drop)
    }

    /// Changes a logical unit's identity or read-only flag.
    pub fn lun_update(&self, tid: i64, lun: u64, settings: &LunSettings) -> Result<(), TgtError> {
        self.run(Request::lun_update(tid, lun, settings)).map(drop)
    }

    /// Allows an initiator address range (normalised; see [`Request::acl_bind_address`]).
    pub fn acl_bind_address(&self, tid: i64, address: &str) -> Result<(), TgtError> {
        self.run(Request::acl_bind_address(tid, address)).map(drop)
    }

    /// Allows every initiator address (`ALL`).
    pub fn acl_bind_all(&self, tid: i64) -> Result<(), TgtError> {
        self.run(Request::acl_bind_all(tid)).map(drop)
    }

    /// Removes an address rule as tgtd shows it.
    pub fn acl_unbind_address(&self, tid: i64, entry: &str) -> Result<(), TgtError> {
        self.run(Request::acl_unbind_address(tid, entry)).map(drop)
    }

    /// Allows an initiator name.
    pub fn acl_bind_name(&self, tid: i64, name: &str) -> Result<(), TgtError> {
        self.run(Request::acl_bind_name(tid, name)).map(drop)
    }

    /// Removes a name rule as tgtd shows it.
    pub fn acl_unbind_name(&self, tid: i64, name: &str) -> Result<(), TgtError> {
        self.run(Request::acl_unbind_name(tid, name)).map(drop)
    }

    /// Creates a CHAP account.
    pub fn account_new(&self, user: &str, secret: &str) -> Result<(), TgtError> {
        self.run(Request::account_new(user, secret)).map(drop)
    }

    /// Deletes a CHAP account (tgtd unbinds it everywhere first).
    pub fn account_delete(&self, user: &str) -> Result<(), TgtError> {
        self.run(Request::account_delete(user)).map(drop)
    }

    /// Binds an account to a target.
    pub fn account_bind(
        &self,
        tid: i64,
        user: &str,
        direction: AccountDirection,
    ) -> Result<(), TgtError> {
        self.run(Request::account_bind(tid, user, direction))
            .map(drop)
    }

    /// Unbinds an account from a target.
    pub fn account_unbind(
        &self,
        tid: i64,
        user: &str,
        direction: AccountDirection,
    ) -> Result<(), TgtError> {
        self.run(Request::account_unbind(tid, user, direction))
            .map(drop)
    }

    /// Every account's user name.
    pub fn accounts(&self) -> Result<Vec<String>, TgtError> {
        let text = self.client.send(&Request::accounts_show())?;
        Ok(show::parse_accounts(&text).0)
    }

    /// A target's connections.
    pub fn connections(&self, tid: i64) -> Result<Vec<ConnectionInfo>, TgtError> {
        let text = self.run(Request::connections_show(tid))?;
        Ok(show::parse_connections(&text).0)
    }

    /// Drops one connection.
    pub fn connection_delete(&self, tid: i64, sid: u64, cid: u32) -> Result<(), TgtError> {
        self.run(Request::connection_delete(tid, sid, cid))
            .map(drop)
    }
}
