//! A real browser through ONE ternd: Debian's Chromium (driven by `playwright-core`) runs
//! two relay-only `RTCPeerConnection`s (`iceTransportPolicy: "relay"`) with a data
//! channel between them, separately over TURN/UDP, TURN/TCP and TURN/TLS (`turns:` with a
//! certificate for a host name, signed by a CA made here with openssl, that Chromium is
//! told to accept by its SPKI). The script (`tests/browser/relay_ice_servers.mjs`) fetches
//! its credentials from ternd's `/v1/ice-servers` with an access token from
//! `ternd token issue`, keeps the one URL of the transport under test, and reports both
//! sides' selected candidate pairs (relay/relay, with the expected `relayProtocol`) and
//! whether all 50 messages arrived in order. `/metrics` then shows the allocations under
//! that transport. A negative test runs the same script against a ternd whose peer policy
//! refuses the relay addresses and expects a bounded failure.
//!
//! Chromium gathers no candidates on a host with only `lo`, so ternd and Chromium run in
//! two network namespaces the test makes (`tests/common/netns.rs`): ternd on 10.99.0.1,
//! Chromium on 10.99.0.3. Skipped loudly without Chromium, node, playwright-core or
//! network namespaces (root, iproute2); required with `TERND_REQUIRE_INTEROP=1`.

#[path = "common/browser.rs"]
mod browser;
mod common;
#[path = "common/netns.rs"]
mod netns;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::metric;

/// The TURN server's host name: in the certificate and in the URLs ternd hands out;
/// resolved to [`netns::A`] by a DNS responder (`tests/browser/dns.mjs`) on [`netns::B`]
/// that the client namespace's own `resolv.conf` names. Chromium's WebRTC resolves TURN
/// hosts with DNS queries only: neither `/etc/hosts` nor `--host-resolver-rules` reach
/// it (701 "TURN host lookup received error").
const HOST: &str = "turn.ternd.test";
const TOKEN_KEY: &str = "browser-relay-token-key-0123456789";
const MESSAGES: u64 = 50;

/// A scratch directory, removed on drop.
struct Dir(PathBuf);

