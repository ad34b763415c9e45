//! `role-server` and `peer-latency`: the peer changes its role on request over TCP; we time,
//! on our own monotonic clock, from sending the request to the event on our events fd that
//! shows the peer's new role. The figure is an upper bound: it includes the request's trip
//! and the peer's own PRIMARY/SECONDARY call, which the server reports separately.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Args;
use iscsi_ha_drbd::events::DrbdEvent;
use iscsi_ha_drbd::state::DrbdRole;
use iscsi_ha_drbd::{DrbdEvents, DrbdNetlink, RoleRequest};

#[derive(Debug, Args)]
pub struct ServerArgs {
    /// Address to listen on.
    #[arg(long)]
    listen: String,
}

#[derive(Debug, Args)]
pub struct ClientArgs {
    /// The peer's role-server.
    #[arg(long)]
    peer: String,
    /// The resource to flip.
    #[arg(long)]
    resource: String,
    /// Round trips (each is a promote and a demote).
    #[arg(long, default_value_t = 10)]
    rounds: usize,
}

pub fn serve(args: ServerArgs) -> anyhow::Result<()> {
    let listener = TcpListener::bind(&args.listen)?;
    println!("listening");
    let mut nl = DrbdNetlink::connect()?;
    for stream in listener.incoming() {
        let stream = stream?;
        let mut reader = BufReader::new(stream.try_clone()?);
        let mut out = stream;
        let mut line = String::new();
        while reader.read_line(&mut line)? > 0 {
            let words: Vec<&str> = line.split_whitespace().collect();
            let reply = match words.as_slice() {
                ["primary", res] | ["secondary", res] => {
                    let role = if words[0] == "primary" {
                        RoleRequest::Primary { force: false }
                    } else {
                        RoleRequest::Secondary
                    };
                    let t = Instant::now();
                    match nl.set_resource_role(res, role) {
                        Ok(()) => format!("ok {}\n", t.elapsed().as_micros()),
                        Err(e) => format!("err {e}\n"),
                    }
                }
                ["quit"] => return Ok(()),
                _ => "err unknown request\n".to_string(),
            };
            out.write_all(reply.as_bytes())?;
            line.clear();
        }
    }
    Ok(())
}

fn peer_role_seen(e: &DrbdEvent, resource: &str, want: DrbdRole) -> bool {
    match e {
        DrbdEvent::State(s) => {
            s.resource.as_deref() == Some(resource) && s.new.is_some_and(|n| n.peer() == want)
        }
        DrbdEvent::Notification(n) => {
            n.resource.as_deref() == Some(resource) && n.peer_role == Some(want)
        }
        _ => false,
    }
}

pub fn measure(args: ClientArgs) -> anyhow::Result<()> {
    let mut events = DrbdEvents::subscribe()?;
    let stream =
        TcpStream::connect(&args.peer).with_context(|| format!("connecting {}", args.peer))?;
    stream.set_nodelay(true)?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut out = stream;
    let mut samples = Vec::new();
    for _ in 0..args.rounds {
        for (verb, want) in [
            ("primary", DrbdRole::Primary),
            ("secondary", DrbdRole::Secondary),
        ] {
            events.read()?; // drop what is queued
            let t = Instant::now();
            out.write_all(format!("{verb} {}\n", args.resource).as_bytes())?;
            let mut event_us = None;
            while event_us.is_none() {
                if t.elapsed() > Duration::from_secs(10) {
                    bail!("no event for the peer's {verb} within 10 s");
                }
                if events
                    .wait(Duration::from_secs(1))?
                    .iter()
                    .any(|e| peer_role_seen(e, &args.resource, want))
                {
                    event_us = Some(t.elapsed().as_micros());
                }
            }
            let mut line = String::new();
            reader.read_line(&mut line)?;
            let Some(call_us) = line.strip_prefix("ok ").map(|s| s.trim().to_string()) else {
                bail!("peer's {verb} failed: {}", line.trim());
            };
            samples.push(serde_json::json!({"verb": verb, "event_us": event_us, "peer_call_us": call_us.parse::<u64>().unwrap_or(0)}));
        }
    }
    out.write_all(b"quit\n")?;
    println!("{}", serde_json::json!({ "samples": samples }));
    Ok(())
}
