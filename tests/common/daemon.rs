//! A private dbus-daemon, the facecaptured binary on it (files camera, emulator
//! over HTTPS), and helpers to call it with facecapturectl and gdbus.

use awareid_emulator::{Emulator, EmulatorConfig};
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub struct Bus {
    child: Child,
    pub address: String,
    _dir: tempfile::TempDir,
}

impl Drop for Bus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A session-type bus of our own on a unix socket: no system bus is needed.
pub fn bus() -> Bus {
    let dir = tempfile::tempdir().expect("tmp");
    let conf = dir.path().join("bus.conf");
    let template = include_str!("../fixtures/private-bus.conf");
    std::fs::write(
        &conf,
        template.replace("@DIR@", &dir.path().display().to_string()),
    )
    .expect("bus config");
    let (child, address) = spawn_bus(&conf);
    Bus {
        child,
        address,
        _dir: dir,
    }
}

/// Starts dbus-daemon with `conf` and returns it with the address it listens on.
pub fn spawn_bus(conf: &std::path::Path) -> (Child, String) {
    let mut c = Command::new("dbus-daemon");
    c.arg(format!("--config-file={}", conf.display()))
        .args(["--nofork", "--print-address"]);
    spawn_bus_command(c)
}

/// Starts a bus with `command` (a dbus-daemon that prints its address), and reads
/// the address.
pub fn spawn_bus_command(mut command: Command) -> (Child, String) {
    let mut child = command
        .stdout(Stdio::piped())
        // It warns that it cannot raise its fd limit when not root: noise.
        .stderr(Stdio::null())
        .spawn()
        .expect("dbus-daemon (package dbus) runs");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("bus address");
    (child, line.trim().to_owned())
}

pub struct Daemon {
    child: Option<Child>,
    pub dir: tempfile::TempDir,
    pub config: PathBuf,
    pub log: PathBuf,
    pub address: String,
    /// Extra environment for the daemon process (e.g. NOTIFY_SOCKET).
    pub env: Vec<(String, String)>,
    /// A program and arguments the daemon is started through (e.g. `ip netns
    /// exec NAME`); empty: started directly.
    pub wrap: Vec<String>,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        // A failed test shows every daemon's last lines, not only the one it
        // waited on: the cause is often at another door.
        if std::thread::panicking() {
            let text = self.log_text();
            let lines: Vec<&str> = text.lines().collect();
            let tail = &lines[lines.len().saturating_sub(60)..];
            eprintln!(
                "--- the last lines of {}:\n{}",
                self.log.display(),
                tail.join("\n")
            );
        }
    }
}

pub struct Setup {
    pub emulator: Emulator,
    pub bus: Bus,
    pub daemon: Daemon,
}

/// The frames directory the files camera plays.
pub fn frames(daemon: &Daemon) -> PathBuf {
    daemon.dir.path().join("frames")
}

/// Shows `photo` (a fixture) to the camera, alone.
pub fn show(daemon: &Daemon, photo: &str) {
    let dir = frames(daemon);
    for entry in std::fs::read_dir(&dir).expect("frames").flatten() {
        let _ = std::fs::remove_file(entry.path());
    }
    std::fs::copy(super::fixture(photo), dir.join(photo)).expect("copy frame");
}

/// Emulator, private bus and daemon, the camera showing the astronaut.
pub fn start() -> Setup {
    start_with("")
}

/// As `start`, with extra TOML appended to the daemon's configuration.
pub fn start_with(extra: &str) -> Setup {
    let bus = bus();
    let address = bus.address.clone();
    let (emulator, daemon) = daemon_on(&address, "session", extra);
    Setup {
        emulator,
        bus,
        daemon,
    }
}

/// The emulator and the daemon on a bus someone else runs.
pub struct Attached {
    pub emulator: Emulator,
    pub daemon: Daemon,
}

