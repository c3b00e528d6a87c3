//! A site hub for the tests: Debian's nats-server (installed by tests/run.sh)
//! running the shipped examples/site/hub.conf, over TLS with a certificate of
//! its own, its store in a private directory, ready once it says so; and the
//! site's bucket made by `facecapturectl site create-bucket`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// The doors' passwords on the hub (the example's t1..t3).
pub const DOORS: [(&str, &str); 3] = [("t1", "pw-t1"), ("t2", "pw-t2"), ("t3", "pw-t3")];

/// The admin's password.
pub const ADMIN: &str = "pw-admin";

pub struct Hub {
    child: Option<Child>,
    pub dir: tempfile::TempDir,
    pub port: u16,
    pub log: PathBuf,
}

impl Drop for Hub {
    fn drop(&mut self) {
        self.stop();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// The nats-server program, or a skip message.
pub fn nats_server() -> Option<PathBuf> {
    ["/usr/sbin/nats-server", "/usr/bin/nats-server"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
}

impl Hub {
    /// Starts a hub and makes the bucket (one replica).
    pub fn start() -> Self {
        let dir = tempfile::tempdir().expect("hub dir");
        let cert = rcgen::generate_simple_self_signed(vec!["127.0.0.1".into()]).expect("cert");
        std::fs::write(dir.path().join("cert.pem"), cert.cert.pem()).expect("cert");
        std::fs::write(dir.path().join("key.pem"), cert.signing_key.serialize_pem()).expect("key");
        let mut hub = Self {
            child: None,
            log: dir.path().join("hub.log"),
            dir,
            port: free_port(),
        };
        hub.run();
        hub.create_bucket();
        hub
    }

    pub fn ca_file(&self) -> PathBuf {
        self.dir.path().join("cert.pem")
    }

    pub fn url(&self) -> String {
        format!("tls://127.0.0.1:{}", self.port)
    }

    /// Starts nats-server (again, on the same port and store) and waits until
    /// it is ready.
    pub fn run(&mut self) {
        let program = nats_server().expect("nats-server (Debian's package) is installed");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("log");
        let readies = |text: &str| text.matches("Server is ready").count();
        let before = readies(&std::fs::read_to_string(&self.log).unwrap_or_default());
        let d = self.dir.path();
        let mut cmd = Command::new(program);
        cmd.arg("-c")
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/site/hub.conf"))
            .env("HUB_NAME", "hub1")
            .env("HUB_HOST", "127.0.0.1")
            .env("HUB_PORT", self.port.to_string())
            .env("HUB_MONITOR_PORT", free_port().to_string())
            .env("HUB_CERT", d.join("cert.pem"))
            .env("HUB_KEY", d.join("key.pem"))
            .env("HUB_STORE", d.join("store"))
            .env("HUB_ADMIN_PASSWORD", ADMIN)
            .stdout(Stdio::null())
            .stderr(log);
        for (door, password) in DOORS {
            cmd.env(format!("HUB_{}_PASSWORD", door.to_uppercase()), password);
        }
        self.child = Some(cmd.spawn().expect("nats-server starts"));
        super::daemon::wait_count(&self.log, "Server is ready", before + 1);
    }

    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// A configuration's `[site]` for `door` (or the admin, for `None`).
    pub fn site_toml(&self, door: Option<&str>) -> String {
        let (name, password) = door.map_or(("admin", ADMIN), |d| {
            DOORS
                .iter()
                .copied()
                .find(|(n, _)| *n == d)
                .expect("a door of the example")
        });
        format!(
            "[site]\nhub = [\"{}\"]\ndoor = \"{}\"\nca_file = \"{}\"\nhub_credentials = \"{name}:{password}\"\n",
            self.url(),
            door.unwrap_or(""),
            self.ca_file().display()
        )
    }

    fn create_bucket(&self) {
        let config = self.dir.path().join("admin.toml");
        std::fs::write(&config, self.site_toml(None)).expect("admin config");
        let o = Command::new(env!("CARGO_BIN_EXE_facecapturectl"))
            .arg("--config")
            .arg(&config)
            .args(["site", "create-bucket", "--replicas", "1"])
            .output()
            .expect("facecapturectl");
        assert!(
            o.status.success(),
            "create-bucket: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
}
