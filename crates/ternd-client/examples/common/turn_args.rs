//! What both examples share: the TURN server arguments (`--server`, `--user`, `--password`,
//! `--secret`, `--no-channels`), the credentials they mean, and the runtime `main` uses.
//! Included by each example with `#[path]`.

use std::time::{Duration, SystemTime};

use clap::Args;
use ternd_client::{ClientOptions, Credentials, rest_credentials};

/// How long REST credentials made from `--secret` are valid.
const REST_TTL: Duration = Duration::from_secs(3600);

#[derive(Args, Debug)]
pub struct TurnArgs {
    /// TURN server URL: turn:HOST:PORT?transport=udp|tcp or turns:HOST:PORT.
    #[arg(long, value_name = "URL")]
    pub server: String,
    /// Username (with --password), or the name in REST credentials (with --secret).
    #[arg(long, value_name = "U")]
    pub user: Option<String>,
    /// Password of --user.
    #[arg(long, value_name = "P", env = "TURN_PASSWORD", hide_env_values = true)]
    pub password: Option<String>,
    /// Shared secret for TURN REST credentials (ternd --secret, coturn
    /// --static-auth-secret), valid for an hour from now.
    #[arg(long, value_name = "S", env = "TURN_SECRET", hide_env_values = true)]
    pub secret: Option<String>,
    /// Send data in Send indications only (no ChannelBind).
    #[arg(long)]
    pub no_channels: bool,
}

impl TurnArgs {
    /// The credentials asked for; REST ones name `default_name` unless --user is given.
    pub fn credentials(&self, default_name: &str) -> Result<Credentials, String> {
        match (&self.password, &self.secret) {
            (Some(_), Some(_)) => Err("give --password or --secret, not both".into()),
            (Some(password), None) => match &self.user {
                Some(user) => Ok(Credentials::new(user, password)),
                None => Err("--password needs --user".into()),
            },
            (None, Some(secret)) => {
                let name = self.user.as_deref().unwrap_or(default_name);
                Ok(rest_credentials(secret, name, REST_TTL, SystemTime::now()))
            }
            (None, None) => {
                Err("give --user U --password P, or --secret S (TURN REST credentials)".into())
            }
        }
    }

    pub fn options(&self) -> ClientOptions {
        ClientOptions::default().channels(!self.no_channels)
    }
}

/// Runs `run` on a current-thread runtime: its exit code, or 1 after printing its error
/// (or the runtime's) as `tool: message`.
pub fn block_on(
    tool: &str,
    run: impl std::future::Future<Output = Result<std::process::ExitCode, String>>,
) -> std::process::ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("{tool}: cannot start the runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run) {
        Ok(code) => code,
        Err(msg) => {
            eprintln!("{tool}: {msg}");
            std::process::ExitCode::FAILURE
        }
    }
}
