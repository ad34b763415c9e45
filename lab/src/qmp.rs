//! A minimal QMP client (qemu's JSON monitor) for the fault verbs: `stop`, `cont`, `query-status`.
//!
//! One connection per command: qemu's `-qmp unix:...,server=on,wait=off` serves one client at a
//! time, and a fresh connection never sees a half-read reply of an earlier caller.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use serde_json::{json, Value};

/// Runs one QMP command and returns its `return` value, or the reason it failed.
pub(crate) fn execute(socket: &Path, command: &str, timeout: Duration) -> Result<Value, String> {
    let stream =
        UnixStream::connect(socket).map_err(|e| format!("connecting {}: {e}", socket.display()))?;
    stream
        .set_read_timeout(Some(timeout))
        .map_err(|e| format!("setting a timeout: {e}"))?;
    let mut writer = stream
        .try_clone()
        .map_err(|e| format!("cloning the socket: {e}"))?;
    let mut reader = BufReader::new(stream);
    let greeting = read_message(&mut reader)?;
    if greeting.get("QMP").is_none() {
        return Err(format!("unexpected greeting {greeting}"));
    }
    for cmd in ["qmp_capabilities", command] {
        let request = json!({ "execute": cmd }).to_string() + "\n";
        writer
            .write_all(request.as_bytes())
            .map_err(|e| format!("writing: {e}"))?;
        loop {
            let msg = read_message(&mut reader)?;
            if let Some(ret) = msg.get("return") {
                if cmd == command {
                    return Ok(ret.clone());
                }
                break;
            }
            if let Some(err) = msg.get("error") {
                return Err(format!("{cmd}: {err}"));
            }
            // Asynchronous events ({"event": ...}) are not ours to handle.
        }
    }
    Err("no reply".into())
}

fn read_message(reader: &mut BufReader<UnixStream>) -> Result<Value, String> {
    let mut line = String::new();
    let n = reader
        .read_line(&mut line)
        .map_err(|e| format!("reading: {e}"))?;
    if n == 0 {
        return Err("qemu closed the monitor socket".into());
    }
    serde_json::from_str(&line).map_err(|e| format!("bad QMP message {line:?}: {e}"))
}
