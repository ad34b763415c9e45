#!/usr/bin/env python3
"""A real initiator for the write-cache tests: libiscsi (libiscsi.so.7) through ctypes.

libiscsi-bin ships no tool that prints the caching mode page, and its iscsi-perf only
reads, so this drives libiscsi's own calls:

  scsi_probe.py wce PORTAL IQN LUN INITIATOR
      MODE SENSE(6) of the caching page (0x08), current and changeable values; prints
      "WCE=<0|1> WCE_CHANGEABLE=<0|1>".
  scsi_probe.py write PORTAL IQN LUN INITIATOR SECONDS BLOCKS [flush_every]
      WRITE(16) of BLOCKS 512-byte blocks, one command at a time, sequentially, for SECONDS;
      with flush_every > 0, a SYNCHRONIZE CACHE(10) after every that many writes. Prints
      "writes=N bytes=B seconds=S MBps=X iops=Y".

Exit status 0 on success; anything else prints the libiscsi error and exits 1.
The struct offsets below are libiscsi 1.19's (struct scsi_task: status at 0, datain at 64).
"""
import ctypes
import ctypes.util
import sys
import time

lib = ctypes.CDLL(ctypes.util.find_library("iscsi") or "libiscsi.so.7")
lib.iscsi_create_context.restype = ctypes.c_void_p
lib.iscsi_create_context.argtypes = [ctypes.c_char_p]
lib.iscsi_set_targetname.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
lib.iscsi_set_session_type.argtypes = [ctypes.c_void_p, ctypes.c_int]
lib.iscsi_full_connect_sync.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int]
lib.iscsi_get_error.restype = ctypes.c_char_p
lib.iscsi_get_error.argtypes = [ctypes.c_void_p]
lib.iscsi_modesense6_sync.restype = ctypes.c_void_p
lib.iscsi_modesense6_sync.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_int,
                                      ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_ubyte]
lib.iscsi_write16_sync.restype = ctypes.c_void_p
lib.iscsi_write16_sync.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_uint64,
                                   ctypes.c_char_p, ctypes.c_uint32, ctypes.c_int,
                                   ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_int,
                                   ctypes.c_int]
lib.iscsi_synchronizecache10_sync.restype = ctypes.c_void_p
lib.iscsi_synchronizecache10_sync.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_int,
                                              ctypes.c_int, ctypes.c_int, ctypes.c_int]
lib.scsi_free_scsi_task.argtypes = [ctypes.c_void_p]
lib.iscsi_logout_sync.argtypes = [ctypes.c_void_p]
lib.iscsi_destroy_context.argtypes = [ctypes.c_void_p]

TASK_STATUS = 0
TASK_DATAIN_SIZE = 64
TASK_DATAIN_DATA = 72


def fail(iscsi, what):
    err = lib.iscsi_get_error(iscsi) if iscsi else b""
    sys.stderr.write("%s failed: %s\n" % (what, (err or b"").decode(errors="replace")))
    sys.exit(1)


def connect(portal, iqn, lun, initiator):
    iscsi = lib.iscsi_create_context(initiator.encode())
    if not iscsi:
        fail(None, "iscsi_create_context")
    lib.iscsi_set_targetname(iscsi, iqn.encode())
    lib.iscsi_set_session_type(iscsi, 2)  # ISCSI_SESSION_NORMAL
    if lib.iscsi_full_connect_sync(iscsi, portal.encode(), lun) != 0:
        fail(iscsi, "login")
    return iscsi


def check(iscsi, task, what):
    if not task:
        fail(iscsi, what)
    status = ctypes.c_int.from_address(task + TASK_STATUS).value
    if status != 0:
        lib.scsi_free_scsi_task(task)
        fail(iscsi, "%s (SCSI status %d)" % (what, status))


def caching_byte2(iscsi, lun, pc):
    task = lib.iscsi_modesense6_sync(iscsi, lun, 1, pc, 0x08, 0, 255)
    check(iscsi, task, "MODE SENSE(6) page 8")
    size = ctypes.c_int.from_address(task + TASK_DATAIN_SIZE).value
    ptr = ctypes.c_void_p.from_address(task + TASK_DATAIN_DATA).value
    data = ctypes.string_at(ptr, size)
    lib.scsi_free_scsi_task(task)
    # Mode parameter header (6): length, medium type, device-specific, block descriptor length.
    offset = 4 + data[3]
    while offset + 2 <= len(data):
        code, length = data[offset] & 0x3F, data[offset + 1]
        if code == 0x08:
            if length < 1 or offset + 2 >= len(data):
                break
            return data[offset + 2]
        offset += 2 + length
    sys.stderr.write("no caching page in %s\n" % data.hex())
    sys.exit(1)


def main():
    cmd, portal, iqn, lun, initiator = sys.argv[1:6]
    lun = int(lun)
    iscsi = connect(portal, iqn, lun, initiator)
    if cmd == "wce":
        current = caching_byte2(iscsi, lun, 0)
        changeable = caching_byte2(iscsi, lun, 1)
        print("WCE=%d WCE_CHANGEABLE=%d" % ((current >> 2) & 1, (changeable >> 2) & 1))
    elif cmd == "write":
        seconds, blocks = float(sys.argv[6]), int(sys.argv[7])
        flush_every = int(sys.argv[8]) if len(sys.argv) > 8 else 0
        buf = bytes(range(256)) * (blocks * 2)
        lba, writes, span = 0, 0, 1 << 16  # stay within the first 32 MiB
        start = time.monotonic()
        while time.monotonic() - start < seconds:
            task = lib.iscsi_write16_sync(iscsi, lun, lba, buf, blocks * 512, 512,
                                          0, 0, 0, 0, 0)
            check(iscsi, task, "WRITE(16)")
            lib.scsi_free_scsi_task(task)
            writes += 1
            lba = (lba + blocks) % span
            if flush_every and writes % flush_every == 0:
                task = lib.iscsi_synchronizecache10_sync(iscsi, lun, 0, 0, 0, 0)
                check(iscsi, task, "SYNCHRONIZE CACHE(10)")
                lib.scsi_free_scsi_task(task)
        took = time.monotonic() - start
        total = writes * blocks * 512
        print("writes=%d bytes=%d seconds=%.2f MBps=%.2f iops=%.0f"
              % (writes, total, took, total / took / 1e6, writes / took))
    else:
        sys.stderr.write("unknown command %s\n" % cmd)
        sys.exit(2)
    lib.iscsi_logout_sync(iscsi)
    lib.iscsi_destroy_context(iscsi)


if __name__ == "__main__":
    main()
