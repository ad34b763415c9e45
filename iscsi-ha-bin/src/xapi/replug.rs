//! The PBD re-plug: which PBDs are ours, and the chain of `xe` calls that plugs them.
//!
//! A PBD is ours when its SR is of type `lvmoiscsi` and its `device-config` names the VIP's
//! address among its `target` addresses (a comma list; a host name is not resolved, since that
//! could block, and is reported instead) and this target's IQN (or `*`, every target at that
//! portal) as `targetIQN`. Only unattached PBDs are plugged, on every host of the pool: XAPI
//! carries out `pbd-plug` on the PBD's own host whichever host asks, as the original's
//! auto_plug_pbd relied on. An attached PBD is left alone; unplugging it would cut off the VMs
//! using it.
//!
//! The chain: `xe sr-list params=uuid,type`; for each lvmoiscsi SR, `xe pbd-list sr-uuid=<sr>
//! params=uuid,host-uuid,currently-attached,device-config`; for each PBD of ours that is not
//! attached, `xe pbd-plug uuid=<pbd>`. One call at a time, each bounded by the `xe` timeout.

use super::records::{is_uuid, parse_map, parse_records, XeRecord};
use super::xe::{Xe, XeCall};
use std::collections::{BTreeMap, VecDeque};
use std::net::IpAddr;
use std::os::fd::BorrowedFd;
use std::time::Instant;

/// The SR type of LVM over iSCSI (the original plugged these only).
const LVM_OVER_ISCSI: &str = "lvmoiscsi";
const SR_FIELDS: [&str; 2] = ["uuid", "type"];
const PBD_FIELDS: [&str; 4] = ["uuid", "host-uuid", "currently-attached", "device-config"];

/// What a re-plug looks for, and with which `xe`.
#[derive(Debug, Clone)]
pub struct ReplugSpec {
    /// The `xe` program and its timeout.
    pub xe: Xe,
    /// The VIP's address: the `target` our SRs use.
    pub vip: IpAddr,
    /// This target's IQN.
    pub iqn: String,
}

/// A PBD of ours, by its UUID, its host's and its SR's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PbdPlugged {
    /// The PBD.
    pub pbd: String,
    /// The host it connects.
    pub host: String,
    /// Its SR.
    pub sr: String,
}

/// What one re-plug found and did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReplugReport {
    /// lvmoiscsi SRs in the pool.
    pub iscsi_srs: usize,
    /// Of those, the SRs with at least one PBD of ours.
    pub our_srs: usize,
    /// PBDs of ours that were attached already.
    pub attached: usize,
    /// PBDs plugged now.
    pub plugged: Vec<PbdPlugged>,
    /// PBDs of ours whose plug failed.
    pub not_plugged: Vec<PbdPlugged>,
    /// Every failure, one line each.
    pub failures: Vec<String>,
    /// What an operator may want to know although nothing failed (a target given by name).
    pub notes: Vec<String>,
}

impl ReplugReport {
    /// Nothing failed.
    pub fn succeeded(&self) -> bool {
        self.failures.is_empty()
    }

    /// One line for status and logs.
    pub fn summary(&self) -> String {
        let found = format!(
            "{} of {} lvmoiscsi SRs use this target; {} PBDs already attached",
            self.our_srs, self.iscsi_srs, self.attached
        );
        let plugged = match self.plugged.len() {
            0 => "nothing to plug".to_string(),
            n => format!("plugged {n} PBDs"),
        };
        match self.failures.as_slice() {
            [] => format!("{plugged} ({found})"),
            [one] => format!("failed: {one} ({plugged}; {found})"),
            [first, rest @ ..] => format!(
                "failed: {first} (and {} more; {plugged}; {found})",
                rest.len()
            ),
        }
    }

    /// What an operator runs by hand after a failure.
    pub fn by_hand(&self) -> String {
        if self.not_plugged.is_empty() {
            return "list the PBDs of the SRs on the VIP that are not attached (xe pbd-list currently-attached=false params=uuid,sr-uuid,host-uuid,device-config) and plug each with xe pbd-plug uuid=<pbd>".into();
        }
        self.not_plugged
            .iter()
            .map(|p| format!("xe pbd-plug uuid={}", p.pbd))
            .collect::<Vec<_>>()
            .join("; ")
    }
}

/// Whether a PBD's `device-config` points at us.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Points {
    /// At the VIP, with our IQN or `*`.
    Here,
    /// Elsewhere (another address, another IQN, no iSCSI keys).
    Elsewhere,
    /// Our IQN at a target given by host name, which is not resolved.
    ByName(String),
}

