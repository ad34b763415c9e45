//! Checks that need more than one key, or more than serde's types, and builds the domain values.

use super::error::{line_column, ConfigError, ConfigErrors};
use super::locate::{locate, KeyPath};
use super::schema::{ConfigFile, RoleSourceKind, SecretsFile, TargetBackend, TargetSection};
use super::{Config, Source};
use crate::secret::Secret;
use crate::target::{Access, ChapCredentials, LunId, LunIdentity, LunSpec, TargetSpec};
use crate::vip::Vip;
use std::collections::BTreeSet;
use std::net::IpAddr;
use std::time::Duration;
use toml_edit::ImDocument;

struct Problems<'a> {
    source: Source<'a>,
    doc: Option<ImDocument<&'a str>>,
    found: Vec<ConfigError>,
    warnings: Vec<ConfigError>,
}

impl<'a> Problems<'a> {
    fn new(source: Source<'a>) -> Self {
        Self {
            source,
            doc: ImDocument::parse(source.text).ok(),
            found: Vec::new(),
            warnings: Vec::new(),
        }
    }

    fn add(&mut self, path: &KeyPath, message: impl Into<String>) {
        let found = self.at(path, message.into());
        self.found.push(found);
    }

    /// Records something that does not stop the daemon but that the operator should know.
    fn warn(&mut self, path: &KeyPath, message: impl Into<String>) {
        let warning = self.at(path, message.into());
        self.warnings.push(warning);
    }

    fn at(&self, path: &KeyPath, message: String) -> ConfigError {
        let span = self.doc.as_ref().and_then(|doc| locate(doc, path));
        let (line, column) = match span {
            Some(span) => {
                let (l, c) = line_column(self.source.text, span.start);
                (Some(l), Some(c))
            }
            None => (None, None),
        };
        ConfigError {
            origin: self.source.origin.to_string(),
            key: path.to_string(),
            line,
            column,
            message,
        }
    }
}

