//! A door controller in Rust: asks facecaptured to authenticate a person, shows the
//! capture feedback as a door display would, and drives a relay stand-in (the file
//! given with `--relay` gets `1` when access is granted, `0` otherwise, as a GPIO
//! value file would).
//!
//! ```text
//! cargo run -p facecapture-dbus --example door -- alice --relay /tmp/door-relay
//! cargo run -p facecapture-dbus --example door -- --address unix:path=/run/test-bus alice
//! ```
//!
//! Exit status: 0 granted, 1 refused or failed, 2 usage.

use facecapture_dbus::{Error, FaceCapture1Proxy, Feedback};
use futures_util::StreamExt;
use std::process::ExitCode;
use std::time::Duration;

struct Args {
    username: String,
    address: Option<String>,
    relay: Option<std::path::PathBuf>,
}

fn args() -> Result<Args, String> {
    let mut username = None;
    let mut address = None;
    let mut relay = None;
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--address" => address = Some(it.next().ok_or("--address needs a bus address")?),
            "--relay" => relay = Some(it.next().ok_or("--relay needs a file")?.into()),
            s if s.starts_with('-') => return Err(format!("unknown option {s}")),
            _ if username.is_none() => username = Some(a),
            _ => return Err("one username only".into()),
        }
    }
    Ok(Args {
        username: username.ok_or("usage: door USERNAME [--address ADDR] [--relay FILE]")?,
        address,
        relay,
    })
}

fn set_relay(relay: &Option<std::path::PathBuf>, open: bool) -> std::io::Result<()> {
    if let Some(path) = relay {
        std::fs::write(path, if open { "1\n" } else { "0\n" })?;
    }
    println!("relay: {}", if open { "OPEN" } else { "closed" });
    Ok(())
}

async fn door(args: &Args) -> Result<bool, Error> {
    let builder = match &args.address {
        Some(a) => zbus::connection::Builder::address(a.as_str()),
        None => zbus::connection::Builder::system(),
    };
    // Longer than the daemon's own operation timeout: its answer is the one seen.
    let bus = builder
        .method_timeout(Duration::from_secs(60))
        .build()
        .await?;
    let daemon = FaceCapture1Proxy::new(&bus).await?;
    let mut feedback = daemon.receive_capture_feedback().await?;
    let mut progress = daemon.receive_progress().await?;
    let call = daemon.authenticate(&args.username);
    tokio::pin!(call);
    let reply = loop {
        tokio::select! {
            // Signals the daemon sent before its reply come first.
            biased;
            Some(f) = feedback.next() => {
                let code = f.args()?.code().to_owned();
                let advice = code.parse::<Feedback>().map_or("Look at the camera", Feedback::advice);
                println!("feedback: {code} -> display: {advice}");
            }
            Some(p) = progress.next() => {
                let a = p.args()?;
                println!("progress: {} {}", a.operation(), a.step());
            }
            reply = &mut call => break reply?,
        }
    };
    println!(
        "granted={} liveness={} matched={} score={} status={}",
        reply.granted, reply.liveness, reply.matched, reply.match_score, reply.auth_status
    );
    Ok(reply.granted)
}

fn main() -> ExitCode {
    let args = match args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("cannot start: {e}");
            return ExitCode::FAILURE;
        }
    };
    let granted = match runtime.block_on(door(&args)) {
        Ok(granted) => granted,
        Err(Error::ZBus(e)) => {
            println!("failed: {e}");
            false
        }
        Err(e) => {
            use zbus::DBusError;
            println!(
                "refused: {}: {}",
                e.kind(),
                e.description().unwrap_or_default()
            );
            false
        }
    };
    if let Err(e) = set_relay(&args.relay, granted) {
        eprintln!("cannot drive the relay: {e}");
        return ExitCode::FAILURE;
    }
    if granted {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