/// Reads `target` and `targetIQN` from a PBD's device-config.
pub fn points_at(config: &BTreeMap<String, String>, vip: IpAddr, iqn: &str) -> Points {
    let (Some(targets), Some(iqns)) = (config.get("target"), config.get("targetIQN")) else {
        return Points::Elsewhere;
    };
    let iqn_ours = iqns
        .split(',')
        .map(str::trim)
        .any(|i| i == "*" || i.eq_ignore_ascii_case(iqn));
    if !iqn_ours {
        return Points::Elsewhere;
    }
    let mut by_name = None;
    for target in targets.split(',').map(str::trim) {
        let bare = target.trim_start_matches('[').trim_end_matches(']');
        match bare.parse::<IpAddr>() {
            Ok(address) if address == vip => return Points::Here,
            Ok(_) => {}
            Err(_) if !bare.is_empty() => by_name = Some(bare.to_string()),
            Err(_) => {}
        }
    }
    by_name.map_or(Points::Elsewhere, Points::ByName)
}

#[derive(Debug)]
enum Call {
    SrList,
    PbdList(String),
    Plug(PbdPlugged),
}

/// A re-plug under way: one `xe` child at a time, polled by the caller.
#[derive(Debug)]
pub struct ReplugRun {
    spec: ReplugSpec,
    call: Option<(Call, XeCall)>,
    srs: VecDeque<String>,
    plugs: VecDeque<PbdPlugged>,
    report: ReplugReport,
    reported: bool,
}

impl ReplugRun {
    /// Starts the chain (its first `xe` call) without waiting.
    pub fn start(spec: ReplugSpec) -> Self {
        let mut run = Self {
            spec,
            call: None,
            srs: VecDeque::new(),
            plugs: VecDeque::new(),
            report: ReplugReport::default(),
            reported: false,
        };
        run.begin(Call::SrList);
        run
    }

    /// The running `xe`'s output, while it has one.
    pub fn fd(&self) -> Option<BorrowedFd<'_>> {
        self.call.as_ref().and_then(|(_, c)| c.fd())
    }

    /// When [`ReplugRun::advance`] must be called even if nothing is readable (the running
    /// call's timeout); now once the report is ready.
    pub fn due(&self) -> Instant {
        self.call
            .as_ref()
            .map_or_else(Instant::now, |(_, c)| c.due())
    }

    /// Reads without blocking and starts the next call when one ends; the report once the
    /// chain is over (once; `None` after that and while a call runs).
    pub fn advance(&mut self) -> Option<ReplugReport> {
        loop {
            let Some((_, xe)) = self.call.as_mut() else {
                if self.reported {
                    return None;
                }
                self.reported = true;
                return Some(self.report.clone());
            };
            let result = xe.advance()?;
            let Some((call, xe)) = self.call.take() else {
                continue;
            };
            match result {
                Ok(text) => self.take_reply(call, xe.command(), &text),
                Err(e) => {
                    if let Call::Plug(p) = call {
                        self.report.not_plugged.push(p);
                    }
                    self.report.failures.push(e.to_string());
                }
            }
            if let Some(next) = self.next_call() {
                self.begin(next);
            }
        }
    }

    /// Runs the chain to its end, blocking (each call at most the timeout): one-shot callers.
    pub fn wait(mut self) -> ReplugReport {
        loop {
            if let Some(report) = self.advance() {
                return report;
            }
            if let Some((_, xe)) = &self.call {
                xe.block_until_due();
            }
        }
    }

    fn next_call(&mut self) -> Option<Call> {
        if let Some(sr) = self.srs.pop_front() {
            return Some(Call::PbdList(sr));
        }
        self.plugs.pop_front().map(Call::Plug)
    }

    /// Starts `call`; one that cannot start is a failure, and the next is tried.
    fn begin(&mut self, mut call: Call) {
        loop {
            let args: Vec<String> = match &call {
                Call::SrList => vec!["sr-list".into(), format!("params={}", SR_FIELDS.join(","))],
                Call::PbdList(sr) => vec![
                    "pbd-list".into(),
                    format!("sr-uuid={sr}"),
                    format!("params={}", PBD_FIELDS.join(",")),
                ],
                Call::Plug(p) => vec!["pbd-plug".into(), format!("uuid={}", p.pbd)],
            };
            match self.spec.xe.start(&args) {
                Ok(xe) => {
                    self.call = Some((call, xe));
                    return;
                }
                Err(e) => {
                    if let Call::Plug(p) = call {
                        self.report.not_plugged.push(p);
                    }
                    self.report.failures.push(e.to_string());
                    match self.next_call() {
                        Some(next) => call = next,
                        None => return,
                    }
                }
            }
        }
    }

    fn take_reply(&mut self, call: Call, command: &str, text: &str) {
        let refused = |e: String| format!("{command}: reply refused: {e}");
        match call {
            Call::SrList => match self.iscsi_srs(text) {
                Ok(srs) => {
                    self.report.iscsi_srs = srs.len();
                    self.srs.extend(srs);
                }
                Err(e) => self.report.failures.push(refused(e)),
            },
            Call::PbdList(sr) => match self.our_pbds(&sr, text) {
                Ok((attached, unattached, names)) => {
                    if attached + unattached.len() > 0 {
                        self.report.our_srs += 1;
                    }
                    self.report.attached += attached;
                    self.plugs.extend(unattached);
                    self.report.notes.extend(names.into_iter().map(|name| {
                        format!("SR {sr} uses this IQN at target {name:?}, a host name: iscsi-ha matches the VIP's address only and leaves it alone")
                    }));
                }
                Err(e) => self.report.failures.push(refused(e)),
            },
            Call::Plug(p) => self.report.plugged.push(p),
        }
    }

    fn iscsi_srs(&self, text: &str) -> Result<Vec<String>, String> {
        let records = parse_records(text, &SR_FIELDS).map_err(|e| e.to_string())?;
        let mut srs = Vec::new();
        for (i, r) in records.iter().enumerate() {
            let uuid = checked_uuid(r, "uuid", i)?;
            if r.get("type") == LVM_OVER_ISCSI {
                srs.push(uuid);
            }
        }
        Ok(srs)
    }

    /// The SR's PBDs that point here: how many are attached, those that are not, and the host
    /// names that stood for a target with our IQN.
    fn our_pbds(
        &self,
        sr: &str,
        text: &str,
    ) -> Result<(usize, Vec<PbdPlugged>, Vec<String>), String> {
        let records = parse_records(text, &PBD_FIELDS).map_err(|e| e.to_string())?;
        let (mut attached, mut unattached, mut names) = (0, Vec::new(), Vec::new());
        for (i, r) in records.iter().enumerate() {
            let pbd = checked_uuid(r, "uuid", i)?;
            let host = checked_uuid(r, "host-uuid", i)?;
            let is_attached = match r.get("currently-attached") {
                "true" => true,
                "false" => false,
                _ => {
                    return Err(format!(
                        "record {}: currently-attached is not true or false",
                        i + 1
                    ))
                }
            };
            let config = parse_map(
                r.get("device-config"),
                &format!("PBD {pbd}'s device-config"),
            )
            .map_err(|e| e.to_string())?;
            match points_at(&config, self.spec.vip, &self.spec.iqn) {
                Points::Here if is_attached => attached += 1,
                Points::Here => unattached.push(PbdPlugged {
                    pbd,
                    host,
                    sr: sr.to_string(),
                }),
                Points::ByName(name) => {
                    if !names.contains(&name) {
                        names.push(name);
                    }
                }
                Points::Elsewhere => {}
            }
        }
        Ok((attached, unattached, names))
    }
}

