//! A real `redis-server` (Debian package `redis-server`) on loopback for the cluster
//! tests: started on a free port with nothing saved (`--save "" --appendonly no`), its
//! files in a temporary directory, SIGKILLed and reaped by PID on drop (also when a test
//! panics). Without the binary a test says SKIPPED (or fails with
//! `TERND_REQUIRE_INTEROP=1`, as `.ci/run` sets). Included with `#[path]`.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The binary (`TERND_REDIS_SERVER` overrides).
fn binary() -> String {
    std::env::var("TERND_REDIS_SERVER").unwrap_or_else(|_| "redis-server".to_owned())
}

/// True when redis-server is installed; otherwise says SKIPPED, or fails when
/// `TERND_REQUIRE_INTEROP=1`.
pub fn available(test: &str) -> bool {
    let ok = Command::new(binary())
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if ok {
        return true;
    }
    let required = std::env::var("TERND_REQUIRE_INTEROP").is_ok_and(|v| v == "1");
    assert!(
        !required,
        "redis-server required (TERND_REQUIRE_INTEROP=1) but not installed"
    );
    eprintln!(
        "SKIPPED {test}: redis-server not installed (apt-get install redis-server) - set \
         TERND_REQUIRE_INTEROP=1 to make this a failure"
    );
    false
}

/// A running redis-server.
pub struct RedisServer {
    child: Option<Child>,
    /// Its port on 127.0.0.1.
    pub port: u16,
    dir: PathBuf,
    password: Option<String>,
}

impl RedisServer {
    /// Starts one on a free port; returns once it answers PING (bounded, 10 s).
    pub fn start() -> RedisServer {
        Self::start_with(None)
    }

    /// Starts one that requires `password` (`--requirepass`).
    pub fn start_with(password: Option<&str>) -> RedisServer {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free port");
        let dir = std::env::temp_dir().join(format!("ternd-redis-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let mut s = RedisServer {
            child: None,
            port,
            dir,
            password: password.map(str::to_owned),
        };
        s.spawn();
        s
    }

    fn spawn(&mut self) {
        let mut cmd = Command::new(binary());
        cmd.args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(&self.dir)
            .arg("--logfile")
            .arg(self.dir.join("redis.log"));
        if let Some(p) = &self.password {
            cmd.args(["--requirepass", p]);
        }
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn redis-server");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if self.ping() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let log = std::fs::read_to_string(self.dir.join("redis.log")).unwrap_or_default();
        panic!("redis-server did not answer PING within 10 s:\n{log}");
    }

    /// Whether it answers PING (with AUTH first when it has a password).
    pub fn ping(&self) -> bool {
        let addr = SocketAddr::from(([127, 0, 0, 1], self.port));
        let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_millis(200)) else {
            return false;
        };
        let _ = s.set_read_timeout(Some(Duration::from_millis(500)));
        let mut req = String::new();
        if let Some(p) = &self.password {
            req.push_str(&format!("AUTH {p}\r\n"));
        }
        req.push_str("PING\r\n");
        if s.write_all(req.as_bytes()).is_err() {
            return false;
        }
        let mut buf = [0u8; 64];
        let mut got = Vec::new();
        while let Ok(n) = s.read(&mut buf) {
            if n == 0 {
                break;
            }
            got.extend_from_slice(&buf[..n]);
            if String::from_utf8_lossy(&got).contains("+PONG") {
                return true;
            }
        }
        false
    }

    /// `redis://` URL of it (database 0).
    pub fn url(&self) -> String {
        match &self.password {
            Some(p) => format!("redis://:{p}@127.0.0.1:{}/0", self.port),
            None => format!("redis://127.0.0.1:{}/0", self.port),
        }
    }

    /// Kills it (SIGKILL) and reaps it.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Kills it and starts an empty one on the same port (a restart that lost its data).
    pub fn restart_empty(&mut self) {
        self.stop();
        self.spawn();
    }

    /// One command through `redis-cli` (for reading keys in tests): its output.
    pub fn cli(&self, args: &[&str]) -> String {
        let out = Command::new("redis-cli")
            .args(["-p", &self.port.to_string()])
            .args(args)
            .output()
            .expect("redis-cli");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
