//! The `ternd` binary: parse the command line, load the configuration, start the server.

use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use clap::Parser as _;
use clap::error::{ContextKind, ContextValue, ErrorKind};
use ternd::config::{Cli, Config};

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            if let Some(hint) = coturn_flag(&e) {
                eprintln!("ternd: {hint}");
                return ExitCode::from(2);
            }
            e.exit()
        }
    };
    if cli.command.is_none() {
        let names = std::env::vars_os().filter_map(|(k, _)| k.into_string().ok());
        for warning in ternd::config::hints::unknown_env(names) {
            eprintln!("ternd: warning: {warning}");
        }
    }
    if let Some(code) = ternd::operator::run(&cli) {
        return code;
    }
    if let Some(ternd::config::Command::Credentials(args)) = &cli.command {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        return match ternd::credentials_cmd::run(args, now) {
            Ok(out) => {
                print!("{out}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("ternd credentials: {e}");
                ExitCode::from(2)
            }
        };
    }
    if let Some(ternd::config::Command::Token(ternd::config::TokenArgs {
        command: ternd::config::TokenCommand::Issue(args),
    })) = &cli.command
    {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        return match ternd::token_cmd::run(args, now) {
            Ok(out) => {
                print!("{out}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("ternd token issue: {e}");
                ExitCode::from(2)
            }
        };
    }
    if let Some(ternd::config::Command::ImportCoturn(args)) = &cli.command {
        return import_coturn(&args.file);
    }
    if let Some(ternd::config::Command::Forwarder(a)) = &cli.command {
        return match ternd::bench::forward::run(a.listen, a.peer, a.workers, a.duration, a.udp_gso)
        {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("ternd forwarder: {e}");
                ExitCode::FAILURE
            }
        };
    }
    if let Some(ternd::config::Command::Bench(args)) = &cli.command {
        return match ternd::bench::run(args) {
            Ok(report) => {
                if args.json {
                    println!("{}", report.json());
                } else {
                    print!("{}", report.table());
                }
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("ternd bench: {e}");
                ExitCode::FAILURE
            }
        };
    }
    let config = match Config::load(&cli).and_then(Config::load_files) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("ternd: configuration error: {e}");
            return ExitCode::from(2);
        }
    };
    if cli.check_config {
        println!("ternd: configuration OK");
        return ExitCode::SUCCESS;
    }
    if let Err(e) = ternd::logging::init(&config.log) {
        eprintln!("ternd: {e}");
        return ExitCode::FAILURE;
    }
    if !config.not_yet_supported.is_empty() {
        eprintln!(
            "ternd: not yet supported in this build: {} (remove it from the configuration)",
            config.not_yet_supported.join(", ")
        );
        return ExitCode::from(2);
    }
    let mut config = config;
    let generated = if config.auth.secrets.is_empty() && config.auth.users.is_empty() {
        let mut raw = [0u8; 24];
        if getrandom::fill(&mut raw).is_err() {
            eprintln!("ternd: cannot read the OS random number generator");
            return ExitCode::FAILURE;
        }
        let secret = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw);
        config.auth.secrets.push(secret.clone());
        Some(secret)
    } else {
        None
    };

    let started = std::time::Instant::now();
    let mut signals = match Signals::install() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("ternd: cannot install signal handlers: {e}");
            return ExitCode::FAILURE;
        }
    };
    // The HTTP listener is bound first, and its address as bound (the actual port when
    // configured with port 0) goes to the relay, which protects it as a service port.
    let http_listener = match bind_http(&config) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("ternd: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Some((_, bound)) = &http_listener {
        config.http.listen = Some(*bound);
    }
    let handle = match ternd::net::start(&config) {
        Ok(h) => h,
        Err(e) => {
            eprintln!("ternd: {e}");
            return ExitCode::FAILURE;
        }
    };
    tracing::info!(
        udp = ?ternd::log_json::list(handle.udp_addrs()),
        tcp = ?ternd::log_json::list(handle.tcp_addrs()),
        tls = ?ternd::log_json::list(handle.tls_addrs()),
        workers = config.workers,
        realm = %config.realm,
        "ternd {} listening",
        env!("CARGO_PKG_VERSION")
    );
    if config.cluster.api_only {
        tracing::info!(
            "API-only cluster node: no STUN/TURN listeners; the credentials endpoint names the cluster's relays"
        );
    }
    let relays = [("IPv4", handle.relay_v4()), ("IPv6", handle.relay_v6())];
    for (family, relay) in relays.into_iter().filter(|_| !config.cluster.api_only) {
        match relay {
            Some(r) => tracing::info!(
                bind = %r.bind,
                advertise = %r.advertise,
                ports = %config.relay.ports,
                "relaying {family}"
            ),
            None => tracing::info!(
                "no {family} relay address (set --relay-ip): Allocates asking for {family} get 440"
            ),
        }
    }
    let cluster = match config.cluster.redis_url {
        Some(_) => match ternd::cluster::start(&config, &handle) {
            Ok(c) => Some(c),
            Err(e) => {
                eprintln!("ternd: cannot start the cluster task: {e}");
                handle.shutdown();
                return ExitCode::FAILURE;
            }
        },
        None => None,
    };
    let drain_requested = cluster.as_ref().map(|c| c.cluster().drain_requested());
    let (http_stop, http_stop_rx) = tokio::sync::watch::channel(false);
    let http = match start_http(
        &config,
        &handle,
        http_listener,
        http_stop_rx,
        cluster
            .as_ref()
            .map(|c| std::sync::Arc::new(c.cluster()) as std::sync::Arc<dyn ternd::http::Fleet>),
    ) {
        Ok(h) => h,
        Err(e) => {
            eprintln!("ternd: {e}");
            handle.shutdown();
            return ExitCode::FAILURE;
        }
    };
    if let Some(secret) = &generated {
        print_quick_start(
            &config,
            &handle,
            secret,
            http.as_ref().map(|h| h.local_addr()),
        );
    }

    ternd::sd_notify::notify(&format!(
        "READY=1\nSTATUS=relaying on {} UDP, {} TCP and {} TLS listeners",
        handle.udp_addrs().len(),
        handle.tcp_addrs().len(),
        handle.tls_addrs().len()
    ));
    signals.wait(drain_requested, || {
        // SIGHUP: re-read the configuration; apply credentials, peer policy and the TLS
        // certificate without dropping anything. A bad file keeps the old settings.
        ternd::sd_notify::notify("RELOADING=1");
        let reloaded = Config::load(&cli).and_then(Config::load_files);
        let mut new = match reloaded {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(error = %e, "SIGHUP: configuration not reloaded; keeping the old one");
                ternd::sd_notify::notify("READY=1\nSTATUS=reload failed; the old configuration stays");
                return;
            }
        };
        // The secret generated for this run stays valid while nothing else is configured.
        if let Some(g) = &generated
            && new.auth.secrets.is_empty()
            && new.auth.users.is_empty()
        {
            new.auth.secrets.push(g.clone());
        }
        let restart = config.needs_restart(&new);
        if !restart.is_empty() {
            tracing::warn!(
                settings = ?ternd::log_json::list(&restart),
                "SIGHUP: changed settings that need a restart keep their running values: {}",
                restart.join(", ")
            );
        }
        match handle.reload(&new) {
            Ok(()) => tracing::info!("SIGHUP: secrets, users and peer policy reloaded"),
            Err(e) => tracing::error!(error = %e, "SIGHUP: credentials not reloaded; keeping the old ones"),
        }
        if let (Some(cert), Some(key)) = (&new.tls_cert, &new.tls_key)
            && !handle.tls_addrs().is_empty()
        {
            match handle.reload_tls(cert, key) {
                Ok(()) => tracing::info!("SIGHUP: TLS certificate reloaded"),
                Err(e) => tracing::error!(error = %e, "SIGHUP: TLS certificate not reloaded; keeping the old one"),
            }
        }
        ternd::sd_notify::notify("READY=1\nSTATUS=configuration reloaded");
    });
    ternd::sd_notify::notify(&format!(
        "STOPPING=1\nSTATUS=draining {} allocations",
        handle.active_allocations()
    ));
    if !config.drain_timeout.is_zero() && handle.active_allocations() > 0 {
        handle.drain();
        tracing::info!(
            allocations = handle.active_allocations(),
            timeout = ?config.drain_timeout,
            "draining: no new allocations; existing ones keep relaying (signal again to stop now)"
        );
        signals.wait_drained(config.drain_timeout, || handle.active_allocations() == 0);
    }
    tracing::info!("shutting down");
    let _ = http_stop.send(true);
    if let Some(h) = http {
        h.join();
    }
    let stats = handle.stats();
    handle.shutdown();
    if let Some(c) = cluster {
        c.shutdown();
    }
    ternd::logging::log_shutdown_summary(&stats, started.elapsed());
    ExitCode::SUCCESS
}

