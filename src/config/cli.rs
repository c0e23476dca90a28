//! Command-line interface: the server's flags are built (clap builder API)
//! from the declaration table; the subcommands use clap's derive.
//!
//! Every option also reads a `TERND_*` environment variable; clap resolves
//! command line over environment. No option has a clap default, so an
//! option that was not given is absent and the configuration file's value
//! or the built-in default applies. Values are kept as raw strings and
//! validated by [`Config::load`](super::Config::load) /
//! [`Config::apply_cli`](super::Config::apply_cli), whose errors name the
//! flag and whether the value came from the command line or the
//! environment (clap's value source).
//!
//! Repeatable options also accept a comma-separated list, which is how they
//! are given in the environment (e.g. `TERND_LISTEN=0.0.0.0:3478,[::]:3478`).
//! A list given on the command line or in the environment replaces the
//! file's list; an empty environment variable (e.g. `TERND_DENY_PEER=`)
//! replaces it with an empty list.

use std::ffi::OsStr;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use clap::builder::BoolishValueParser;
use clap::parser::ValueSource;
use clap::{Arg, ArgAction, ArgMatches, Args, CommandFactory, FromArgMatches, Parser, Subcommand};

use super::declare::Flag;
use super::kind::{Raw, Shape};
use super::{Config, ConfigError, Origin, Redacted, ValueError, values};

const LONG_ABOUT: &str = "\
ternd — a STUN/TURN relay server.

Settings come from, highest precedence first: command-line flags, TERND_* \
environment variables, the TOML file given with -c/--config, and built-in \
defaults. Every flag below names its environment variable; repeatable flags \
take a comma-separated list there (TERND_LISTEN=0.0.0.0:3478,[::]:3478). A list \
given on the command line or in the environment replaces the file's list.

Secrets (--secret, --user, --token-hs256-secret, --admin-token, \
--cluster-redis-url) can also be read from a file, as container secrets are \
mounted: TERND_ADMIN_TOKEN_FILE=/run/secrets/admin_token reads the value from \
that file (surrounding whitespace trimmed; for a list, one entry per line, \
blank lines and # comments skipped), again on every reload (SIGHUP). Setting \
both the variable or flag and its _FILE variable is an error. The value stays \
out of the process environment and of `kubectl describe`.

Unknown TERND_* variables are warned about at start (with a did-you-mean); \
coturn's flag names (--min-port, --static-auth-secret, ...) get ternd's. \
`ternd import-coturn FILE` translates a coturn turnserver.conf; `ternd config show` \
prints the effective configuration (secrets redacted), `ternd sessions` lists and ends \
a running server's sessions through its admin API.

Durations are written like 30s, 10m, 1h30m, or as a number of seconds.

The documented default configuration file is config/ternd.toml.";

/// Command-line options of `ternd`. See the module documentation.
///
/// Built with clap's builder API from the declaration table: one flag per
/// setting that has one, in `--help` order. Implements [`Parser`].
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Cli {
    /// TOML configuration file (`-c` / `--config` / `TERND_CONFIG`).
    pub config: Option<PathBuf>,
    /// `--check-config`: validate the configuration, print any error and exit.
    pub check_config: bool,
    /// The settings given as flags or environment variables.
    pub(crate) given: Vec<Given>,
    /// A subcommand; without one, `ternd` runs the server.
    pub command: Option<Command>,
}

/// One setting given as a flag or an environment variable.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Given {
    /// The setting's dotted TOML key.
    pub(crate) key: &'static str,
    /// Its flag, with the dashes (`--relay-ports`).
    pub(crate) flag: String,
    /// A secret (redacted in `Debug`).
    pub(crate) secret: bool,
    /// The value as clap gave it.
    pub(crate) raw: Raw,
    /// Command line or environment.
    pub(crate) origin: Origin,
    /// A secret's `TERND_*_FILE` variable: the value is read from this file by
    /// [`Cli::apply`] (at every load, so a reload sees a rotated file).
    pub(crate) file: Option<SecretFile>,
}

/// A secret setting's value given as a file (`TERND_ADMIN_TOKEN_FILE=PATH`).
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct SecretFile {
    /// The file.
    pub(crate) path: PathBuf,
    /// The flag or variable also given, which conflicts with the file.
    pub(crate) also: Option<String>,
}

