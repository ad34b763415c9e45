systemctl daemon-reload >/dev/null 2>&1 || :
# Upgrade: run the new binary. try-restart only restarts a running daemon.
if [ "$1" -ge 1 ]; then
    systemctl try-restart iscsi-ha.service >/dev/null 2>&1 || :
fi
