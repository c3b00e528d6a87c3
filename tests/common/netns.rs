//! Network namespaces for the site tests: a bridge in this namespace holding two
//! addresses (AwareID's, the emulator's, and the hub's), and a namespace per door
//! joined to it by a veth pair, so that a partition is a real one: a door's route
//! to the hub's address is refused (`ip route add prohibit`), its route to
//! AwareID kept. Needs root and iproute2; every name is removed on drop.

use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

pub struct Net {
    id: String,
    bridge: String,
    /// The subnet's first three octets.
    prefix: String,
    doors: Vec<String>,
}

fn ip(args: &[&str]) {
    let o = Command::new("ip")
        .args(args)
        .output()
        .expect("ip (iproute2)");
    assert!(
        o.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&o.stderr)
    );
}

/// Whether this process may make namespaces (root with iproute2).
pub fn available() -> bool {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    root && Command::new("ip")
        .arg("-V")
        .output()
        .is_ok_and(|o| o.status.success())
}

impl Net {
    pub fn new() -> Self {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let pid = std::process::id() % 100_000;
        let id = format!("{pid}{n}");
        // A 10.x.y.0/24 of this process's own.
        let prefix = format!("10.{}.{}", 100 + (pid % 100), (pid / 100 + n * 7) % 250);
        let bridge = format!("fcb{id}");
        ip(&["link", "add", &bridge, "type", "bridge"]);
        for host in ["1", "2"] {
            ip(&[
                "addr",
                "add",
                &format!("{prefix}.{host}/24"),
                "dev",
                &bridge,
            ]);
        }
        ip(&["link", "set", &bridge, "up"]);
        Self {
            id,
            bridge,
            prefix,
            doors: Vec::new(),
        }
    }

    /// AwareID's address (the emulator listens here).
    pub fn awareid(&self) -> String {
        format!("{}.1", self.prefix)
    }

    /// The hub's address (every hub node listens here).
    pub fn hub(&self) -> String {
        format!("{}.2", self.prefix)
    }

    /// A namespace for `door`, on the bridge; its name, for `ip netns exec`.
    pub fn door(&mut self, door: &str) -> String {
        let n = self.doors.len() + 1;
        let ns = format!("fc{}{door}", self.id);
        let (outside, inside) = (format!("fv{}{n}", self.id), format!("fp{}{n}", self.id));
        ip(&["netns", "add", &ns]);
        ip(&[
            "link", "add", &outside, "type", "veth", "peer", "name", &inside,
        ]);
        ip(&["link", "set", &inside, "netns", &ns]);
        ip(&["link", "set", &outside, "master", &self.bridge]);
        ip(&["link", "set", &outside, "up"]);
        let addr = format!("{}.{}/24", self.prefix, 10 + n);
        ip(&["-n", &ns, "addr", "add", &addr, "dev", &inside]);
        ip(&["-n", &ns, "link", "set", &inside, "up"]);
        ip(&["-n", &ns, "link", "set", "lo", "up"]);
        self.doors.push(ns.clone());
        ns
    }

    /// Cuts the door in `ns` off from the hub (AwareID stays reachable).
    pub fn partition(&self, ns: &str) {
        ip(&[
            "-n",
            ns,
            "route",
            "add",
            "prohibit",
            &format!("{}/32", self.hub()),
        ]);
    }

    /// Gives it its route to the hub back.
    pub fn heal(&self, ns: &str) {
        ip(&[
            "-n",
            ns,
            "route",
            "del",
            "prohibit",
            &format!("{}/32", self.hub()),
        ]);
    }

    /// `ip netns exec NS`, to start a program in the door's namespace.
    pub fn exec(ns: &str) -> Vec<String> {
        ["ip", "netns", "exec", ns].map(String::from).to_vec()
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        for ns in &self.doors {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
        let _ = Command::new("ip")
            .args(["link", "del", &self.bridge])
            .status();
    }
}