/// The most a secret file may hold; a secret (or a list of them) is far smaller.
const SECRET_FILE_MAX: u64 = 64 * 1024;

impl Cli {
    /// Lays the given settings over `config`, recording where each came from.
    pub(crate) fn apply(&self, config: &mut Config) -> Result<(), ConfigError> {
        for g in &self.given {
            let Some(setting) = super::schema_http::all().find(|s| s.key == g.key) else {
                continue;
            };
            // `--secret ''` or `TERND_SECRET=` (an unset shell variable, most likely) would
            // otherwise mean "no secret", and a generated one with it.
            if g.secret
                && g.file.is_none()
                && matches!(&g.raw, Raw::List(v) if v.iter().all(|s| s.trim().is_empty()))
            {
                return Err(ConfigError::invalid(
                    &g.origin,
                    &g.flag,
                    ValueError::EmptySecret,
                ));
            }
            let read;
            let raw = match &g.file {
                None => &g.raw,
                Some(file) => {
                    read = read_secret_file(file, setting.shape)
                        .map_err(|e| ConfigError::invalid(&g.origin, &g.flag, e))?;
                    &read
                }
            };
            (setting.text)(config, raw).map_err(|e| ConfigError::invalid(&g.origin, &g.flag, e))?;
            config.origins.set(g.key, g.origin.clone(), g.flag.clone());
        }
        Ok(())
    }
}

/// The value of a secret given as a file: its text trimmed, or for a list one
/// entry per line (blank lines and `#` comments skipped).
fn read_secret_file(file: &SecretFile, shape: Shape) -> Result<Raw, ValueError> {
    use std::io::Read;
    let shown = file.path.display().to_string();
    if let Some(also) = &file.also {
        return Err(ValueError::SecretFile {
            path: shown,
            problem: format!("{also} is set too: give the secret one way"),
        });
    }
    let problem = |problem: String| ValueError::SecretFile {
        path: shown.clone(),
        problem,
    };
    let mut text = String::new();
    std::fs::File::open(&file.path)
        .and_then(|f| f.take(SECRET_FILE_MAX + 1).read_to_string(&mut text))
        .map_err(|e| problem(e.to_string()))?;
    if text.len() as u64 > SECRET_FILE_MAX {
        return Err(problem(format!("larger than {SECRET_FILE_MAX} bytes")));
    }
    Ok(match shape {
        Shape::List => Raw::List(
            text.lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with('#'))
                .map(str::to_owned)
                .collect(),
        ),
        Shape::One | Shape::Bool => {
            let value = text.trim();
            if value.is_empty() {
                return Err(problem("it is empty".to_owned()));
            }
            Raw::One(value.to_owned())
        }
    })
}

/// The `TERND_*_FILE` variable of a secret flag, unless another setting owns that
/// name (`TERND_SECRET_FILE` is `--secret-file`, which reads secrets itself).
fn secret_file_env(flag: &Flag) -> Option<String> {
    if !flag.secret {
        return None;
    }
    let name = format!("{}_FILE", flag.env);
    let taken = super::schema_http::all()
        .filter_map(|s| s.flag.as_ref())
        .any(|f| f.env == name);
    (!taken).then_some(name)
}

fn setting_arg(flag: &Flag, shape: Shape) -> Arg {
    let arg = Arg::new(flag.long)
        .long(flag.long)
        .value_name(flag.value_name)
        .env(flag.env)
        .help(flag.help)
        .hide_env_values(flag.secret);
    match shape {
        Shape::Bool => arg
            .action(ArgAction::Set)
            .num_args(0..=1)
            .default_missing_value("true")
            .value_parser(BoolishValueParser::new()),
        Shape::One => arg
            .action(ArgAction::Set)
            .value_parser(clap::value_parser!(String)),
        Shape::List => arg
            .action(ArgAction::Append)
            .value_delimiter(',')
            .value_parser(clap::value_parser!(String)),
    }
}

