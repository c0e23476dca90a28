//! Errors produced while loading and validating the configuration.

use std::fmt;
use std::path::PathBuf;

/// Where a configuration value came from.
///
/// Every [`ConfigError`] names one, so that an operator can tell whether the
/// offending value sits in the file, in the environment or on the command
/// line.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Origin {
    /// A TOML configuration file; the string is the path as given.
    File(String),
    /// An environment variable; the string is its name (e.g. `TERND_RELAY_PORTS`).
    Env(String),
    /// A command-line flag.
    CommandLine,
    /// An already-built [`Config`](super::Config) whose values' origins are no
    /// longer known (used by [`Config::apply_cli`](super::Config::apply_cli)).
    Merged,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::File(path) => f.write_str(path),
            Origin::Env(var) => write!(f, "environment ({var})"),
            Origin::CommandLine => f.write_str("command line"),
            Origin::Merged => f.write_str("configuration"),
        }
    }
}

/// An error found while loading or validating the configuration.
///
/// The `Display` form always starts with the [`Origin`] and names the key:
/// the dotted TOML path (e.g. `relay.ports`) for file values, the flag
/// (e.g. `--relay-ports`) for command-line and environment values.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The configuration file named by `--config` could not be read.
    #[error("{origin}: `{key}`: cannot read configuration file `{}`: {source}", path.display())]
    ReadFile {
        /// Where the file name came from (command line or `TERND_CONFIG`).
        origin: Origin,
        /// The flag naming the file (`--config`).
        key: String,
        /// The file that could not be read.
        path: PathBuf,
        /// The underlying I/O error.
        source: std::io::Error,
    },
    /// The file is not valid TOML.
    #[error("{origin}: invalid TOML at line {line}, column {column}: {message}")]
    Syntax {
        /// The file.
        origin: Origin,
        /// 1-based line of the error.
        line: usize,
        /// 1-based column of the error.
        column: usize,
        /// The parser's description of the problem.
        message: String,
    },
    /// The file contains a key this version does not know.
    #[error("{origin}: unknown key `{key}`{hint}")]
    UnknownKey {
        /// The file.
        origin: Origin,
        /// The dotted path of the unknown key (e.g. `relay.portz`).
        key: String,
        /// `: did you mean ...?` (the key in another section, the ternd name of a
        /// coturn option, a close key), or empty.
        hint: String,
    },
    /// A value is malformed or out of range.
    #[error("{origin}: `{key}`: {problem}")]
    Invalid {
        /// Where the value came from.
        origin: Origin,
        /// The dotted TOML key or the flag.
        key: String,
        /// What is wrong with it.
        problem: Box<ValueError>,
    },
    /// A value does not go with another one (the error names the other one
    /// and where it came from, too).
    #[error("{origin}: `{key}`: {conflict}")]
    Conflict {
        /// Where the value blamed came from.
        origin: Origin,
        /// The dotted TOML key or the flag.
        key: String,
        /// What does not fit.
        conflict: Box<Conflict>,
    },
    /// A file named by a setting holds something unusable (found by
    /// [`Config::load_files`](super::Config::load_files)).
    #[error("{origin}: `{key}`: {problem}")]
    File {
        /// Where the file name came from.
        origin: Origin,
        /// The dotted TOML key or the flag naming the file.
        key: String,
        /// What is wrong with the file.
        problem: Box<FileError>,
    },
    /// The secret file named by `auth.secret_file` / `--secret-file` could not be read.
    #[error("{origin}: `{key}`: cannot read secret file `{}`: {source}", path.display())]
    SecretFile {
        /// Where the file name came from.
        origin: Origin,
        /// The dotted TOML key or the flag.
        key: String,
        /// The file that could not be read.
        path: PathBuf,
        /// The underlying I/O error.
        source: std::io::Error,
    },
}

impl ConfigError {
    /// Where the offending value came from.
    pub fn origin(&self) -> &Origin {
        match self {
            ConfigError::ReadFile { origin, .. }
            | ConfigError::Syntax { origin, .. }
            | ConfigError::UnknownKey { origin, .. }
            | ConfigError::Invalid { origin, .. }
            | ConfigError::Conflict { origin, .. }
            | ConfigError::File { origin, .. }
            | ConfigError::SecretFile { origin, .. } => origin,
        }
    }

    /// The key (dotted TOML path or flag) the error is about, if there is one
    /// (a TOML syntax error has none).
    pub fn key(&self) -> Option<&str> {
        match self {
            ConfigError::ReadFile { key, .. }
            | ConfigError::UnknownKey { key, .. }
            | ConfigError::Invalid { key, .. }
            | ConfigError::Conflict { key, .. }
            | ConfigError::File { key, .. }
            | ConfigError::SecretFile { key, .. } => Some(key),
            ConfigError::Syntax { .. } => None,
        }
    }