/// Checks every value whose type serde checks one at a time (names, ranges, durations), so
/// that a file with several such mistakes gets all of them at once rather than only serde's
/// first. Only string values are checked: any other type is serde's to report.
pub(super) fn check_values(source: Source<'_>) -> Vec<ConfigError> {
    let mut p = Problems::new(source);
    // A second parse: `p` keeps its own to locate what is found.
    let Ok(doc) = ImDocument::parse(source.text) else {
        return Vec::new();
    };
    let check = |path: KeyPath, p: &mut Problems<'_>, f: Check<'_>| {
        let found = locate_str(&doc, &path);
        if let Some(message) = found.and_then(|text| f(&text)) {
            p.add(&path, message);
        }
    };
    let iqn = |t: &str| why(crate::iqn::Iqn::new(t));
    let resource = |t: &str| why(crate::resource::ResourceName::new(t));
    let subnet = |t: &str| why(t.parse::<crate::subnet::Subnet>());
    let interface = |t: &str| why(crate::vip::InterfaceName::new(t));
    let duration = |t: &str| why(super::ConfigDuration::try_from(t.to_string()));
    let arrays: [(&[&str], Check<'_>); 3] = [
        (&["replication", "resources"], &resource),
        (&["target", "access", "initiator_names"], &iqn),
        (&["target", "access", "initiators"], &subnet),
    ];
    for (keys, f) in arrays {
        let at = KeyPath::keys(keys);
        for i in 0..array_len(&doc, &at) {
            check(at.index(i), &mut p, f);
        }
    }
    check(KeyPath::keys(&["target", "iqn"]), &mut p, &iqn);
    check(KeyPath::keys(&["vip", "interface"]), &mut p, &interface);
    let period = |t: &str| why(super::PeriodOrOff::try_from(t.to_string()));
    check(KeyPath::keys(&["vip", "refresh_interval"]), &mut p, &period);
    for keys in [
        ["role", "timeout"],
        ["vip", "announce_interval"],
        ["vip", "refresh_after"],
        ["vip", "probe_timeout"],
        ["monitor", "scan_interval"],
        ["monitor", "start_window"],
        ["monitor", "retry_delay"],
        ["alerts", "screen"],
        ["ha_lizard", "refresh"],
    ] {
        check(KeyPath::keys(&keys), &mut p, &duration);
    }
    p.found
}

/// A value check: why the text is refused, or `None`.
type Check<'f> = &'f dyn Fn(&str) -> Option<String>;

fn why<T, E: std::fmt::Display>(parsed: Result<T, E>) -> Option<String> {
    parsed.err().map(|e| e.to_string())
}

/// The string at `path`, if there is one.
fn locate_str(doc: &ImDocument<&str>, path: &KeyPath) -> Option<String> {
    let value = super::locate::value_at(doc, path)?;
    value.as_str().map(str::to_string)
}

fn array_len(doc: &ImDocument<&str>, path: &KeyPath) -> usize {
    super::locate::value_at(doc, path)
        .and_then(|v| v.as_array().map(toml_edit::Array::len))
        .unwrap_or(0)
}

pub(super) fn validate(
    mut file: ConfigFile,
    secrets: &SecretsFile,
    source: Source<'_>,
) -> Result<Config, ConfigErrors> {
    let mut p = Problems::new(source);
    check_role(&file, &mut p);
    check_resources(&file, &mut p);
    let target = build_target(&mut file, secrets, &mut p);
    let vip = build_vip(&file, &mut p);
    check_monitor(&file, &mut p);
    check_ha_lizard(&file, &mut p);
    check_xapi(&file, &mut p);
    check_tickle(&file, &mut p);
    check_fence(&file, &mut p);
    let smtp_password = check_mail(&file, secrets, &mut p);
    let inline_secrets = file.alerts.mail.password.is_some()
        || file
            .target
            .access
            .incoming
            .iter()
            .any(|c| c.password.is_some())
        || file
            .target
            .access
            .outgoing
            .as_ref()
            .is_some_and(|c| c.password.is_some());
    match (target, vip) {
        (Some(target), Some(vip)) if p.found.is_empty() => Ok(Config {
            resources: file.replication.resources.clone(),
            file,
            target,
            vip,
            smtp_password,
            inline_secrets,
            warnings: p.warnings,
        }),
        _ => Err(ConfigErrors(p.found)),
    }
}

fn check_role(file: &ConfigFile, p: &mut Problems<'_>) {
    let role = &file.role;
    let at = KeyPath::keys(&["role"]);
    let kind = role.source;
    let only = |key: &str, set: bool, allowed: &[RoleSourceKind], p: &mut Problems<'_>| {
        if set && !allowed.contains(&kind) {
            let names: Vec<String> = allowed
                .iter()
                .map(|k| format!("{k:?}").to_lowercase())
                .collect();
            p.add(
                &at.key(key),
                format!(
                    "only used with source = {}; remove it or change the source",
                    names.join(" or ")
                ),
            );
        }
    };
    only(
        "pool_conf",
        role.pool_conf.is_some(),
        &[RoleSourceKind::Xapi],
        p,
    );
    only(
        "xapi_check",
        role.xapi_check.is_some(),
        &[RoleSourceKind::Xapi],
        p,
    );
    only("path", role.path.is_some(), &[RoleSourceKind::File], p);
    only(
        "command",
        role.command.is_some(),
        &[RoleSourceKind::Command],
        p,
    );
    only("role", role.role.is_some(), &[RoleSourceKind::Static], p);
    only(
        "timeout",
        role.timeout.is_some(),
        &[RoleSourceKind::Command, RoleSourceKind::Xapi],
        p,
    );
    match kind {
        RoleSourceKind::File if role.path.as_deref().is_none_or(str::is_empty) => {
            p.add(
                &at.key("path"),
                "source = \"file\" needs path = \"/path/to/role-file\"",
            );
        }
        RoleSourceKind::Command
            if role
                .command
                .as_ref()
                .is_none_or(|c| c.is_empty() || c[0].is_empty()) =>
        {
            p.add(
                &at.key("command"),
                "source = \"command\" needs command = [\"/path/to/program\", \"args\"...]",
            );
        }
        RoleSourceKind::Static if role.role.is_none() => {
            p.add(
                &at.key("role"),
                "source = \"static\" needs role = \"master\" or \"slave\"",
            );
        }
        _ => {}
    }
}