impl CommandFactory for Cli {
    fn command() -> clap::Command {
        let mut cmd = clap::Command::new("ternd")
            .version(env!("CARGO_PKG_VERSION"))
            .arg(
                Arg::new("config")
                    .short('c')
                    .long("config")
                    .value_name("FILE")
                    .env("TERND_CONFIG")
                    .action(ArgAction::Set)
                    .value_parser(clap::value_parser!(PathBuf))
                    .help("TOML configuration file [default: none, built-in defaults]"),
            )
            .arg(
                Arg::new("check_config")
                    .long("check-config")
                    .env("TERND_CHECK_CONFIG")
                    .action(ArgAction::SetTrue)
                    .value_parser(BoolishValueParser::new())
                    .help("Validate the configuration, print any error and exit"),
            );
        for s in super::schema_http::all() {
            if let Some(flag) = &s.flag {
                cmd = cmd.arg(setting_arg(flag, s.shape));
            }
        }
        // After the subcommands, whose derive sets an about of its own.
        Command::augment_subcommands(cmd)
            .about("ternd — a STUN/TURN relay server")
            .long_about(LONG_ABOUT)
    }

    fn command_for_update() -> clap::Command {
        Self::command()
    }
}

impl FromArgMatches for Cli {
    fn from_arg_matches(m: &ArgMatches) -> Result<Self, clap::Error> {
        let mut given = Vec::new();
        for s in super::schema_http::all() {
            let Some(flag) = &s.flag else { continue };
            let raw = match s.shape {
                Shape::Bool => m.get_one::<bool>(flag.long).copied().map(Raw::Bool),
                Shape::One => m.get_one::<String>(flag.long).cloned().map(Raw::One),
                Shape::List => m
                    .get_many::<String>(flag.long)
                    .map(|v| Raw::List(v.cloned().collect())),
            };
            let origin = match m.value_source(flag.long) {
                Some(ValueSource::EnvVariable) => Origin::Env(flag.env.to_owned()),
                _ => Origin::CommandLine,
            };
            let file_env = secret_file_env(flag)
                .and_then(|name| std::env::var_os(&name).map(|path| (name, PathBuf::from(path))));
            if let Some((name, path)) = file_env {
                let also = raw.is_some().then(|| match &origin {
                    Origin::Env(var) => var.clone(),
                    _ => format!("--{}", flag.long),
                });
                given.push(Given {
                    key: s.key,
                    flag: name.clone(),
                    secret: true,
                    raw: Raw::One(String::new()),
                    origin: Origin::Env(name),
                    file: Some(SecretFile { path, also }),
                });
                continue;
            }
            let Some(raw) = raw else { continue };
            given.push(Given {
                key: s.key,
                flag: format!("--{}", flag.long),
                secret: flag.secret,
                raw,
                origin,
                file: None,
            });
        }
        Ok(Cli {
            config: m.get_one::<PathBuf>("config").cloned(),
            check_config: m.get_flag("check_config"),
            given,
            command: match m.subcommand_name() {
                Some(_) => Some(Command::from_arg_matches(m)?),
                None => None,
            },
        })
    }

    fn update_from_arg_matches(&mut self, m: &ArgMatches) -> Result<(), clap::Error> {
        *self = Cli::from_arg_matches(m)?;
        Ok(())
    }
}

impl Parser for Cli {}

/// Subcommands of `ternd` (without one, it runs the server).
#[derive(Subcommand, Clone, Debug, PartialEq, Eq)]
pub enum Command {
    /// Print TURN REST credentials (a time-limited username and password) for a shared secret
    #[command(long_about = CREDENTIALS_ABOUT)]
    Credentials(CredentialsArgs),
    /// Access tokens for the credentials endpoint (development helper)
    Token(TokenArgs),
    /// Translate a coturn turnserver.conf into a ternd.toml (printed on stdout)
    #[command(name = "import-coturn", long_about = IMPORT_COTURN_ABOUT)]
    ImportCoturn(ImportCoturnArgs),
    /// Load generator for any RFC 8656 TURN server over UDP (ternd, coturn, ...)
    #[command(long_about = crate::bench::LONG_ABOUT)]
    Bench(crate::bench::BenchArgs),
    /// Minimal UDP forwarder with ternd's I/O and no TURN logic: the floor
    /// `ternd bench --mode raw` measures (benches/compare.sh)
    Forwarder(crate::bench::ForwarderArgs),
    /// List and end the sessions of a running ternd (a client of its admin API)
    #[command(long_about = super::cli_tools::SESSIONS_ABOUT)]
    Sessions(super::cli_tools::SessionsArgs),
    /// The effective configuration (`ternd config show`)
    Config(super::cli_tools::ConfigArgs),
    /// Print a shell completion script: bash, zsh, fish, elvish or powershell
    Completions(super::cli_tools::CompletionsArgs),
    /// Print the man page (roff), e.g. `ternd manpage > /usr/local/share/man/man1/ternd.1`
    #[command(visible_alias = "man")]
    Manpage,
}

