//! A site hub for the tests: Debian's nats-server (installed by tests/run.sh)
//! running the shipped examples/site/hub.conf (one node) or hub-cluster.conf
//! (three, the bucket replicated three times), over TLS with a certificate of
//! its own, each node's store in a private directory, ready once it says so; and
//! the site's bucket made by `facecapturectl site create-bucket`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// The doors' passwords on the hub (the example's t1..t3).
pub const DOORS: [(&str, &str); 3] = [("t1", "pw-t1"), ("t2", "pw-t2"), ("t3", "pw-t3")];

/// The admin's password.
pub const ADMIN: &str = "pw-admin";

struct Node {
    child: Option<Child>,
    port: u16,
    cluster_port: u16,
    monitor_port: u16,
    log: PathBuf,
}

pub struct Hub {
    nodes: Vec<Node>,
    pub dir: tempfile::TempDir,
    /// The address every node listens on.
    pub host: String,
}

impl Drop for Hub {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A port free on `host` now.
pub fn free_port(host: &str) -> u16 {
    std::net::TcpListener::bind((host, 0))
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// The nats-server program.
pub fn nats_server() -> Option<PathBuf> {
    ["/usr/sbin/nats-server", "/usr/bin/nats-server"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
}

impl Hub {
    /// One hub on loopback, with the bucket (one replica).
    pub fn start() -> Self {
        Self::start_on("127.0.0.1", 1)
    }

    /// `nodes` hub nodes (1, or 3 as a cluster) listening on `host`, with the
    /// bucket replicated on each.
    pub fn start_on(host: &str, nodes: usize) -> Self {
        let dir = tempfile::tempdir().expect("hub dir");
        let cert = rcgen::generate_simple_self_signed(vec![host.into()]).expect("cert");
        std::fs::write(dir.path().join("cert.pem"), cert.cert.pem()).expect("cert");
        std::fs::write(dir.path().join("key.pem"), cert.signing_key.serialize_pem()).expect("key");
        let nodes = (0..nodes)
            .map(|i| Node {
                child: None,
                port: free_port(host),
                cluster_port: free_port(host),
                monitor_port: free_port(host),
                log: dir.path().join(format!("hub{i}.log")),
            })
            .collect();
        let mut hub = Self {
            nodes,
            dir,
            host: host.to_owned(),
        };
        for i in 0..hub.nodes.len() {
            hub.spawn(i);
        }
        for i in 0..hub.nodes.len() {
            hub.wait_ready(i);
        }
        hub.create_bucket();
        hub
    }

    pub fn ca_file(&self) -> PathBuf {
        self.dir.path().join("cert.pem")
    }

    /// Every node's URL, as a door's `site.hub` lists them.
    pub fn urls(&self) -> Vec<String> {
        self.nodes
            .iter()
            .map(|n| format!("tls://{}:{}", self.host, n.port))
            .collect()
    }

    /// Node `i`'s monitoring port (`/varz`, `/healthz`).
    pub fn monitor_port(&self, i: usize) -> u16 {
        self.nodes[i].monitor_port
    }

    /// The first node's URL.
    pub fn url(&self) -> String {
        self.urls().remove(0)
    }

    /// Node `i`'s monitoring endpoint `path` (`/varz`, `/healthz`): the body of
    /// a 200 answer, or why there was none.
    pub fn monitor(&self, i: usize, path: &str) -> Result<String, ureq::Error> {
        let url = format!("http://{}:{}{path}", self.host, self.nodes[i].monitor_port);
        ureq::get(&url).call()?.body_mut().read_to_string()
    }

    /// Waits until node `i` answers `/healthz` with 200: it serves clients and,
    /// in a cluster, knows the JetStream metadata leader and is current with it.
    /// (A log line is no sign: a node that rejoins a cluster whose leader did
    /// not change logs no "new metadata leader".) Bounded for a hung server.
    fn wait_ready(&self, i: usize) {
        let t = std::time::Instant::now();
        loop {
            let why = match self.monitor(i, "/healthz") {
                Ok(_) => return,
                Err(e) => e,
            };
            assert!(
                t.elapsed() < std::time::Duration::from_secs(60),
                "hub{i} is not healthy after 60 s ({why}):\n{}",
                std::fs::read_to_string(&self.nodes[i].log).unwrap_or_default()
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    fn spawn(&mut self, i: usize) {
        let program = nats_server().expect("nats-server (Debian's package) is installed");
        let d = self.dir.path().to_owned();
        let n = &self.nodes[i];
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&n.log)
            .expect("log");
        let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/site");
        let cluster = self.nodes.len() > 1;
        let conf = examples.join(if cluster {
            "hub-cluster.conf"
        } else {
            "hub.conf"
        });
        let mut cmd = Command::new(program);
        cmd.arg("-c")
            .arg(conf)
            .env("HUB_NAME", format!("hub{i}"))
            .env("HUB_HOST", &self.host)
            .env("HUB_PORT", n.port.to_string())
            .env("HUB_MONITOR_PORT", n.monitor_port.to_string())
            .env("HUB_CLUSTER_PORT", n.cluster_port.to_string())
            .env("HUB_CERT", d.join("cert.pem"))
            .env("HUB_KEY", d.join("key.pem"))
            .env("HUB_STORE", d.join(format!("store{i}")))
            .env("HUB_ADMIN_PASSWORD", ADMIN)
            .stdout(Stdio::null())
            .stderr(log);
        let others: Vec<u16> = (0..self.nodes.len())
            .filter(|j| *j != i)
            .map(|j| self.nodes[j].cluster_port)
            .collect();
        for (name, port) in ["HUB_ROUTE_A", "HUB_ROUTE_B"].iter().zip(others) {
            cmd.env(name, format!("nats-route://{}:{port}", self.host));
        }
        for (door, password) in DOORS {
            cmd.env(format!("HUB_{}_PASSWORD", door.to_uppercase()), password);
        }
        self.nodes[i].child = Some(cmd.spawn().expect("nats-server starts"));
    }

    /// Starts every node that is down again (same ports and stores) and waits
    /// until each is ready.
    pub fn run(&mut self) {
        let down: Vec<usize> = (0..self.nodes.len())
            .filter(|i| self.nodes[*i].child.is_none())
            .collect();
        for i in &down {
            self.spawn(*i);
        }
        for i in down {
            self.wait_ready(i);
        }
    }

    /// Kills node `i` (SIGKILL).
    pub fn kill(&mut self, i: usize) {
        if let Some(mut c) = self.nodes[i].child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Kills every node.
    pub fn stop(&mut self) {
        for i in 0..self.nodes.len() {
            self.kill(i);
        }
    }

    /// Deletes every consumer of the site's bucket as the admin (the hub
    /// losing the node that held the doors' watches, while their connections
    /// stay up); how many there were.
    pub fn delete_watches(&self) -> usize {
        use futures_util::StreamExt;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        runtime.block_on(async {
            let client = async_nats::ConnectOptions::new()
                .user_and_password("admin".into(), ADMIN.into())
                .add_root_certificates(self.ca_file())
                .require_tls(true)
                .connect(self.urls())
                .await
                .expect("admin connects");
            let js = async_nats::jetstream::new(client);
            let stream = js.get_stream("KV_facecapture").await.expect("stream");
            let names: Vec<String> = stream
                .consumer_names()
                .map(|n| n.expect("consumer name"))
                .collect()
                .await;
            for n in &names {
                stream.delete_consumer(n).await.expect("delete consumer");
            }
            names.len()
        })
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
        let hub: Vec<String> = self.urls().iter().map(|u| format!("\"{u}\"")).collect();
        format!(
            "[site]\nhub = [{}]\ndoor = \"{}\"\nca_file = \"{}\"\nhub_credentials = \"{name}:{password}\"\n",
            hub.join(", "),
            door.unwrap_or(""),
            self.ca_file().display()
        )
    }

    fn create_bucket(&self) {
        let config = self.dir.path().join("admin.toml");
        std::fs::write(&config, self.site_toml(None)).expect("admin config");
        let o = Command::new(super::program::facecapturectl())
            .arg("--config")
            .arg(&config)
            .args(["site", "create-bucket", "--replicas"])
            .arg(self.nodes.len().to_string())
            .output()
            .expect("facecapturectl");
        assert!(
            o.status.success(),
            "create-bucket: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
}