impl Dir {
    fn new(tag: &str) -> Dir {
        let p = std::env::temp_dir().join(format!("ternd-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        Dir(p)
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn openssl(args: &[&str], dir: &Path) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .expect("openssl is needed to make the test certificates");
    assert!(
        out.status.success(),
        "openssl {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A CA and a server certificate for [`HOST`] it signed, in `dir`: `chain.pem` (server
/// then CA), `server.key`. Returns the base64 SHA-256 of the server certificate's
/// SubjectPublicKeyInfo, as `--ignore-certificate-errors-spki-list` takes it.
fn certificates(dir: &Path) -> String {
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
    ];
    let mut ca = vec![
        "req",
        "-x509",
        "-days",
        "1",
        "-subj",
        "/CN=ternd browser test CA",
    ];
    ca.extend(ec);
    ca.extend([
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
        "-keyout",
        "ca.key",
        "-out",
        "ca.crt",
    ]);
    openssl(&ca, dir);
    let subj = format!("/CN={HOST}");
    let mut csr = vec!["req", "-subj", &subj];
    csr.extend(ec);
    csr.extend(["-keyout", "server.key", "-out", "server.csr"]);
    openssl(&csr, dir);
    std::fs::write(
        dir.join("server.ext"),
        format!(
            "subjectAltName=DNS:{HOST}\nbasicConstraints=critical,CA:FALSE\n\
             keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n"
        ),
    )
    .unwrap();
    openssl(
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-days",
            "1",
            "-extfile",
            "server.ext",
            "-out",
            "server.crt",
        ],
        dir,
    );
    let chain = [
        std::fs::read_to_string(dir.join("server.crt")).unwrap(),
        std::fs::read_to_string(dir.join("ca.crt")).unwrap(),
    ]
    .concat();
    std::fs::write(dir.join("chain.pem"), chain).unwrap();
    openssl(
        &[
            "x509",
            "-in",
            "server.crt",
            "-pubkey",
            "-noout",
            "-out",
            "server.pub",
        ],
        dir,
    );
    openssl(
        &[
            "pkey",
            "-pubin",
            "-in",
            "server.pub",
            "-outform",
            "der",
            "-out",
            "server.spki",
        ],
        dir,
    );
    openssl(
        &[
            "dgst",
            "-sha256",
            "-binary",
            "-out",
            "server.spki.sha256",
            "server.spki",
        ],
        dir,
    );
    openssl(
        &[
            "base64",
            "-A",
            "-in",
            "server.spki.sha256",
            "-out",
            "server.spki.b64",
        ],
        dir,
    );
    std::fs::read_to_string(dir.join("server.spki.b64"))
        .unwrap()
        .trim()
        .to_owned()
}

/// ternd in the server namespace of `ns`: TURN on [`netns::A`]:3478 (UDP and TCP) and
/// :5349 (TLS), the credentials endpoint and metrics on :9641, relays on [`netns::A`].
/// `policy` is the peer policy's arguments.
fn start_ternd(ns: &mut netns::Netns, dir: &Path, policy: &[&str]) {
    let a = netns::A;
    let (listen, tls, http) = (
        format!("{a}:3478"),
        format!("{a}:5349"),
        format!("{a}:9641"),
    );
    let (chain, key) = (dir.join("chain.pem"), dir.join("server.key"));
    let mut args = vec![
        "--listen",
        &listen,
        "--tls-listen",
        &tls,
        "--cert",
        chain.to_str().unwrap(),
        "--key",
        key.to_str().unwrap(),
        "--http-listen",
        &http,
        "--http-public-host",
        HOST,
        "--secret",
        common::SECRET,
        "--token-hs256-secret",
        TOKEN_KEY,
        "--relay-ip",
        a,
        "--relay-ports",
        "40000-40199",
        "--workers",
        "1",
        "--drain-timeout",
        "0s",
        "--log-level",
        "warn",
    ];
    args.extend(policy);
    ns.spawn(env!("CARGO_BIN_EXE_ternd"), &args, &dir.join("ternd.log"));
    let start = Instant::now();
    while get(ns, "/readyz").is_none() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "ternd did not become ready in the namespace: {}",
            std::fs::read_to_string(dir.join("ternd.err")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A DNS responder on [`netns::B`]:53 answering [`HOST`] with [`netns::A`], and the client
/// side's `resolv.conf` naming it.
fn resolver(ns: &mut netns::Netns, dir: &Path) {
    let arg = serde_json::json!({
        "listen": netns::B,
        "port": 53,
        "names": { HOST: netns::A },
    })
    .to_string();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser/dns.mjs");
    let log = dir.join("dns.log");
    ns.spawn("node", &[script.to_str().unwrap(), &arg], &log);
    ns.client_etc("resolv.conf", &format!("nameserver {}\n", netns::B));
    let start = Instant::now();
    while !std::fs::read_to_string(&log).is_ok_and(|l| l.contains("listening")) {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the DNS responder did not start: {}",
            std::fs::read_to_string(log.with_extension("err")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// GET `path` on ternd's HTTP listener from inside the server namespace (with node, which
/// the browser tests need anyway): the body, if 200.
fn get(ns: &netns::Netns, path: &str) -> Option<String> {
    const GET: &str = "fetch(process.argv[1], { signal: AbortSignal.timeout(5000) })\
        .then(async (r) => { if (r.status !== 200) process.exit(1); \
        process.stdout.write(await r.text()); }).catch(() => process.exit(1));";
    let url = format!("http://{}:9641{path}", netns::A);
    let out = ns.run("node", &["-e", GET, &url]);
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// An access token for `sub`, as `ternd token issue` makes one.
fn token(sub: &str) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_ternd"))
        .args(["token", "issue", "--token-hs256-secret", TOKEN_KEY])
        .args(["--sub", sub, "--ttl", "10m"])
        .output()
        .expect("ternd token issue");
    assert!(out.status.success(), "ternd token issue: {out:?}");
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// Runs the script in the client namespace for `transport`; its result and stderr.
/// Chromium accepts ternd's certificate when given its SPKI hash (`spki`).
fn call(ns: &netns::Netns, transport: &str, spki: Option<&str>) -> (serde_json::Value, String) {
    let flags: Vec<String> = spki
        .map(|s| format!("--ignore-certificate-errors-spki-list={s}"))
        .into_iter()
        .collect();
    let arg = serde_json::json!({
        "endpoint": format!("http://{}:9641", netns::A),
        "token": token(&format!("browser-{transport}")),
        "transport": transport,
        "messages": MESSAGES,
        "chromiumArgs": flags,
    });
    browser::run_in(
        Some(ns.of(netns::Side::Client)),
        "relay_ice_servers.mjs",
        &arg,
    )
}

fn created(metrics: &str, transport: &str) -> f64 {
    metric(
        metrics,
        "ternd_allocations_created_total",
        &[("transport", transport)],
    )
}

#[test]
fn chromium_relays_a_data_channel_over_turn_udp_tcp_and_tls_with_fetched_credentials() {
    let name = "chromium_relays_a_data_channel_over_turn_udp_tcp_and_tls";
    if !browser::available(name) || !netns::available(name) {
        return;
    }
    let started = Instant::now();
    let dir = Dir::new("browser-relay");
    let spki = certificates(&dir.0);
    let mut ns = netns::Netns::new("brelay");
    resolver(&mut ns, &dir.0);
    start_ternd(&mut ns, &dir.0, &["--allow-peer", "10.99.0.0/24"]);
    let relay = format!("relay {}:", netns::A);
    for transport in ["udp", "tcp", "tls"] {
        let before = get(&ns, "/metrics").expect("metrics");
        let (result, log) = call(&ns, transport, Some(&spki));
        let after = get(&ns, "/metrics").expect("metrics");
        let (a, b) = (&result["a"], &result["b"]);
        eprintln!(
            "{transport}: ok {} via {}; a: {} -> {} ({}), b: {} -> {} ({}); received {}/{} \
             in order {}, echoed {} in order {}; {} ms",
            result["ok"],
            result["url"],
            a["local"],
            a["remote"],
            a["relayProtocol"],
            b["local"],
            b["remote"],
            b["relayProtocol"],
            result["received"],
            result["sent"],
            result["receivedInOrder"],
            result["echoed"],
            result["echoedInOrder"],
            result["ms"],
        );
        assert_eq!(result["ok"], true, "{transport}: {result}\n{log}");
        assert_eq!(result["sent"], MESSAGES, "{result}");
        assert_eq!(result["received"], MESSAGES, "{result}");
        assert_eq!(result["echoed"], MESSAGES, "{result}");
        assert_eq!(result["receivedInOrder"], true, "{result}");
        assert_eq!(result["echoedInOrder"], true, "{result}");
        let url = result["url"].as_str().unwrap_or("");
        let expected_url = match transport {
            "udp" => format!("turn:{HOST}:3478?transport=udp"),
            "tcp" => format!("turn:{HOST}:3478?transport=tcp"),
            _ => format!("turns:{HOST}:5349?transport=tcp"),
        };
        assert_eq!(url, expected_url, "{result}");
        for side in [a, b] {
            for end in ["local", "remote"] {
                let c = side[end].as_str().unwrap_or("");
                assert!(c.starts_with(&relay), "{transport} {end}: {result}");
            }
            assert_eq!(side["relayProtocol"], transport, "{result}");
        }
        // Both peer connections allocated over this transport, none over the others.
        for t in ["udp", "tcp", "tls"] {
            let n = created(&after, t) - created(&before, t);
            let want = if t == transport { 2.0 } else { 0.0 };
            assert!(
                if t == transport { n >= want } else { n == want },
                "{transport} run: {n} allocations created over {t}\n{after}"
            );
        }
        eprintln!(
            "{transport}: metrics: ternd_allocations_created_total{{transport=\"{transport}\"}} \
             {} -> {}",
            created(&before, transport),
            created(&after, transport)
        );
    }
    let metrics = get(&ns, "/metrics").expect("metrics");
    assert_eq!(
        metric(
            &metrics,
            "ternd_dropped_total",
            &[("reason", "peer_denied")]
        ),
        0.0
    );
    // The certificate is checked: without its SPKI hash Chromium refuses it, gathers no
    // TURN/TLS candidate, and no TLS allocation is made.
    let (result, log) = call(&ns, "tls", None);
    let after = get(&ns, "/metrics").expect("metrics");
    eprintln!(
        "tls without the SPKI flag: ok {} in {} ms: {}",
        result["ok"], result["ms"], result["error"]
    );
    assert_eq!(result["ok"], false, "{result}\n{log}");
    assert!(
        result["error"]
            .as_str()
            .is_some_and(|e| e.contains("gathered no relay candidate")),
        "{result}"
    );
    assert_eq!(created(&after, "tls"), created(&metrics, "tls"), "{after}");
    drop(ns);
    eprintln!("udp, tcp and tls in {} ms", started.elapsed().as_millis());
}

#[test]
fn chromium_fails_in_bounded_time_when_ternd_refuses_to_relay() {
    let name = "chromium_fails_in_bounded_time_when_ternd_refuses_to_relay";
    if !browser::available(name) || !netns::available(name) {
        return;
    }
    let dir = Dir::new("browser-deny");
    let spki = certificates(&dir.0);
    let mut ns = netns::Netns::new("bdeny");
    resolver(&mut ns, &dir.0);
    // The relay addresses themselves are denied peers: every CreatePermission between the
    // two relayed candidates is refused (403), so no ICE check gets through.
    start_ternd(&mut ns, &dir.0, &["--deny-peer", "10.99.0.0/24"]);
    let started = Instant::now();
    let (result, log) = call(&ns, "udp", Some(&spki));
    let took = started.elapsed();
    let metrics = get(&ns, "/metrics").expect("metrics");
    let denied = metric(
        &metrics,
        "ternd_dropped_total",
        &[("reason", "peer_denied")],
    );
    eprintln!(
        "denied relaying: ok {} after {} ms (script {} ms): {}; received {}/{}; \
         ternd_dropped_total{{reason=\"peer_denied\"}} {denied}; \
         ternd_allocations_created_total{{transport=\"udp\"}} {}",
        result["ok"],
        took.as_millis(),
        result["ms"],
        result["error"],
        result["received"],
        result["sent"],
        created(&metrics, "udp"),
    );
    assert_eq!(result["ok"], false, "{result}\n{log}");
    assert!(
        result["error"].as_str().is_some_and(|e| !e.is_empty()),
        "the script says why: {result}"
    );
    assert!(
        took < Duration::from_secs(30),
        "a bounded failure, not a hang"
    );
    assert!(denied >= 1.0, "ternd refused the peers\n{metrics}");
    assert!(
        created(&metrics, "udp") >= 2.0,
        "the allocations themselves succeeded: it is relaying that failed\n{metrics}"
    );
}