const IMPORT_COTURN_ABOUT: &str = "\
Translate a coturn turnserver.conf into a ternd.toml, printed on standard output:

    ternd import-coturn /etc/turnserver.conf > /etc/ternd/ternd.toml
    ternd -c /etc/ternd/ternd.toml --check-config

Every coturn option with a ternd equivalent is translated, each setting commented with \
the coturn lines it came from. The peer lists keep coturn's meaning: coturn's \
allowed-peer-ip beats denied-peer-ip, ternd's deny_peer beats allow_peer, so deny_peer \
gets the denied ranges without the allowed addresses. Options ternd has no equivalent \
for are listed with their line number and the reason, on standard error and at the top \
of the output. MIGRATING.md lists the differences in behaviour.

Exit status: 0 when a configuration was printed (even with options left out), 2 when \
the file cannot be read.";

/// Options of `ternd import-coturn`.
#[derive(Args, Clone, Debug, PartialEq, Eq)]
pub struct ImportCoturnArgs {
    /// coturn configuration file (turnserver.conf)
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
}

/// Options of `ternd token`.
#[derive(Args, Clone, Debug, PartialEq, Eq)]
pub struct TokenArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: TokenCommand,
}

/// Subcommands of `ternd token`.
#[derive(Subcommand, Clone, Debug, PartialEq, Eq)]
pub enum TokenCommand {
    /// Print an HS256 access token (JWT) for development
    #[command(long_about = TOKEN_ISSUE_ABOUT)]
    Issue(TokenIssueArgs),
}

const TOKEN_ISSUE_ABOUT: &str = "\
Print a compact HS256 access token (JWT) for development and testing.

A ternd started with the same --token-hs256-secret accepts it at POST /v1/ice-servers and \
answers with TURN credentials for the token's subject. In production, access tokens come from \
your application's identity service (signed with a key ternd knows by --token-hs256-secret, \
--token-public-key or --token-jwks-file), not from this command.";

/// Options of `ternd token issue`.
#[derive(Args, Clone, PartialEq, Eq)]
pub struct TokenIssueArgs {
    /// HS256 secret, as given to the server; of a comma-separated list the first is used
    #[arg(
        long,
        value_name = "SECRET",
        env = "TERND_TOKEN_HS256_SECRET",
        value_delimiter = ',',
        hide_env_values = true,
        required = true
    )]
    pub token_hs256_secret: Vec<String>,

    /// Subject (`sub`): the user id the TURN credentials are minted for
    #[arg(long, value_name = "USER")]
    pub sub: String,

    /// How long the token stays valid (`exp` = now + TTL)
    #[arg(long, value_name = "DUR", default_value = "1h", value_parser = parse_ttl)]
    pub ttl: Duration,

    /// Audience (`aud`); empty = no `aud` claim
    #[arg(long, value_name = "AUD", default_value = "ternd")]
    pub aud: String,

    /// Issuer (`iss`) [default: none]
    #[arg(long, value_name = "ISS")]
    pub iss: Option<String>,

    /// Scope (`scope`, space-separated) [default: none]
    #[arg(long, value_name = "SCOPE")]
    pub scope: Option<String>,
}

impl fmt::Debug for TokenIssueArgs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenIssueArgs")
            .field(
                "token_hs256_secret",
                &Redacted(self.token_hs256_secret.len()),
            )
            .field("sub", &self.sub)
            .field("ttl", &self.ttl)
            .field("aud", &self.aud)
            .field("iss", &self.iss)
            .field("scope", &self.scope)
            .finish()
    }
}