fn check_resources(file: &ConfigFile, p: &mut Problems<'_>) {
    let at = KeyPath::keys(&["replication", "resources"]);
    if file.replication.resources.is_empty() {
        p.add(
            &at,
            "list at least one replicated resource, e.g. resources = [\"iscsi1\"]",
        );
    }
    let mut seen = BTreeSet::new();
    for (i, r) in file.replication.resources.iter().enumerate() {
        if !seen.insert(r) {
            p.add(&at.index(i), format!("resource {r} is listed twice"));
        }
    }
}

fn build_target(
    file: &mut ConfigFile,
    secrets: &SecretsFile,
    p: &mut Problems<'_>,
) -> Option<TargetSpec> {
    let at = KeyPath::keys(&["target"]);
    let tgt_key = check_backend_tables(&file.target, p);
    let iqn = file.target.iqn.clone();
    warn_rfc(&iqn, &at.key("iqn"), p);
    for (i, name) in file.target.access.initiator_names.iter().enumerate() {
        warn_rfc(name, &at.key("access").key("initiator_names").index(i), p);
    }
    if file.target.luns.is_empty() {
        p.add(
            &at,
            "add at least one [[target.lun]] with lun = 1 and path = \"/dev/drbd1\"",
        );
    }
    let mut luns = Vec::new();
    let mut numbers = BTreeSet::new();
    for (i, section) in file.target.luns.iter_mut().enumerate() {
        let here = at.key("lun").index(i);
        let lun = match LunId::new(section.lun) {
            Ok(lun) => lun,
            Err(e) => {
                p.add(&here.key("lun"), e.to_string());
                continue;
            }
        };
        if !numbers.insert(lun) {
            p.add(&here.key("lun"), format!("LUN {lun} is defined twice"));
        }
        if !section.path.starts_with('/') {
            p.add(
                &here.key("path"),
                format!(
                    "{:?} must be an absolute path, e.g. /dev/drbd1",
                    section.path
                ),
            );
        }
        let derived = LunIdentity::derived(&iqn, lun);
        let scsi_id = section.scsi_id.get_or_insert(derived.scsi_id).clone();
        let scsi_sn = section.scsi_sn.get_or_insert(derived.scsi_sn).clone();
        match LunIdentity::new(
            scsi_id,
            scsi_sn,
            section.vendor_id.clone(),
            section.product_id.clone(),
        ) {
            Ok(identity) => luns.push(LunSpec {
                lun,
                path: section.path.clone(),
                identity,
                read_only: section.read_only,
                volatile_cache_reported: section.write_cache,
                stable_writes: !section.write_cache,
            }),
            Err(e) => p.add(&here.key(e.field), e.to_string()),
        }
    }
    luns.sort_by_key(|l| l.lun);

    let access_at = at.key("access");
    let access = &file.target.access;
    if access.initiators.is_empty() && access.initiator_names.is_empty() && !access.allow_all {
        p.add(
            &access_at,
            "no initiator may log in: list initiators = [\"10.10.10.0/24\"] or initiator_names, or set allow_all = true",
        );
    }
    for (i, range) in access.initiators.iter().enumerate() {
        if range.prefix() == 0 {
            p.add(
                &access_at.key("initiators").index(i),
                format!("{range} admits every address: say so with allow_all = true instead"),
            );
        }
    }
    let daemon = &file.target.tgt_daemon();
    if daemon.control_port > 32767 {
        p.add(
            &at.key(tgt_key).key("control_port"),
            "must be 0..=32767 (tgtd keeps it in a C short)",
        );
    }
    if let Some(portal) = &daemon.portal {
        if !portal_parses(portal) {
            p.add(
                &at.key(tgt_key).key("portal"),
                format!(
                    "{portal:?} is not address:port: write e.g. \"0.0.0.0:3260\", \"10.10.10.3:3260\" or \"[::]:3260\", or remove it to listen everywhere on 3260"
                ),
            );
        }
    }
    if daemon.managed && daemon.program.trim().is_empty() {
        p.add(
            &at.key(tgt_key).key("program"),
            "managed = true needs the tgtd program, e.g. program = \"/usr/sbin/tgtd\"",
        );
    }
    let mut incoming = Vec::new();
    for (i, chap) in access.incoming.iter().enumerate() {
        let here = access_at.key("incoming").index(i);
        if let Some(c) = chap_credentials(chap, secrets, &here, p) {
            incoming.push(c);
        }
    }
    let outgoing = access
        .outgoing
        .as_ref()
        .and_then(|chap| chap_credentials(chap, secrets, &access_at.key("outgoing"), p));
    if let Some(out) = &access.outgoing {
        if access.incoming.iter().any(|c| c.user == out.user) {
            p.add(
                &access_at.key("outgoing").key("user"),
                format!(
                    "{:?} is also an incoming user; the target's own account must be another",
                    out.user
                ),
            );
        }
    }
    Some(TargetSpec {
        iqn,
        luns,
        access: Access {
            initiator_addresses: access.initiators.clone(),
            initiator_names: access.initiator_names.clone(),
            allow_all: access.allow_all,
            incoming,
            outgoing,
        },
    })
}