/// The host clients should use: the advertised external address, else the first specific
/// listen address, else (listening on 0.0.0.0 / [::]) the address the relay advertises,
/// which is the host's primary one: what clients will reach the relay on anyway.
fn public_host(config: &Config, handle: &ternd::net::Handle) -> (String, u16) {
    let port = handle.udp_addrs().first().map(|a| a.port()).unwrap_or(3478);
    if let Some(e) = config.relay.external_ips.first() {
        return (e.public.to_string(), port);
    }
    if let Some(a) = handle.udp_addrs().iter().find(|a| !a.ip().is_unspecified()) {
        return (host_of(a.ip()), port);
    }
    match handle.relay_v4().or(handle.relay_v6()) {
        Some(r) if !r.advertise.is_unspecified() => (host_of(r.advertise), port),
        _ => ("127.0.0.1".to_string(), port),
    }
}

/// An IP as a host (the URL builders add brackets to IPv6).
fn host_of(ip: std::net::IpAddr) -> String {
    ip.to_string()
}

/// Says, once at start, which host `/v1/ice-servers` puts in its URLs when nobody chose
/// one, and warns when that is loopback although clients come from elsewhere.
fn explain_ice_host(config: &Config, handle: &ternd::net::Handle, host: &str) {
    let tokens = !config.http.token_hs256_secrets.is_empty()
        || !config.http.token_public_keys.is_empty()
        || config.http.token_jwks_file.is_some();
    if !tokens || !config.http.public_hosts.is_empty() {
        return;
    }
    let beyond_loopback = handle
        .udp_addrs()
        .iter()
        .chain(handle.tcp_addrs())
        .any(|a| !a.ip().is_loopback());
    if host.starts_with("127.") || host == "::1" {
        if beyond_loopback {
            tracing::warn!(
                host,
                "the credentials endpoint names {host} in its iceServers while ternd listens beyond loopback: clients elsewhere cannot use them. Set --http-public-host (http.public_hosts) to the name or address clients reach"
            );
        }
    } else {
        tracing::info!(
            host,
            "the credentials endpoint names {host} in its iceServers (the relay's address); set --http-public-host for a DNS name (needed for turns: certificates)"
        );
    }
}

