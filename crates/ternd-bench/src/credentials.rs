//! Credentials of each allocation: REST usernames under a shared secret, or one
//! long-term user.

use std::time::{SystemTime, UNIX_EPOCH};

use ternd_client::Credentials;

use crate::args::BenchArgs;

/// The credentials of allocation `i`.
pub(crate) fn credentials(args: &BenchArgs, i: u32) -> Result<Credentials, String> {
    let creds = match (&args.secret, &args.username, &args.password) {
        (Some(secret), _, _) => {
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            let expiry = now + args.duration.as_secs() + 3600;
            Ok::<_, String>(Credentials::rest(secret, &format!("bench{i}"), expiry, ':'))
        }
        (None, Some(u), Some(p)) => Ok(Credentials::new(u, p)),
        _ => Err("give --secret, or --username and --password".into()),
    }?;
    Ok(match &args.realm {
        Some(r) => creds.with_realm(r),
        None => creds,
    })
}
