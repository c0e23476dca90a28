//! ternd-client's credentials helpers against ternd run as a child process: an access token
//! to `/v1/ice-servers` (HTTP and HTTPS) gives iceServers whose TURN URL and credentials
//! make an allocation with the tokio `Client`; a bad token is an HTTP status error; and, from
//! fake HTTP servers in the test, garbage, oversized, truncated and silent answers and an
//! endpoint nobody answers on are typed errors within a bound, never a panic.

mod common;
#[path = "common/peers.rs"]
mod peers;
#[path = "common/process.rs"]
mod process;
#[path = "common/tls.rs"]
mod tls;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use process::{Setup, Ternd};
use ternd_client::ice::{self, FetchOptions};
use ternd_client::{Client, ClientOptions, Error, Protocol};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// Every test is bounded by this, whatever goes wrong.
const BOUND: Duration = Duration::from_secs(15);
/// The HS256 key ternd checks access tokens with.
const TOKEN_KEY: &str = "client-credentials-token-key-0123456789";

/// Runs `f` on a current-thread runtime, bounded by [`BOUND`].
fn run<F: std::future::Future<Output = ()>>(f: F) {
    peers::run_bounded(BOUND, f);
}

/// ternd with the credentials endpoint on: HS256 access tokens under [`TOKEN_KEY`].
fn ternd(relay_ports: &str, tls: Option<(&std::path::Path, &std::path::Path)>) -> Ternd {
    let mut extra = vec!["--token-hs256-secret", TOKEN_KEY, "--http-rate-limit", "0"];
    if let Some((cert, key)) = tls {
        extra.extend([
            "--http-tls-cert",
            cert.to_str().unwrap(),
            "--http-tls-key",
            key.to_str().unwrap(),
        ]);
    }
    Ternd::start(Setup {
        relay_ports,
        tls,
        extra: &extra,
        ..Setup::default()
    })
}

/// An access token for `sub`, valid for 10 minutes, signed with `key`.
fn token_with(sub: &str, key: &str) -> String {
    common::hs256_token(sub, key)
}

fn token(sub: &str) -> String {
    token_with(sub, TOKEN_KEY)
}

/// Allocates with `url` and `credentials`, then relays one datagram to a local peer and
/// reads its echo: the credentials work end to end.
async fn allocate_and_echo(url: &str, credentials: ternd_client::Credentials, opts: ClientOptions) {
    let client = Client::connect_with(url, credentials, opts)
        .await
        .unwrap_or_else(|e| panic!("connect {url}: {e}"));
    let relay = client
        .allocate()
        .await
        .unwrap_or_else(|e| panic!("allocate over {url}: {e}"));
    let peer = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let peer_addr = peer.local_addr().unwrap();
    relay.send_to(b"hello relay", peer_addr).await.unwrap();
    let mut buf = [0u8; 64];
    let (n, from) = peer.recv_from(&mut buf).await.unwrap();
    assert_eq!(&buf[..n], b"hello relay");
    assert_eq!(from, relay.relayed_addr());
    peer.send_to(b"and back", from).await.unwrap();
    let (n, back_from) = relay.recv_from(&mut buf).await.unwrap();
    assert_eq!((&buf[..n], back_from), (&b"and back"[..], peer_addr));
    relay.close().await.unwrap();
}