/// Binds the HTTP endpoint's listener when `http.listen` is set; returns it with its
/// address as bound.
fn bind_http(
    config: &Config,
) -> Result<Option<(std::net::TcpListener, std::net::SocketAddr)>, String> {
    let Some(addr) = config.http.listen else {
        return Ok(None);
    };
    let listener = std::net::TcpListener::bind(addr)
        .map_err(|e| format!("cannot listen on {addr} for HTTP (--http-listen): {e}"))?;
    let bound = listener
        .local_addr()
        .map_err(|e| format!("HTTP listener on {addr} (--http-listen): {e}"))?;
    Ok(Some((listener, bound)))
}

/// Starts the HTTP endpoint (credentials, metrics, health, admin) on the listener
/// [`bind_http`] bound, if any.
fn start_http(
    config: &Config,
    handle: &ternd::net::Handle,
    listener: Option<(std::net::TcpListener, std::net::SocketAddr)>,
    stop: tokio::sync::watch::Receiver<bool>,
    cluster: Option<std::sync::Arc<dyn ternd::http::Fleet>>,
) -> Result<Option<ternd::http::HttpHandle>, String> {
    let Some((listener, _)) = listener else {
        return Ok(None);
    };
    let hosts = if config.http.public_hosts.is_empty() {
        let host = public_host(config, handle).0;
        explain_ice_host(config, handle, &host);
        vec![host]
    } else {
        config.http.public_hosts.clone()
    };
    let ice = ternd::http::IceSettings {
        hosts,
        udp_tcp_port: handle.udp_addrs().first().map(|a| a.port()).unwrap_or(3478),
        tls_port: handle.tls_addrs().first().map(|a| a.port()),
        secret: config.auth.secrets.first().cloned().unwrap_or_default(),
        separator: config.auth.rest_separator,
        ttl: config.http.credential_ttl,
        cluster,
    };
    let backend: std::sync::Arc<dyn ternd::http::Backend> = handle.view();
    let h = ternd::http::start(listener, &config.http, ice, backend, stop)
        .map_err(|e| format!("cannot start the HTTP endpoint: {e}"))?;
    tracing::info!(addr = %h.local_addr(), "HTTP endpoint: /v1/ice-servers, /metrics, /healthz, /readyz");
    Ok(Some(h))
}