/// The daemon on `address`, as a "session" or "system" bus client.
pub fn start_on(address: &str, kind: &str) -> Attached {
    let (emulator, daemon) = daemon_on(address, kind, "");
    Attached { emulator, daemon }
}

fn daemon_on(address: &str, kind: &str, extra: &str) -> (Emulator, Daemon) {
    let emulator = Emulator::start(EmulatorConfig::default()).expect("emulator");
    let daemon = another_daemon(&emulator, address, kind, extra, &[]);
    (emulator, daemon)
}

/// One more daemon (another door) with its own directory and database, on
/// `emulator` and the bus at `address`, started with `env` (e.g.
/// CREDENTIALS_DIRECTORY). A second daemon on the same bus must wait for the
/// first to leave the name.
pub fn another_daemon(
    emulator: &Emulator,
    address: &str,
    kind: &str,
    extra: &str,
    env: &[(&str, &std::path::Path)],
) -> Daemon {
    let mut daemon = unstarted_daemon(emulator, address, kind, extra, env);
    daemon.start();
    daemon
}

/// As [`another_daemon`], not started yet (set `wrap`, then `start`).
pub fn unstarted_daemon(
    emulator: &Emulator,
    address: &str,
    kind: &str,
    extra: &str,
    env: &[(&str, &std::path::Path)],
) -> Daemon {
    let dir = tempfile::tempdir().expect("tmp");
    emulator.write_out(dir.path()).expect("emulator files");
    std::fs::create_dir(dir.path().join("frames")).expect("frames dir");
    let mut base = std::fs::read_to_string(dir.path().join("facecaptured.toml")).expect("config");
    // Keeping AwareID warm calls it in the background, between a test's own
    // calls and the emulator's record of them: off, except for the tests that
    // turn it on (tests/daemon_flows.rs).
    if !extra.contains("keep_warm_s") {
        base = base.replacen("[server]\n", "[server]\nkeep_warm_s = 0\n", 1);
    }
    // Keys for [server] (which the emulator's file already opens) go into that table.
    let extra = match extra.strip_prefix("[server]\n") {
        Some(rest) => {
            let end = rest.find("\n[").map_or(rest.len(), |i| i + 1);
            base = base.replacen("[server]\n", &format!("[server]\n{}", &rest[..end]), 1);
            &rest[end..]
        }
        None => extra,
    };
    let config = dir.path().join("daemon.toml");
    std::fs::write(
        &config,
        format!(
            "{base}\n[camera]\nsource = \"files\"\npath = \"{frames}\"\n\n[dbus]\nbus = \"{kind}\"\n\n[storage]\nstate_dir = \"{state}\"\n{extra}\n",
            frames = dir.path().join("frames").display(),
            state = dir.path().join("state").display(),
        ),
    )
    .expect("daemon config");
    let daemon = Daemon {
        child: None,
        log: dir.path().join("daemon.log"),
        dir,
        config,
        address: address.to_owned(),
        env: env
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.display().to_string()))
            .collect(),
        wrap: Vec::new(),
    };
    show(&daemon, "astronaut.jpg");
    daemon
}