#[test]
fn access_token_to_ice_servers_to_allocation() {
    let server = ternd("14000-14049", None);
    let endpoint = format!("http://{}/v1/ice-servers", server.http);
    run(async {
        let servers = ice::fetch_ice_servers(&endpoint, &token("alice"))
            .await
            .unwrap();
        let ttl = servers.ttl.expect("ternd sends ttl");
        assert!(
            ttl > Duration::ZERO && ttl <= Duration::from_secs(600),
            "ttl bounded by the token's exp: {ttl:?}"
        );
        assert!(servers.expires_on.is_some(), "{servers:?}");
        let stun = servers.stun_urls();
        assert_eq!(stun.len(), 1, "{servers:?}");
        assert_eq!(stun[0].port(), server.addr.port());
        assert!(
            matches!(
                Client::connect(
                    &stun[0].to_string(),
                    ternd_client::Credentials::new("u", "p")
                )
                .await,
                Err(Error::Url(_))
            ),
            "a stun: URL is no TURN server"
        );

        let (url, credentials) = servers.turn_server(Protocol::Udp).expect("turn: over UDP");
        assert_eq!(url, format!("turn:{}?transport=udp", server.addr));
        assert!(credentials.username.ends_with(":alice"), "{credentials:?}");
        allocate_and_echo(&url, credentials, ClientOptions::default()).await;

        let (url, credentials) = servers.turn_server(Protocol::Tcp).expect("turn: over TCP");
        assert_eq!(url, format!("turn:{}?transport=tcp", server.addr));
        allocate_and_echo(&url, credentials, ClientOptions::default()).await;
        // No TURN/TLS listener: no turns: URL.
        assert_eq!(servers.turn_server(Protocol::Tls), None);
    });
}

#[test]
fn https_endpoint_to_turns_allocation() {
    let dir = tls::TempDir::new("client-credentials");
    let (key, cert) = tls::self_signed(&dir.0, "server", "localhost");
    let server = ternd("14050-14099", Some((&cert, &key)));
    let endpoint = format!("https://127.0.0.1:{}/v1/ice-servers", server.http.port());
    let trusted = tls::tls_client(&cert);
    run(async {
        // The webpki roots do not trust a self-signed certificate.
        let e = ice::fetch_ice_servers(&endpoint, &token("bob"))
            .await
            .unwrap_err();
        assert!(matches!(e, Error::Tls(_)), "{e:?}");
        // Plain HTTP to the HTTPS listener: not an HTTP answer (or none at all).
        let plain = format!("http://{}/v1/ice-servers", server.http);
        let e = ice::fetch_ice_servers_with(
            &plain,
            &token("bob"),
            &FetchOptions::default().timeout(Duration::from_secs(3)),
        )
        .await
        .unwrap_err();
        assert!(
            matches!(e, Error::Http(_) | Error::Io(_) | Error::HttpTimeout { .. }),
            "{e:?}"
        );

        let opts = FetchOptions::default().tls_config(trusted.clone());
        let servers = ice::fetch_ice_servers_with(&endpoint, &token("bob"), &opts)
            .await
            .unwrap();
        let (url, credentials) = servers.turn_server(Protocol::Tls).expect("turns: URL");
        assert_eq!(
            url,
            format!("turns:{}?transport=tcp", server.tls.expect("TLS listener"))
        );
        assert!(credentials.username.ends_with(":bob"), "{credentials:?}");
        allocate_and_echo(
            &url,
            credentials,
            ClientOptions::default().tls_config(trusted),
        )
        .await;
    });
}

#[test]
fn a_bad_token_is_an_http_status_error() {
    let server = ternd("14100-14149", None);
    let endpoint = format!("http://{}/v1/ice-servers", server.http);
    run(async {
        for bad in [
            token_with("mallory", "not-the-key-not-the-key-not-the-key"),
            "not-a-jwt".to_owned(),
            String::new(),
        ] {
            match ice::fetch_ice_servers(&endpoint, &bad).await {
                Err(Error::HttpStatus {
                    status: 401,
                    error,
                    description,
                }) => {
                    assert_eq!(error.as_deref(), Some("invalid_token"), "{bad:?}");
                    assert!(description.is_some(), "{bad:?}");
                }
                other => panic!("{bad:?}: {other:?}"),
            }
        }
        // Another path: 404, the status still reported.
        let wrong = format!("http://{}/v1/nothing-here", server.http);
        let e = ice::fetch_ice_servers(&wrong, &token("alice"))
            .await
            .unwrap_err();
        assert_eq!(e.http_status(), Some(404), "{e:?}");
        // A token that cannot be a header value never leaves the client.
        let e = ice::fetch_ice_servers(&endpoint, "a\r\nX-Injected: 1")
            .await
            .unwrap_err();
        assert!(matches!(e, Error::Http(_)), "{e:?}");
    });
}