    pub(crate) fn invalid(origin: &Origin, key: &str, problem: ValueError) -> Self {
        ConfigError::Invalid {
            origin: origin.clone(),
            key: key.to_owned(),
            problem: Box::new(problem),
        }
    }
}

/// What is wrong with one value, whatever its origin: the part of a
/// [`ConfigError::Invalid`] message after the key. Messages never echo
/// secrets or passwords.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ValueError {
    /// The TOML value has the wrong type.
    #[error("expected {expected}, found {found}")]
    WrongType {
        /// What the key takes.
        expected: &'static str,
        /// The type given.
        found: &'static str,
    },
    /// A TOML integer that does not fit the setting at all (e.g. negative).
    #[error("{0} is out of range")]
    IntOutOfRange(i64),
    /// A number outside the setting's range.
    #[error("{value} is out of range ({allowed})")]
    OutOfRange {
        /// The number given.
        value: u64,
        /// The range allowed, e.g. `1..=65535`.
        allowed: String,
    },
    /// Zero where at least 1 is needed.
    #[error("must be at least 1{hint}")]
    Zero {
        /// How to say "off" instead, if there is a way.
        hint: &'static str,
    },
    /// Text that is not a non-negative integer (command line / environment).
    #[error("invalid number `{0}` (expected a non-negative integer)")]
    NotANumber(String),
    /// Text that does not parse as the setting's kind of value.
    #[error("invalid {what} `{text}`{expected}")]
    Malformed {
        /// What the value should be (e.g. `IP address`).
        what: &'static str,
        /// The value given (escaped where it may hold control characters).
        text: String,
        /// What is accepted, as ` (expected ...)`, or empty.
        expected: &'static str,
    },
    /// A duration that does not parse.
    #[error(
        "invalid duration `{text}`: {reason} (expected e.g. \"30s\", \"10m\", \"1h30m\" or a number of seconds)"
    )]
    Duration {
        /// The value given.
        text: String,
        /// The parser's explanation.
        reason: String,
    },
    /// A duration in seconds too large to represent.
    #[error("duration `{0}` is too large")]
    DurationTooLarge(String),
    /// A negative number of seconds.
    #[error("duration must not be negative, got {0}")]
    NegativeDuration(i64),
    /// A zero duration where one is needed.
    #[error("duration must be greater than zero")]
    ZeroDuration,
    /// A duration longer than allowed.
    #[error("{what} longer than {max} is not allowed")]
    DurationTooLong {
        /// What is limited.
        what: &'static str,
        /// The longest allowed, e.g. `1h`.
        max: &'static str,
    },
    /// A duration shorter than one second.
    #[error("{0} at least one second")]
    SubSecond(&'static str),
    /// A duration with a fraction of a second where whole seconds are counted.
    #[error("must be a whole number of seconds")]
    FractionalSeconds,
    /// An address of a kind the setting refuses (unspecified, multicast, port 0).
    #[error("`{addr}` {problem}")]
    Address {
        /// The address.
        addr: String,
        /// What is wrong with it.
        problem: &'static str,
    },
    /// Two addresses of one family where at most one is allowed.
    #[error(
        "at most one {what} address per address family, got two {family} addresses ({first} and {second})"
    )]
    TwoOfFamily {
        /// `relay` or `external`.
        what: &'static str,
        /// `IPv4` or `IPv6`.
        family: &'static str,
        /// The first one.
        first: String,
        /// The second one.
        second: String,
    },
    /// `PUBLIC/PRIVATE` of different families.
    #[error(
        "public and private addresses must be of the same family, got {public_family} `{public}` and {private_family} `{private}`"
    )]
    MixedFamilies {
        /// The public address.
        public: String,
        /// Its family.
        public_family: &'static str,
        /// The private address.
        private: String,
        /// Its family.
        private_family: &'static str,
    },
    /// An `A-B` address range whose first address is after its last.
    #[error("address range `{0}` starts after it ends (expected FIRST-LAST with FIRST <= LAST)")]
    RangeReversed(String),
    /// An `A-B` address range with one IPv4 and one IPv6 end.
    #[error("address range `{0}` mixes IPv4 and IPv6 (both ends must be of one family)")]
    RangeFamilies(String),
    /// An entry listed twice.
    #[error("address `{0}` listed twice")]
    Duplicate(String),
    /// An empty list where one entry is needed.
    #[error("at least one listening address is required")]
    NoListenAddress,
    /// An empty entry of a list (1-based).
    #[error("{what} #{index} is empty")]
    EmptyEntry {
        /// `secret` or `file name`.
        what: &'static str,
        /// 1-based position.
        index: usize,
    },
    /// A secret list given as an empty value.
    #[error(
        "is empty (an unset shell variable?): a secret cannot be empty. Leave it out to try ternd with a secret generated for the run"
    )]
    EmptySecret,
    /// A secret's `TERND_*_FILE` could not be used.
    #[error("cannot read the secret from `{path}`: {problem}")]
    SecretFile {
        /// The file.
        path: String,
        /// Why not.
        problem: String,
    },
    /// Empty text where some is needed.
    #[error("{0} must not be empty")]
    Empty(&'static str),
    /// REALM / SOFTWARE / USERNAME text over the RFC 8489 limits.
    #[error("{what}too long: {len} {unit} ({limit})")]
    TooLong {
        /// What is too long, with a trailing space (`user name is `), or empty.
        what: &'static str,
        /// Its length.
        len: usize,
        /// `bytes` or `characters`.
        unit: &'static str,
        /// The limit, in words.
        limit: &'static str,
    },
    /// Text with control characters.
    #[error("{0}")]
    Text(&'static str),
    /// A user name with control characters.
    #[error("user name `{0}` contains control characters")]
    ControlInUserName(String),
    /// A problem with one static user.
    #[error("user `{name}`{problem}")]
    User {
        /// The user's name.
        name: String,
        /// What is wrong, e.g. ` is defined twice`.
        problem: &'static str,
    },
    /// An MD5 key (`auth.users[].key`) of the wrong length.
    #[error(
        "key must be 32 hexadecimal digits (MD5 of \"user:realm:password\"), got {0} characters"
    )]
    KeyLength(usize),
    /// `NAME:PASSWORD` without a `:`.
    #[error("expected NAME:PASSWORD (no `:` found)")]
    NoColon,
    /// A separator that is not one character.
    #[error("expected exactly one character, got `{0}`")]
    NotOneChar(String),
    /// A separator that could be part of a user name or expiry.
    #[error("separator `{0}` must not be a letter, digit, whitespace or control character")]
    BadSeparator(String),
    /// Too many workers.
    #[error("{0} workers is too many (0 = one per CPU, otherwise 1..={max})", max = super::values::MAX_WORKERS)]
    TooManyWorkers(usize),
    /// A log directive `tracing_subscriber` refuses.
    #[error("invalid log directive `{text}`: {reason}")]
    LogDirective {
        /// The directive.
        text: String,
        /// Why.
        reason: String,
    },
    /// An admin token too short to be a secret.
    #[error(
        "the admin token is too short ({0} characters; at least {min}, e.g. from `openssl rand -hex 32`)",
        min = super::values::MIN_ADMIN_TOKEN
    )]
    ShortToken(usize),
    /// An invalid port range.
    #[error(transparent)]
    PortRange(#[from] crate::turn::ParsePortRangeError),
    /// An invalid log format.
    #[error(transparent)]
    LogFormat(#[from] super::ParseLogFormatError),
}

/// A file named by a setting that [`Config::load_files`](super::Config::load_files)
/// could read but not use.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FileError {
    /// A TLS certificate or private key.
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsError),
    /// An access-token public key file or JWKS file (the loader's message,
    /// which names the file).
    #[error("{0}")]
    TokenKeys(String),
    /// A secret file without a secret.
    #[error("secret file `{}` contains no secrets", .0.display())]
    NoSecrets(PathBuf),
}