fn checked_uuid(record: &XeRecord, field: &str, index: usize) -> Result<String, String> {
    let value = record.get(field);
    if is_uuid(value) {
        Ok(value.to_string())
    } else {
        Err(format!("record {}: {field} is not a UUID", index + 1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn a_pbd_points_here_with_the_vips_address_and_our_iqn_or_a_star() {
        let vip: IpAddr = "10.10.10.3".parse().unwrap();
        let iqn = "iqn.2024-01.com.example:storage";
        let at = |target: &str, target_iqn: &str| {
            points_at(
                &config(&[
                    ("target", target),
                    ("targetIQN", target_iqn),
                    ("port", "3260"),
                ]),
                vip,
                iqn,
            )
        };
        assert_eq!(at("10.10.10.3", iqn), Points::Here);
        assert_eq!(
            at("10.10.10.3", "IQN.2024-01.COM.EXAMPLE:STORAGE"),
            Points::Here
        );
        assert_eq!(at("10.10.10.3", "*"), Points::Here);
        assert_eq!(at("10.10.20.3,10.10.10.3", iqn), Points::Here);
        assert_eq!(at("10.10.10.4", iqn), Points::Elsewhere);
        assert_eq!(
            at("10.10.10.3", "iqn.2024-01.com.example:other"),
            Points::Elsewhere
        );
        assert_eq!(at("san.example", iqn), Points::ByName("san.example".into()));
        assert_eq!(at("san.example", "iqn.x:y"), Points::Elsewhere);
        assert_eq!(
            points_at(
                &config(&[("server", "10.10.10.3"), ("serverpath", "/nfs")]),
                vip,
                iqn
            ),
            Points::Elsewhere
        );
        let v6: IpAddr = "fd00::3".parse().unwrap();
        assert_eq!(
            points_at(
                &config(&[("target", "[fd00::3]"), ("targetIQN", iqn)]),
                v6,
                iqn
            ),
            Points::Here
        );
    }
}