const CREDENTIALS_ABOUT: &str = "\
Print TURN REST credentials (a time-limited username and password) for a shared secret.

The username is EXPIRY:USER (EXPIRY = now + --ttl, in UNIX seconds) and the password is \
base64(HMAC-SHA1(secret, username)), as coturn's use-auth-secret and the TURN REST API \
draft define them; a ternd started with the same --secret accepts them until EXPIRY.";

/// Options of `ternd credentials`.
#[derive(Args, Clone, PartialEq, Eq)]
pub struct CredentialsArgs {
    /// Shared secret, as given to the server; of a comma-separated list (the server's
    /// rotation list) the first, current one is used
    #[arg(
        long,
        value_name = "SECRET",
        env = "TERND_SECRET",
        value_delimiter = ',',
        hide_env_values = true,
        required = true
    )]
    pub secret: Vec<String>,

    /// User id: the USER part of the username EXPIRY:USER (the server's quota key)
    #[arg(long, value_name = "USER")]
    pub user_id: String,

    /// How long the credentials stay valid (e.g. 30m, 1h, 86400)
    #[arg(long, value_name = "DUR", default_value = "1h", value_parser = parse_ttl)]
    pub ttl: Duration,

    /// Print a JSON object {"username", "password", "ttl", "uris"}
    #[arg(long)]
    pub json: bool,

    /// TURN URI listed in the JSON output; repeatable
    /// [default: turn:127.0.0.1:3478?transport=udp and ?transport=tcp]
    #[arg(long, value_name = "URI")]
    pub uri: Vec<String>,

    /// Separator between expiry and user, as the server's auth.rest_separator
    #[arg(long, value_name = "CHAR", default_value = ":", value_parser = parse_rest_separator)]
    pub rest_separator: char,
}

fn parse_ttl(s: &str) -> Result<Duration, ValueError> {
    let d = values::duration(s)?;
    if d < Duration::from_secs(1) {
        return Err(ValueError::SubSecond("the TTL must be"));
    }
    Ok(d)
}

fn parse_rest_separator(s: &str) -> Result<char, ValueError> {
    values::rest_separator(s)
}

impl fmt::Debug for CredentialsArgs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CredentialsArgs")
            .field("secret", &Redacted(self.secret.len()))
            .field("user_id", &self.user_id)
            .field("ttl", &self.ttl)
            .field("json", &self.json)
            .field("uri", &self.uri)
            .field("rest_separator", &self.rest_separator)
            .finish()
    }
}

impl fmt::Debug for Cli {
    /// Every flag, as its field name (`relay_ports: Some("1-2")`, `listen: []`);
    /// secrets redacted.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Cli");
        d.field("config", &self.config)
            .field("check_config", &self.check_config);
        let mut name = String::new();
        for s in super::schema_http::all() {
            let Some(flag) = &s.flag else { continue };
            name.clear();
            name.extend(flag.long.chars().map(|c| if c == '-' { '_' } else { c }));
            let raw = self.given.iter().find(|g| g.key == s.key).map(|g| &g.raw);
            match (raw, s.shape) {
                (Some(Raw::List(v)), _) if flag.secret => d.field(&name, &Redacted(v.len())),
                (Some(_), _) if flag.secret => d.field(&name, &Redacted(1)),
                (None, _) if flag.secret => d.field(&name, &Redacted(0)),
                (Some(Raw::List(v)), _) => d.field(&name, v),
                (Some(Raw::One(v)), _) => d.field(&name, &Some(v)),
                (Some(Raw::Bool(v)), _) => d.field(&name, &Some(v)),
                (None, Shape::List) => d.field(&name, &[(); 0]),
                (None, _) => d.field(&name, &None::<()>),
            };
        }
        d.field("command", &self.command).finish()
    }
}

/// Origin of a path given with `--config` or `TERND_CONFIG`: the command
/// line wins, so a value equal to the environment variable's came from the
/// environment (or was given identically in both places, where either
/// answer is right).
pub(crate) fn origin_os(env: &str, value: &OsStr) -> Origin {
    match std::env::var_os(env) {
        Some(v) if v == value => Origin::Env(env.to_owned()),
        _ => Origin::CommandLine,
    }
}
