# Make systemd see the new unit; do not start an unconfigured daemon (the unit has a condition
# on /etc/iscsi-ha/iscsi-ha.toml anyway). On an upgrade the running daemon is restarted in
# %postun, leaving tgtd (KillMode=process) and the storage as they are.
systemctl daemon-reload >/dev/null 2>&1 || :
if [ "$1" -eq 1 ]; then
    systemctl preset iscsi-ha.service >/dev/null 2>&1 || :
fi
