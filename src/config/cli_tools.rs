//! Options of the operator subcommands: `ternd sessions` (a client of a running ternd's
//! admin API), `ternd config show`, `ternd completions` and `ternd manpage`. What they do
//! is in [`crate::operator`].

use std::fmt;
use std::path::PathBuf;

use clap::{Args, Subcommand};

pub(crate) const SESSIONS_ABOUT: &str = "\
List and end the sessions (allocations) of a running ternd, through its admin API.

    ternd sessions list                    # a table: id, node, user, client, relay, ...
    ternd sessions list --user alice --json
    ternd sessions kill 17                 # ends session 17 at once
    ternd sessions kill --user alice       # ends all of alice's sessions on that node
    ternd sessions revoke alice            # a cluster: every node, and her older credentials

The server is --url, by default the HTTP endpoint of the local configuration (http.listen \
of -c/--config and TERND_HTTP_LISTEN, as the server reads them; 0.0.0.0 and [::] mean \
loopback). The admin token is --admin-token or TERND_ADMIN_TOKEN, else TERND_ADMIN_TOKEN_FILE \
or http.admin_token of the configuration. The admin API is off on a server whose \
admin_token is empty. Plain http:// only: for an endpoint served over TLS use curl.

Exit status: 0 on success, 1 when the server refused or could not be reached, 2 on bad \
arguments.";

/// Options of `ternd sessions`.
#[derive(Args, Clone, Debug, PartialEq, Eq)]
pub struct SessionsArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: SessionsCommand,
}

/// Subcommands of `ternd sessions`.
#[derive(Subcommand, Clone, Debug, PartialEq, Eq)]
pub enum SessionsCommand {
    /// List the live sessions (GET /admin/sessions): a table, or the JSON with --json
    List(SessionsListArgs),
    /// End a session at once (DELETE /admin/sessions/ID), or a user's (--user)
    Kill(SessionsKillArgs),
    /// Revoke a user on every node of a cluster (POST /admin/users/USER/revoke): their
    /// sessions end and their older credentials are refused
    Revoke(SessionsRevokeArgs),
}

/// Where the admin API is and how to authenticate to it.
#[derive(Args, Clone, PartialEq, Eq)]
pub struct AdminApi {
    /// The ternd's HTTP endpoint, e.g. http://127.0.0.1:9641
    /// [default: http.listen of the local configuration]
    #[arg(long, value_name = "URL")]
    pub url: Option<String>,

    /// The admin token (the server's http.admin_token)
    /// [default: TERND_ADMIN_TOKEN_FILE, or http.admin_token of the configuration]
    #[arg(
        long,
        value_name = "TOKEN",
        env = "TERND_ADMIN_TOKEN",
        hide_env_values = true
    )]
    pub admin_token: Option<String>,

    /// The configuration file to read the URL and the token from (as the server's -c)
    #[arg(short = 'c', long = "config", value_name = "FILE")]
    pub config: Option<PathBuf>,
}

impl fmt::Debug for AdminApi {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AdminApi")
            .field("url", &self.url)
            .field(
                "admin_token",
                &super::Redacted(usize::from(self.admin_token.is_some())),
            )
            .field("config", &self.config)
            .finish()
    }
}

/// Options of `ternd sessions list`.
#[derive(Args, Clone, Debug, PartialEq, Eq)]
pub struct SessionsListArgs {
    /// Only this user's sessions (the quota key: a REST credential's USER part)
    #[arg(long, value_name = "USER")]
    pub user: Option<String>,
    /// Only the sessions of this cluster node
    #[arg(long, value_name = "NODE")]
    pub node: Option<String>,
    /// Print the admin API's JSON instead of a table
    #[arg(long)]
    pub json: bool,
    /// The server.
    #[command(flatten)]
    pub api: AdminApi,
}

/// Options of `ternd sessions kill`.
#[derive(Args, Clone, Debug, PartialEq, Eq)]
pub struct SessionsKillArgs {
    /// The session id, as `ternd sessions list` shows it
    #[arg(
        value_name = "ID",
        required_unless_present = "user",
        conflicts_with = "user",
        value_parser = parse_session_id
    )]
    pub id: Option<u64>,
    /// The cluster node holding the session [default: the node asked]
    #[arg(long, value_name = "NODE", conflicts_with = "user")]
    pub node: Option<String>,
    /// End every session of this user on the node asked (DELETE /admin/users/USER/sessions)
    #[arg(long, value_name = "USER")]
    pub user: Option<String>,
    /// The server.
    #[command(flatten)]
    pub api: AdminApi,
}

/// Options of `ternd sessions revoke`.
#[derive(Args, Clone, Debug, PartialEq, Eq)]
pub struct SessionsRevokeArgs {
    /// The user (the quota key: a REST credential's USER part)
    #[arg(value_name = "USER")]
    pub user: String,
    /// The server.
    #[command(flatten)]
    pub api: AdminApi,
}

fn parse_session_id(s: &str) -> Result<u64, String> {
    s.parse().map_err(|_| {
        "a session id is a number, as `ternd sessions list` shows it (the ID column)".to_owned()
    })
}

pub(crate) const CONFIG_SHOW_ABOUT: &str = "\
Print the effective configuration: the built-in defaults, the file (-c/--config), TERND_* \
environment variables and the server's flags merged exactly as the server merges them, as \
TOML that `ternd --config` reads back. A trailing comment names where each given value came \
from (the file, the variable or the flag). Secrets are printed as \"<redacted>\", which \
ternd refuses, so a file with any will not start until they are put back; the header lists \
them.

The server's flags go before the subcommand:

    ternd -c /etc/ternd/ternd.toml --user-quota 20 config show
    TERND_RELAY_PORTS=10000-20000 ternd config show -c /etc/ternd/ternd.toml

Files the settings name (secret file, certificates, token keys) are not read: \
`ternd --check-config` reads them.";

/// Options of `ternd config`.
#[derive(Args, Clone, Debug, PartialEq, Eq)]
pub struct ConfigArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: ConfigCommand,
}

/// Subcommands of `ternd config`.
#[derive(Subcommand, Clone, Debug, PartialEq, Eq)]
pub enum ConfigCommand {
    /// Print the effective configuration as TOML, secrets redacted, with where each value came from
    #[command(long_about = CONFIG_SHOW_ABOUT)]
    Show(ConfigShowArgs),
}

/// Options of `ternd config show`.
#[derive(Args, Clone, Debug, PartialEq, Eq)]
pub struct ConfigShowArgs {
    /// TOML configuration file (as the server's -c; overrides it)
    #[arg(short = 'c', long = "config", value_name = "FILE")]
    pub config: Option<PathBuf>,
}

/// Options of `ternd completions`.
#[derive(Args, Clone, Debug, PartialEq, Eq)]
pub struct CompletionsArgs {
    /// The shell
    #[arg(value_name = "SHELL")]
    pub shell: clap_complete::Shell,
}
