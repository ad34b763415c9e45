# Removal (not upgrade): stop and disable the daemon. The tgtd it manages keeps running
# (KillMode=process); stop serving first with iscsi-cfg manual-mode-enable / become-secondary.
# Two commands, not `disable --now`: EL7's systemd 219 has no --now (220+).
if [ "$1" -eq 0 ]; then
    systemctl --no-reload disable iscsi-ha.service >/dev/null 2>&1 || :
    systemctl stop iscsi-ha.service >/dev/null 2>&1 || :
fi