/// Refuses a backend's table under another backend, and `[target.tgt]` beside its old name
/// `[target.daemon]`. Returns the name the file used for tgtd's table, so that later errors
/// point at what is written.
fn check_backend_tables(target: &TargetSection, p: &mut Problems<'_>) -> &'static str {
    let at = KeyPath::keys(&["target"]);
    if target.daemon.is_some() && target.tgt.is_some() {
        p.add(
            &at.key("daemon"),
            "[target.daemon] is the old name of [target.tgt] and both are written: move its keys into [target.tgt] and remove [target.daemon]",
        );
    }
    let backend = target.backend;
    if backend != TargetBackend::Tgt {
        for (key, set) in [
            ("tgt", target.tgt.is_some()),
            ("daemon", target.daemon.is_some()),
        ] {
            if set {
                p.add(
                    &at.key(key),
                    format!(
                        "tgtd's settings, but backend = \"{}\": remove [target.{key}] or set backend = \"tgt\"",
                        backend.name()
                    ),
                );
            }
        }
    }
    if backend != TargetBackend::Lio && target.lio.is_some() {
        p.add(
            &at.key("lio"),
            format!(
                "LIO's settings, but backend = \"{}\": remove [target.lio] or set backend = \"lio\"",
                backend.name()
            ),
        );
    }
    target.tgt_key().trim_start_matches("target.")
}

/// One warning per RFC rule an iSCSI name breaks: the backends take it, and renaming it would
/// cut off the initiators (XenServer SRs) bound to it.
fn warn_rfc(name: &crate::iqn::Iqn, path: &KeyPath, p: &mut Problems<'_>) {
    for deviation in name.rfc_deviations() {
        p.warn(
            path,
            format!(
                "{:?} breaks {deviation}; the target backends accept it, so it is kept exactly as written",
                name.as_str()
            ),
        );
    }
}

/// What tgtd's `--iscsi portal=` takes: an address with a port, or an address alone (port
/// 3260); IPv6 in brackets when a port follows.
fn portal_parses(portal: &str) -> bool {
    portal.parse::<std::net::SocketAddr>().is_ok() || portal.parse::<IpAddr>().is_ok()
}

fn chap_credentials(
    chap: &super::schema::ChapSection,
    secrets: &SecretsFile,
    at: &KeyPath,
    p: &mut Problems<'_>,
) -> Option<ChapCredentials> {
    let bad = |s: &str| s.is_empty() || s.chars().any(|c| c.is_control() || c == ',');
    if bad(&chap.user) {
        p.add(
            &at.key("user"),
            "CHAP user must be non-empty, without ',' or control characters",
        );
        return None;
    }
    let password = chap
        .password
        .clone()
        .or_else(|| secrets.chap.get(&chap.user).cloned());
    match password {
        Some(pw) if bad(pw.expose()) => {
            p.add(
                &at.key("password"),
                "CHAP password must be non-empty, without ',' or control characters",
            );
            None
        }
        Some(password) => Some(ChapCredentials {
            user: chap.user.clone(),
            password,
        }),
        None => {
            p.add(
                &at.key("password"),
                format!(
                    "no password for CHAP user {:?}: set password here or in the secrets file's [chap] table",
                    chap.user
                ),
            );
            None
        }
    }
}

/// The shortest `[vip] refresh_interval`: more often only adds broadcast traffic, and a
/// sub-second period would have the loop waking for it all the time.
const MIN_REFRESH_INTERVAL: Duration = Duration::from_secs(1);

fn build_vip(file: &ConfigFile, p: &mut Problems<'_>) -> Option<Vip> {
    let at = KeyPath::keys(&["vip"]);
    let vip = &file.vip;
    if vip.announce_count == 0 || vip.announce_count > 100 {
        p.add(&at.key("announce_count"), "must be 1..=100");
    }
    if let Some(period) = vip.refresh_interval.get() {
        if period < MIN_REFRESH_INTERVAL {
            p.add(
                &at.key("refresh_interval"),
                format!(
                    "{} is too short: write at least \"1s\" (\"60s\" is the default), or \"0s\" to turn the periodic announcement off",
                    humantime::format_duration(period)
                ),
            );
        }
    }
    let Some((addr, prefix)) = vip.address.split_once('/') else {
        p.add(
            &at.key("address"),
            format!(
                "{:?} needs a prefix length, e.g. \"10.10.10.3/24\"",
                vip.address
            ),
        );
        return None;
    };
    let address: IpAddr = match addr.trim().parse() {
        Ok(a) => a,
        Err(_) => {
            p.add(
                &at.key("address"),
                format!("{addr:?} is not an IPv4 or IPv6 address"),
            );
            return None;
        }
    };
    let prefix: u8 = match prefix.trim().parse() {
        Ok(n) => n,
        Err(_) => {
            p.add(
                &at.key("address"),
                format!("prefix {prefix:?} is not a number"),
            );
            return None;
        }
    };
    match Vip::new(address, prefix, vip.interface.clone()) {
        Ok(v) => Some(v),
        Err(e) => {
            p.add(&at.key("address"), e.to_string());
            None
        }
    }
}

fn check_monitor(file: &ConfigFile, p: &mut Problems<'_>) {
    if file.monitor.max_starts == 0 {
        p.add(
            &KeyPath::keys(&["monitor", "max_starts"]),
            "must be at least 1",
        );
    }
}

/// HA-Lizard trusts the status file for an hour after it was written; a refresh must leave
/// room for failed writes inside that hour. The paths are the daemon's to write as root, so
/// they must not depend on its working directory.
fn check_ha_lizard(file: &ConfigFile, p: &mut Problems<'_>) {
    let section = &file.ha_lizard;
    let at = KeyPath::keys(&["ha_lizard"]);
    if section.refresh.get() > std::time::Duration::from_secs(30 * 60) {
        p.add(
            &at.key("refresh"),
            format!(
                "{} is too long: HA-Lizard stops trusting the status file one hour after it was written; use at most \"30m\" (\"60s\" is the default)",
                section.refresh
            ),
        );
    }
    for (key, path) in [
        ("status_file", &section.status_file),
        ("manual_file", &section.manual_file),
        ("conf_file", &section.conf_file),
    ] {
        let name = std::path::Path::new(path);
        if !name.is_absolute() || name.file_name().is_none() || path.contains('\n') {
            p.add(
                &at.key(key),
                format!("{path:?} is not an absolute path to a file; write e.g. \"/etc/iscsi-ha/state/status\""),
            );
        }
    }
}

fn check_xapi(file: &ConfigFile, p: &mut Problems<'_>) {
    if file.xapi.xe.trim().is_empty() {
        p.add(
            &KeyPath::keys(&["xapi", "xe"]),
            "names no program: xe = \"/usr/bin/xe\"",
        );
    }
    if !file.xapi.inventory.starts_with('/') {
        p.add(
            &KeyPath::keys(&["xapi", "inventory"]),
            format!(
                "{:?} is not an absolute path; write inventory = \"/etc/xensource-inventory\"",
                file.xapi.inventory
            ),
        );
    }
}

fn check_tickle(file: &ConfigFile, p: &mut Problems<'_>) {
    let hosts = &file.tickle.hosts;
    let at = KeyPath::keys(&["tickle", "hosts"]);
    if hosts.is_empty() {
        return;
    }
    if hosts.len() != 2 || hosts[0] == hosts[1] {
        p.add(
            &at,
            format!("names {} address(es); name this host's and its peer's replication addresses: hosts = [\"10.0.0.1\", \"10.0.0.2\"]", hosts.len()),
        );
    } else if hosts[0].is_ipv4() != hosts[1].is_ipv4() {
        p.add(&at, "mixes IPv4 and IPv6; name both hosts' addresses on the replication link, of one family");
    }
    if file.tickle.port == 0 {
        p.add(
            &KeyPath::keys(&["tickle", "port"]),
            "0 is no port; leave it out for 3261",
        );
    }
}

/// The most witnesses the fence-peer handler pings at once.
pub const MAX_WITNESSES: usize = 8;

fn check_fence(file: &ConfigFile, p: &mut Problems<'_>) {
    let fence = &file.fence;
    let at = KeyPath::keys(&["fence", "witnesses"]);
    if fence.witnesses.len() > MAX_WITNESSES {
        p.add(
            &at,
            format!(
                "names {} addresses; at most {MAX_WITNESSES}: one or two that are always up (the gateway, a switch) are enough",
                fence.witnesses.len()
            ),
        );
    }
    let vip = file.vip.address.split('/').next().unwrap_or_default();
    if let Some(w) = fence.witnesses.iter().find(|w| w.to_string() == vip) {
        p.add(
            &at,
            format!("names the VIP {w}: the host holding it answers for it, so it proves nothing; name an address of another machine"),
        );
    }
    let timeout = fence.witness_timeout.get();
    if timeout < Duration::from_millis(10) || timeout > Duration::from_secs(5) {
        p.add(
            &KeyPath::keys(&["fence", "witness_timeout"]),
            "must be between 10ms and 5s: DRBD holds the I/O frozen while the handler waits",
        );
    }
}

fn check_mail(file: &ConfigFile, secrets: &SecretsFile, p: &mut Problems<'_>) -> Option<Secret> {
    let mail = &file.alerts.mail;
    let at = KeyPath::keys(&["alerts", "mail"]);
    let password = mail
        .password
        .clone()
        .or_else(|| secrets.smtp_password.clone());
    if mail.enabled && mail.to.is_empty() {
        p.add(
            &at.key("to"),
            "mail is enabled but has no recipient: to = [\"admin@example.com\"]",
        );
    }
    if mail.enabled && mail.server.trim().is_empty() {
        p.add(
            &at.key("server"),
            "mail is enabled but has no server: server = \"127.0.0.1\" (or the relay's name), or enabled = false",
        );
    } else if mail
        .server
        .chars()
        .any(|c| c.is_whitespace() || c.is_control())
    {
        p.add(
            &at.key("server"),
            format!("{:?} is not a host name or address", mail.server),
        );
    }
    for (i, to) in mail.to.iter().enumerate() {
        if !to.contains('@') {
            p.add(
                &at.key("to").index(i),
                format!("{to:?} is not a mail address"),
            );
        }
    }
    if !mail.from.contains('@') {
        p.add(
            &at.key("from"),
            format!("{:?} is not a mail address", mail.from),
        );
    }
    if password.is_some() && mail.user.is_none() {
        p.add(
            &at.key("user"),
            "a password is set but no user: set user, or remove the password",
        );
    }
    if mail.user.is_some() && password.is_none() {
        p.add(
            &at.key("password"),
            "user is set but no password: set it here or smtp_password in the secrets file",
        );
    }
    password
}
