//! `ternd config show`: a loaded [`Config`] printed as the TOML file that loads to it,
//! every setting in declaration order, secrets redacted, each given value with a comment
//! naming where it came from (the file, the `TERND_*` variable or the flag).

use std::fmt::Write as _;

use super::declare::Setting;
use super::render::{REDACTED, redact};
use super::{Config, Origin, Profile};

/// The settings of `config` as TOML text that `ternd --config` reads back; see the
/// [module documentation](self). Secrets are [`REDACTED`], and the header says which.
pub fn show(config: &Config) -> String {
    let defaults = Config::default();
    let mut redacted = Vec::new();
    let mut body = String::new();
    let mut section = "";
    for s in super::schema_http::all() {
        let (table, key) = match s.key.split_once('.') {
            Some((table, key)) => (table, key),
            None => ("", s.key),
        };
        if table != section {
            let _ = write!(body, "\n[{table}]\n");
            section = table;
        }
        let mut value = (s.show)(config);
        if s.secret && !is_empty(&value) {
            value = redact(&value);
            redacted.push(s.key);
        }
        let mut note = comment(config, &defaults, s);
        if s.key == "workers" && note.is_none() {
            // Not given: 0, one per CPU, rather than this machine's count.
            note = Some(format!("one per CPU ({value} here)"));
            value = toml::Value::Integer(0);
        }
        let _ = writeln!(
            body,
            "{key} = {value}{}",
            note.map_or(String::new(), |c| format!("  # {c}"))
        );
    }
    let mut out = String::from(
        "# ternd's effective configuration: the built-in defaults, the configuration file,\n\
         # TERND_* environment variables and flags, merged as the server merges them. A\n\
         # comment names where each given value came from; the others are defaults. Files\n\
         # the settings name (secret file, certificates, token keys) are not read here:\n\
         # `ternd --check-config` reads them.\n",
    );
    if !redacted.is_empty() {
        let _ = write!(
            out,
            "#\n# Redacted: {}. Their secrets are printed as \"{REDACTED}\", which ternd\n\
             # refuses: this file will not start as is; put the secrets back first (or give\n\
             # them as flags, TERND_* variables or TERND_*_FILE files).\n",
            redacted.join(", ")
        );
    }
    out.push('\n');
    out.push_str(&body);
    out
}

fn is_empty(v: &toml::Value) -> bool {
    match v {
        toml::Value::String(s) => s.is_empty(),
        toml::Value::Array(a) => a.is_empty(),
        _ => false,
    }
}

/// Where the value of `s` came from, when it was given or derived.
fn comment(config: &Config, defaults: &Config, s: &Setting) -> Option<String> {
    if let Some((origin, shown)) = config.origins.get(s.key) {
        return Some(match origin {
            Origin::File(path) => format!("from {path}"),
            Origin::Env(var) => format!("from {var}"),
            Origin::CommandLine => format!("from {shown}"),
            Origin::Merged => "given".to_owned(),
        });
    }
    if (s.show)(config) == (s.show)(defaults) {
        return None;
    }
    (config.profile == Profile::Loadtest).then(|| "from profile = \"loadtest\"".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_without_secrets() {
        let text = "realm = \"example.org\"\nlisten = [\"127.0.0.1:3478\"]\n\
                    tls_listen = []\ndrain_timeout = \"1h 30m\"\n\
                    [relay]\nports = \"10000-10100\"\nallow_peer = [\"10.0.0.0/8\"]\n\
                    external_ips = [\"203.0.113.7/10.0.0.7\"]\nuser_quota = 7\n\
                    [http]\nlisten = \"\"\ncors_origins = [\"https://app.example\"]\n\
                    [log]\nformat = \"json\"\noutput = \"journald\"\n\
                    [cluster]\nregion_prefixes = [\"10.1.0.0/16=eu-west\"]\n";
        let config = Config::from_toml_str(text, "ternd.toml").unwrap();
        let shown = show(&config);
        assert!(!shown.contains("Redacted"), "{shown}");
        assert!(
            shown.contains("ports = \"10000-10100\"  # from ternd.toml"),
            "{shown}"
        );
        let again = Config::from_toml_str(&shown, "shown.toml").unwrap();
        assert_eq!(again, config, "{shown}");
        // The defaults as well.
        let shown = show(&Config::default());
        assert_eq!(
            Config::from_toml_str(&shown, "shown.toml").unwrap(),
            Config::default()
        );
    }

    #[test]
    fn secrets_are_redacted_and_refused() {
        let text = "[auth]\nsecrets = [\"s3cret-one\", \"s3cret-two\"]\n\
                    [[auth.users]]\nname = \"alice\"\npassword = \"wonderland\"\n\
                    [http]\nadmin_token = \"0123456789abcdef-admin\"\n";
        let config = Config::from_toml_str(text, "ternd.toml").unwrap();
        let shown = show(&config);
        for secret in ["s3cret", "wonderland", "0123456789abcdef"] {
            assert!(!shown.contains(secret), "{secret} in {shown}");
        }
        assert!(
            shown.contains("# Redacted: auth.secrets, auth.users, http.admin_token."),
            "{shown}"
        );
        assert!(shown.contains("alice"), "{shown}");
        let err = Config::from_toml_str(&shown, "shown.toml").unwrap_err();
        assert!(err.to_string().contains("config show"), "{err}");
    }
}