impl Daemon {
    /// Starts facecaptured and waits until it holds its bus name.
    pub fn start(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("log");
        let readies = |text: &str| text.matches(" ready ").count();
        let before = readies(&self.log_text());
        let program = env!("CARGO_BIN_EXE_facecaptured");
        let mut command = match self.wrap.split_first() {
            Some((first, rest)) => {
                let mut c = Command::new(first);
                c.args(rest).arg(program);
                c
            }
            None => Command::new(program),
        };
        let child = command
            .arg("--config")
            .arg(&self.config)
            .env("DBUS_SESSION_BUS_ADDRESS", &self.address)
            .env("DBUS_SYSTEM_BUS_ADDRESS", &self.address)
            .env("RUST_LOG", "info")
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .env_remove("JOURNAL_STREAM")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("facecaptured starts");
        self.child = Some(child);
        let t = Instant::now();
        loop {
            let text = self.log_text();
            if readies(&text) > before {
                return;
            }
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                panic!("facecaptured exited ({status}):\n{text}");
            }
            assert!(
                t.elapsed() < Duration::from_secs(60),
                "daemon not ready:\n{text}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Sends `signal` and waits for the process to end.
    pub fn stop(&mut self, signal: i32) -> Option<std::process::ExitStatus> {
        let mut child = self.child.take()?;
        // SAFETY: kill(2) on our own child's pid.
        unsafe { libc::kill(child.id() as i32, signal) };
        child.wait().ok()
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    /// Waits until the daemon's log holds `needle` (the log is written by another
    /// process: it is read again until it does, within a bound for a hung daemon).
    pub fn wait_log(&self, needle: &str) {
        wait_text(&self.log, needle);
    }

    /// Waits until the daemon's log holds `needle` `count` times.
    pub fn wait_log_count(&self, needle: &str, count: usize) {
        wait_count(&self.log, needle, count);
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn state_dir(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    /// facecapturectl on this bus.
    pub fn ctl(&self, args: &[&str]) -> Output {
        self.ctl_command(args)
            .output()
            .expect("facecapturectl runs")
    }

    pub fn ctl_command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(super::program::facecapturectl());
        c.arg("--session")
            .args(args)
            .env("DBUS_SESSION_BUS_ADDRESS", &self.address)
            .env_remove("JOURNAL_STREAM");
        c
    }

    /// A plain D-Bus client: gdbus, calling one method.
    pub fn gdbus(&self, method: &str, args: &[&str]) -> Output {
        Command::new("gdbus")
            .args(["call", "--address", &self.address])
            .args(["--dest", "org.facecapture.FaceCapture1"])
            .args(["--object-path", "/org/facecapture/FaceCapture1"])
            .args([
                "--method",
                &format!("org.facecapture.FaceCapture1.{method}"),
            ])
            .args(["--timeout", "60"])
            .args(args)
            .output()
            .expect("gdbus (package libglib2.0-bin) runs")
    }
}

/// Waits until the file at `path` (written by another process) holds `needle`;
/// returns its text then. It is read again until it does, within a bound for a
/// hung daemon.
pub fn wait_text(path: &std::path::Path, needle: &str) -> String {
    wait_count(path, needle, 1)
}

/// Waits until the file at `path` holds `needle` at least `count` times (a log
/// with one line per record); returns its text then. The one file poll of the
/// tests, bounded for a hung daemon.
pub fn wait_count(path: &std::path::Path, needle: &str, count: usize) -> String {
    let t = Instant::now();
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        if text.matches(needle).count() >= count {
            return text;
        }
        assert!(
            t.elapsed() < Duration::from_secs(60),
            "{count} x {needle:?} never reached {}:\n{text}",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).trim().to_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).trim().to_owned()
}

/// The result JSON line facecapturectl prints.
pub fn json(o: &Output) -> serde_json::Value {
    serde_json::from_str(&stdout(o))
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}\nstderr: {}", stdout(o), stderr(o)))
}

/// The AwareID calls the setup's emulator answered, in order.
pub fn calls(setup: &Setup) -> Vec<String> {
    super::calls(&setup.emulator)
}

/// A proxy to the daemon on the bus at `address`, calls timing out after
/// `timeout` (the benches run slow calls on purpose).
pub async fn proxy_at(
    address: &str,
    timeout: Duration,
) -> (
    zbus::Connection,
    facecapture_dbus::FaceCapture1Proxy<'static>,
) {
    let conn = zbus::connection::Builder::address(address)
        .method_timeout(timeout)
        .build()
        .await
        .expect("bus");
    let proxy = facecapture_dbus::FaceCapture1Proxy::new(&conn)
        .await
        .expect("proxy");
    (conn, proxy)
}
