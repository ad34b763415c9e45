# Removal (not upgrade): stop and disable the daemon. The tgtd it manages keeps running
# (KillMode=process); stop serving first with iscsi-cfg manual-mode-enable / become-secondary.
if [ "$1" -eq 0 ]; then
    systemctl --no-reload disable --now iscsi-ha.service >/dev/null 2>&1 || :
fi