/// A fake HTTP server: accepts connections and, on each, reads the request head and then
/// writes `answer` (in pieces, so a large one streams), then closes; or stays silent
/// when `answer` is `None`.
async fn fake_server(answer: Option<Vec<u8>>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = listener.accept().await else {
                return;
            };
            let answer = answer.clone();
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match s.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let Some(answer) = answer else {
                    // Silent: hold the connection until the client gives up.
                    let _ = s.read(&mut buf).await;
                    return;
                };
                for piece in answer.chunks(16 * 1024) {
                    if s.write_all(piece).await.is_err() {
                        return;
                    }
                }
                let _ = s.shutdown().await;
            });
        }
    });
    addr
}

/// What `fetch_ice_servers` makes of `answer`, with a 2 s timeout and the default 64 KiB
/// body limit; checked to come back within 3 s.
async fn fetch_from(answer: Option<Vec<u8>>) -> Result<ice::IceServers, Error> {
    let addr = fake_server(answer).await;
    fetch_at(&format!("http://{addr}/v1/ice-servers")).await
}

async fn fetch_at(endpoint: &str) -> Result<ice::IceServers, Error> {
    let opts = FetchOptions::default().timeout(Duration::from_secs(2));
    let started = Instant::now();
    let r = ice::fetch_ice_servers_with(endpoint, "token", &opts).await;
    assert!(started.elapsed() < Duration::from_secs(3), "{r:?}");
    r
}

fn answer(head: &str, body: &[u8]) -> Option<Vec<u8>> {
    let mut a = head.replace('\n', "\r\n").into_bytes();
    a.extend_from_slice(b"\r\n");
    a.extend_from_slice(body);
    Some(a)
}