/// Two settings that do not go together. `from` fields name the other
/// setting and its origin (`` `--listen` from command line ``) or say
/// `built-in default`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Conflict {
    /// `profile = "loadtest"` with a listener beyond loopback.
    #[error(
        "the loadtest profile lifts the per-user, per-IP and unauthenticated limits, so it runs only on loopback; {addr} is not (listen, tls_listen and http.listen must all be on 127.0.0.0/8 or ::1)"
    )]
    LoadtestBeyondLoopback {
        /// The first listener beyond loopback.
        addr: String,
    },
    /// `log.output = "file"` without `log.file`.
    #[error("logs go to a file, but which one? set log.file (--log-file)")]
    LogFileMissing,
    /// `cluster.api_only` without `cluster.redis_url`.
    #[error("an API-only node needs a cluster to name relays from: set cluster.redis_url")]
    ApiOnlyWithoutCluster,
    /// `cluster.revocation_ttl` shorter than `http.credential_ttl`.
    #[error(
        "a revocation would stand {ttl}, less than the {minted} credentials minted by the endpoint live ({from}): credentials minted before it could outlive it"
    )]
    RevocationShorterThanCredentials {
        /// The revocation lifetime.
        ttl: String,
        /// The endpoint's credential lifetime.
        minted: String,
        /// Where that came from.
        from: String,
    },
    /// `relay.default_allocation_lifetime` above the maximum.
    #[error(
        "default allocation lifetime ({default}) is longer than the maximum allocation lifetime ({max}, {from})"
    )]
    DefaultLifetimeTooLong {
        /// The default lifetime.
        default: String,
        /// The maximum.
        max: String,
        /// Where the maximum came from.
        from: String,
    },
    /// `relay.max_allocation_lifetime` below the default.
    #[error(
        "maximum allocation lifetime ({max}) is shorter than the default allocation lifetime ({default}, {from})"
    )]
    MaxLifetimeTooShort {
        /// The maximum.
        max: String,
        /// The default lifetime.
        default: String,
        /// Where the default came from.
        from: String,
    },
    /// A TLS listener on a TCP listener's address.
    #[error(
        "`{addr}` is also a TCP listen address ({from}); a TLS listener needs an address (port) of its own"
    )]
    TlsOnTcpAddress {
        /// The address.
        addr: String,
        /// Where `listen` came from.
        from: String,
    },
    /// A TLS listener overlapping a TCP listener.
    #[error(
        "`{addr}` overlaps the TCP listen address `{other}` ({from}); a TLS listener needs an address (port) of its own"
    )]
    TlsOverlapsTcp {
        /// The TLS address.
        addr: String,
        /// The TCP address.
        other: String,
        /// Where `listen` came from.
        from: String,
    },
    /// A certificate without a key, or a key without a certificate.
    #[error("a TLS {given} needs a {missing} too ({how})")]
    Half {
        /// `certificate` or `private key`.
        given: &'static str,
        /// `private key` or `certificate`.
        missing: &'static str,
        /// How to give the missing one.
        how: &'static str,
    },
    /// TLS listeners without certificate and key.
    #[error(
        "TLS listeners need a certificate and a private key (tls_cert and tls_key / --cert and --key / TERND_CERT and TERND_KEY)"
    )]
    TlsWithoutCertificate,
    /// A PROXY-protocol address that is no listener.
    #[error(
        "`{addr}` is not a listener address: each address must appear exactly in listen ({listen}) or tls_listen ({tls_listen})"
    )]
    NotAListener {
        /// The address.
        addr: String,
        /// Where `listen` came from.
        listen: String,
        /// Where `tls_listen` came from.
        tls_listen: String,
    },
    /// `alt_ip` / `alt_port` without `rfc5780`.
    #[error(
        "alternate {what} is only used for RFC 5780 NAT behaviour discovery, which is off ({from}); it needs rfc5780 = true (--rfc5780 / TERND_RFC5780)"
    )]
    Rfc5780Off {
        /// `IP `127.0.0.2`` or `port 3479`.
        what: String,
        /// Where `rfc5780` came from.
        from: String,
    },
    /// `rfc5780` without `alt_ip`.
    #[error(
        "RFC 5780 NAT behaviour discovery needs a second IP address of this host: set alt_ip (--alt-ip / TERND_ALT_IP){empty}"
    )]
    NoAltIp {
        /// `` (`--alt-ip` from command line is empty)`` when it was given empty.
        empty: String,
    },
    /// No specific `listen` address of `alt_ip`'s family.
    #[error(
        "RFC 5780 needs a specific `listen` address of alt_ip's family as the primary address, e.g. {example}; listen ({listen}) has no {family} address other than the unspecified one (alt_ip `{ip}`, {alt_ip})"
    )]
    NoPrimary {
        /// An example command line.
        example: &'static str,
        /// Where `listen` came from.
        listen: String,
        /// `IPv4` or `IPv6`.
        family: &'static str,
        /// The alternate IP.
        ip: String,
        /// Where `alt_ip` came from.
        alt_ip: String,
    },
    /// `alt_ip` is the primary IP.
    #[error(
        "alternate IP `{ip}` is the primary IP (primary address `{primary}`: the first specific {family} `listen` address, {listen}); RFC 5780 needs a second, different IP address"
    )]
    AltIpIsPrimary {
        /// The IP.
        ip: String,
        /// The primary address.
        primary: String,
        /// `IPv4` or `IPv6`.
        family: &'static str,
        /// Where `listen` came from.
        listen: String,
    },
    /// `alt_port` is the primary port.
    #[error(
        "alternate port {port} is the primary port (primary address `{primary}`, {listen}); RFC 5780 needs a different port (0 = the primary port + 1)"
    )]
    AltPortIsPrimary {
        /// The port.
        port: u16,
        /// The primary address.
        primary: String,
        /// Where `listen` came from.
        listen: String,
    },
    /// The primary port is 65535 and `alt_port` unset.
    #[error(
        "the primary address `{primary}` has port 65535, so there is no primary port + 1 to use as the alternate port; set alt_port (--alt-port / TERND_ALT_PORT)"
    )]
    NoNextPort {
        /// The primary address.
        primary: String,
    },
}