fn print_quick_start(
    config: &Config,
    handle: &ternd::net::Handle,
    secret: &str,
    http: Option<std::net::SocketAddr>,
) {
    let ttl = Duration::from_secs(24 * 3600);
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let expiry = (now + ttl).as_secs();
    let (username, password) =
        ternd::auth::rest::credentials(secret, "demo", expiry, config.auth.rest_separator);
    let (host, port) = public_host(config, handle);
    let servers = ternd::ice::ice_servers(&host, port, &username, &password);
    println!(
        "\
ternd is running. No secret or user was configured, so one was generated for this run only:

  secret    {secret}

TURN REST credentials for user \"demo\", valid 24 h (username = EXPIRY:USER,
password = base64(HMAC-SHA1(secret, username))):

  username  {username}
  password  {password}

WebRTC configuration:
  {json}

Try it:
  turnutils_stunclient -p {port} {host}
  turnutils_uclient -p {port} -u '{username}' -w '{password}' -y -s {host}
    (-s relays in Send indications. Without it, coturn 4.6's uclient binds channels
    numbered 0x4000-0x7FFF, RFC 5766's range, which RFC 8656 narrowed to
    0x4000-0x4FFF: start ternd with --rfc5766-channel-numbers to accept them.)
  ternd credentials --secret '{secret}' --user-id alice     # more credentials

{http_line}
Peers on private and loopback addresses are refused by default; to relay to a
turnutils_peer on this machine add --allow-peer 127.0.0.1/32.
For real use, set a secret of your own (--secret, TERND_SECRET or [auth] secrets in
config/ternd.toml) and mint credentials in your backend the same way.",
        json = ternd::ice::ice_servers_json(&servers),
        http_line = match http {
            Some(a) => format!(
                "  curl http://{a}/metrics                               # Prometheus metrics\n"
            ),
            None => String::new(),
        },
    );
}

/// For an unknown flag that is a coturn option (`--min-port`), what ternd calls it, in
/// place of clap's own suggestion (which would be a flag of similar spelling).
fn coturn_flag(e: &clap::Error) -> Option<String> {
    if e.kind() != ErrorKind::UnknownArgument {
        return None;
    }
    let Some(ContextValue::String(arg)) = e.get(ContextKind::InvalidArg) else {
        return None;
    };
    let name = arg.strip_prefix("--")?.split('=').next()?;
    let whole = "`ternd import-coturn turnserver.conf` translates a whole coturn configuration";
    if let Some(hint) = ternd::config::hints::coturn(name) {
        return Some(format!("unknown flag `--{name}`: {hint}; {whole}"));
    }
    ternd::coturn_import::why_not(name)
        .map(|why| format!("unknown flag `--{name}`: a coturn option; {why}. {whole}"))
}