#[test]
fn a_fake_servers_answers_are_typed_errors() {
    run(async {
        // A well-formed answer from a server that is not ternd works.
        let body = br#"{"iceServers":[{"urls":"turn:127.0.0.1","username":"u","credential":"p"}]}"#;
        let ok = fetch_from(answer(
            &format!("HTTP/1.1 200 OK\nContent-Length: {}\n", body.len()),
            body,
        ))
        .await
        .unwrap();
        assert_eq!(ok.turn_servers().len(), 1);

        // Not HTTP at all.
        let e = fetch_from(Some(b"garbage garbage garbage\r\n\r\n".to_vec()))
            .await
            .unwrap_err();
        assert!(matches!(e, Error::Http(_)), "{e:?}");
        let e = fetch_from(Some((0..=255u8).cycle().take(100_000).collect()))
            .await
            .unwrap_err();
        assert!(matches!(e, Error::Http(_)), "{e:?}");
        // Closed without a word.
        let e = fetch_from(Some(Vec::new())).await.unwrap_err();
        assert!(matches!(e, Error::Http(_)), "{e:?}");
        // A head over the limit (16 KiB).
        let huge_header = format!("HTTP/1.1 200 OK\nX-Junk: {}\n", "j".repeat(100_000));
        let e = fetch_from(answer(&huge_header, b"")).await.unwrap_err();
        assert!(matches!(e, Error::Http(_)), "{e:?}");

        // A body over 64 KiB, declared, or chunked without a declared length.
        let big = vec![b' '; 1 << 20];
        let e = fetch_from(answer(
            &format!("HTTP/1.1 200 OK\nContent-Length: {}\n", big.len()),
            &big,
        ))
        .await
        .unwrap_err();
        assert!(matches!(e, Error::HttpTooLarge { limit: 65536 }), "{e:?}");
        let mut chunked = Vec::new();
        for _ in 0..100 {
            chunked.extend_from_slice(b"1000\r\n");
            chunked.extend_from_slice(&[b' '; 0x1000]);
            chunked.extend_from_slice(b"\r\n");
        }
        chunked.extend_from_slice(b"0\r\n\r\n");
        let e = fetch_from(answer(
            "HTTP/1.1 200 OK\nTransfer-Encoding: chunked\n",
            &chunked,
        ))
        .await
        .unwrap_err();
        assert!(matches!(e, Error::HttpTooLarge { .. }), "{e:?}");
        // Or one that ends before its declared length.
        let e = fetch_from(answer("HTTP/1.1 200 OK\nContent-Length: 100\n", b"{\"ice"))
            .await
            .unwrap_err();
        assert!(matches!(e, Error::Http(_)), "{e:?}");

        // HTTP, but not the JSON expected.
        for body in [
            &b"<html>hi</html>"[..],
            b"{}",
            b"{\"iceServers\":\"no\"}",
            b"\xff",
        ] {
            let e = fetch_from(answer(
                &format!("HTTP/1.1 200 OK\nContent-Length: {}\n", body.len()),
                body,
            ))
            .await
            .unwrap_err();
            assert!(matches!(e, Error::IceServers(_)), "{e:?}");
        }
        // Redirects are not followed; an error status with a huge body is still a status.
        let e = fetch_from(answer(
            "HTTP/1.1 302 Found\nLocation: http://127.0.0.1:1/\nContent-Length: 0\n",
            b"",
        ))
        .await
        .unwrap_err();
        assert_eq!(e.http_status(), Some(302), "{e:?}");
        let e = fetch_from(answer(
            &format!("HTTP/1.1 500 Oops\nContent-Length: {}\n", big.len()),
            &big,
        ))
        .await
        .unwrap_err();
        assert!(
            matches!(
                e,
                Error::HttpStatus {
                    status: 500,
                    error: None,
                    description: None
                }
            ),
            "{e:?}"
        );
    });
}

#[test]
fn an_endpoint_that_does_not_answer_times_out_within_the_bound() {
    run(async {
        // Accepts, reads the request, says nothing.
        let e = fetch_from(None).await.unwrap_err();
        assert!(
            matches!(e, Error::HttpTimeout { after } if after == Duration::from_secs(2)),
            "{e:?}"
        );
        // Answers the head, then stalls the body.
        let stalled = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = stalled.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let (mut s, _) = stalled.accept().await.unwrap();
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf).await;
            s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n{")
                .await
                .unwrap();
            tokio::time::sleep(Duration::from_secs(5)).await;
        });
        let e = fetch_at(&format!("http://{addr}/")).await.unwrap_err();
        assert!(matches!(e, Error::HttpTimeout { .. }), "{e:?}");
        server.abort();
        // A listener whose accept queue is full and that never accepts: the connection is
        // not completed (or, if the kernel completes it, never answered).
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let full = socket.listen(0).unwrap();
        let addr = full.local_addr().unwrap();
        let mut fillers = Vec::new();
        for _ in 0..4 {
            if let Ok(Ok(s)) = tokio::time::timeout(
                Duration::from_millis(200),
                tokio::net::TcpStream::connect(addr),
            )
            .await
            {
                fillers.push(s);
            }
        }
        let e = fetch_at(&format!("http://{addr}/")).await.unwrap_err();
        assert!(matches!(e, Error::HttpTimeout { .. }), "{e:?}");
        drop((full, fillers));
        // Nobody listening: refused at once.
        let closed = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap()
        };
        let e = fetch_at(&format!("http://{closed}/")).await.unwrap_err();
        assert!(
            matches!(&e, Error::Io(io) if io.kind() == std::io::ErrorKind::ConnectionRefused),
            "{e:?}"
        );
    });
}
