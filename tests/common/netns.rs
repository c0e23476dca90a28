//! Two network namespaces the test makes and removes itself, for what loopback cannot show:
//! a server side holding [`A`] and [`B`] (`10.99.0.1/24`, `10.99.0.2/24`) and a client
//! side holding [`CLIENT`] (`10.99.0.3/24`), joined by a veth pair: a client host with one
//! address that reaches two server addresses. Those are the only addresses added, and only
//! inside the namespaces; `lo` is up in both. Processes run in them with `ip netns exec`;
//! [`Netns::spawn`]ed ones are SIGKILLed and reaped by PID on drop, then both namespaces
//! are deleted. Needs root and iproute2: without them a test says SKIPPED (or
//! fails with `TERND_REQUIRE_INTEROP=1`). Included with `#[path]`.
#![allow(dead_code)]

use std::process::{Child, Command, Output, Stdio};

/// The server side's two addresses.
pub const A: &str = "10.99.0.1";
pub const B: &str = "10.99.0.2";
/// The client side's address.
pub const CLIENT: &str = "10.99.0.3";

/// Which namespace.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Side {
    Server,
    Client,
}

/// True when network namespaces can be made here; otherwise says SKIPPED, or fails when
/// `TERND_REQUIRE_INTEROP=1`.
pub fn available(test: &str) -> bool {
    // One name per call: tests of one binary probe in parallel.
    static PROBES: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = PROBES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let probe = format!("ternd-probe-{}-{n}", std::process::id());
    let ok = Command::new("ip")
        .args(["netns", "add", &probe])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if ok {
        let _ = Command::new("ip").args(["netns", "del", &probe]).status();
        return true;
    }
    let required = std::env::var("TERND_REQUIRE_INTEROP").is_ok_and(|v| v == "1");
    assert!(
        !required,
        "network namespaces (root and iproute2) required (TERND_REQUIRE_INTEROP=1)"
    );
    eprintln!(
        "SKIPPED {test}: cannot make a network namespace (needs root and iproute2) - set \
         TERND_REQUIRE_INTEROP=1 to make this a failure"
    );
    false
}

/// The two namespaces and the processes started in them.
pub struct Netns {
    /// The server side's name.
    pub name: String,
    /// The client side's name.
    pub client: String,
    children: Vec<Child>,
    /// `/etc/netns/<client>`, when [`Netns::client_etc`] made it.
    etc: Option<std::path::PathBuf>,
}

fn ip(args: &[&str]) {
    let st = Command::new("ip").args(args).status().expect("run ip");
    assert!(st.success(), "ip {}", args.join(" "));
}

impl Netns {
    /// Makes `ternd-<tag>-<pid>` (server side) and `ternd-<tag>c-<pid>` (client side).
    pub fn new(tag: &str) -> Netns {
        let pid = std::process::id();
        let (name, client) = (format!("ternd-{tag}-{pid}"), format!("ternd-{tag}c-{pid}"));
        for n in [&name, &client] {
            let _ = Command::new("ip")
                .args(["netns", "del", n])
                .stderr(Stdio::null())
                .status();
            ip(&["netns", "add", n]);
        }
        let ns = Netns {
            name,
            client,
            children: Vec::new(),
            etc: None,
        };
        let (s, c) = (ns.name.as_str(), ns.client.as_str());
        ip(&["-n", s, "link", "set", "lo", "up"]);
        ip(&["-n", c, "link", "set", "lo", "up"]);
        ip(&[
            "-n", s, "link", "add", "va", "type", "veth", "peer", "name", "vb",
        ]);
        ip(&["-n", s, "link", "set", "vb", "netns", c]);
        ip(&["-n", s, "addr", "add", &format!("{A}/24"), "dev", "va"]);
        ip(&["-n", s, "addr", "add", &format!("{B}/24"), "dev", "va"]);
        ip(&["-n", c, "addr", "add", &format!("{CLIENT}/24"), "dev", "vb"]);
        ip(&["-n", s, "link", "set", "va", "up"]);
        ip(&["-n", c, "link", "set", "vb", "up"]);
        ns
    }

    /// The name of `side`'s namespace.
    pub fn of(&self, side: Side) -> &str {
        match side {
            Side::Server => &self.name,
            Side::Client => &self.client,
        }
    }

    /// Gives the client side a file of its own in place of `/etc/<file>` (`ip netns exec`
    /// bind-mounts `/etc/netns/<name>/<file>` over it), e.g. `resolv.conf` naming a DNS
    /// server the test runs on the server side. Removed on drop.
    pub fn client_etc(&mut self, file: &str, text: &str) {
        let dir = std::path::Path::new("/etc/netns").join(&self.client);
        std::fs::create_dir_all(&dir).expect("make /etc/netns/<client>");
        std::fs::write(dir.join(file), text).expect("write /etc/netns/<client>/<file>");
        self.etc = Some(dir);
    }

    /// A command that runs `program` on the server side.
    pub fn command(&self, program: &str) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.name, program]);
        c
    }

    /// Starts `program args` on the server side, output to `log` (a file path); killed on drop.
    pub fn spawn(&mut self, program: &str, args: &[&str], log: &std::path::Path) {
        let child = self
            .command(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(log).expect("log file"))
            .stderr(std::fs::File::create(log.with_extension("err")).expect("log file"))
            .spawn()
            .expect("spawn in the namespace");
        self.children.push(child);
    }

    /// Runs `program args` on the server side to completion.
    pub fn run(&self, program: &str, args: &[&str]) -> Output {
        self.command(program)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("run in the namespace")
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        for n in [&self.client, &self.name] {
            let _ = Command::new("ip").args(["netns", "del", n]).status();
        }
        if let Some(dir) = &self.etc {
            let _ = std::fs::remove_dir_all(dir);
            // /etc/netns itself, when nothing else is in it.
            let _ = std::fs::remove_dir("/etc/netns");
        }
    }
}