/// `ternd import-coturn FILE`: the translation on stdout, what was left out on stderr.
fn import_coturn(file: &std::path::Path) -> ExitCode {
    let import = match ternd::coturn_import::run(file) {
        Ok(i) => i,
        Err(e) => {
            eprintln!("ternd import-coturn: {e}");
            return ExitCode::from(2);
        }
    };
    print!("{}", import.toml);
    let skipped = ternd::coturn_import::report(&import.skipped);
    if !skipped.is_empty() {
        eprintln!(
            "ternd import-coturn: {} option(s) not translated:",
            import.skipped.len()
        );
        for line in skipped {
            eprintln!("  {line}");
        }
    }
    let notes = ternd::coturn_import::report(&import.notes);
    if !notes.is_empty() {
        eprintln!("ternd import-coturn: translated, but read this:");
        for line in notes {
            eprintln!("  {line}");
        }
    }
    ExitCode::SUCCESS
}

/// SIGINT, SIGTERM and SIGHUP handlers, installed before the server starts so that a
/// signal arriving during start-up still means a clean stop.
struct Signals {
    rt: tokio::runtime::Runtime,
    #[cfg(unix)]
    streams: Vec<tokio::signal::unix::Signal>,
}

impl Signals {
    fn install() -> std::io::Result<Signals> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        #[cfg(unix)]
        let streams = {
            use tokio::signal::unix::{SignalKind, signal};
            let _guard = rt.enter();
            vec![
                signal(SignalKind::interrupt())?,
                signal(SignalKind::terminate())?,
                signal(SignalKind::hangup())?,
            ]
        };
        Ok(Signals {
            rt,
            #[cfg(unix)]
            streams,
        })
    }

    /// Blocks until SIGINT or SIGTERM (or `drain` is notified: the cluster or the admin
    /// API asked this node to drain), calling `on_hangup` for every SIGHUP meanwhile.
    fn wait(
        &mut self,
        drain: Option<std::sync::Arc<tokio::sync::Notify>>,
        mut on_hangup: impl FnMut(),
    ) {
        let drained = async move {
            match drain {
                Some(n) => n.notified().await,
                None => std::future::pending().await,
            }
        };
        #[cfg(unix)]
        {
            let Signals { rt, streams } = self;
            rt.block_on(async move {
                let [int, term, hup] = &mut streams[..] else {
                    return;
                };
                tokio::pin!(drained);
                loop {
                    tokio::select! {
                        _ = int.recv() => return,
                        _ = term.recv() => return,
                        () = &mut drained => {
                            tracing::info!("drain requested through the cluster");
                            return;
                        }
                        _ = hup.recv() => on_hangup(),
                    }
                }
            });
        }
        #[cfg(not(unix))]
        {
            let _ = &mut on_hangup;
            let _ = self.rt.block_on(async move {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    () = drained => {}
                }
            });
        }
    }

    /// Waits until `done()` holds (checked every 100 ms), `timeout` passes, or a second
    /// SIGINT/SIGTERM arrives.
    fn wait_drained(&mut self, timeout: Duration, done: impl Fn() -> bool) {
        // A timeout too large to represent means "until the allocations end".
        let deadline = std::time::Instant::now().checked_add(timeout);
        #[cfg(unix)]
        let Signals { rt, streams } = self;
        #[cfg(not(unix))]
        let rt = &self.rt;
        rt.block_on(async move {
            loop {
                if done() || deadline.is_some_and(|d| std::time::Instant::now() >= d) {
                    return;
                }
                #[cfg(unix)]
                {
                    let [int, term, _] = &mut streams[..] else {
                        return;
                    };
                    tokio::select! {
                        _ = int.recv() => return,
                        _ = term.recv() => return,
                        _ = tokio::time::sleep(Duration::from_millis(100)) => {}
                    }
                }
                #[cfg(not(unix))]
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        });
    }
}
