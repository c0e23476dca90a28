//! Operator tooling: `ternd sessions` (a client of a running ternd's admin API),
//! `ternd config show`, `ternd completions SHELL` and `ternd manpage`.

mod client;
mod sessions;

use std::io::Write as _;
use std::process::ExitCode;

use clap::CommandFactory as _;

use crate::config::cli_tools::ConfigCommand;
use crate::config::{Cli, Command, Config};

/// Runs the operator subcommand of `cli`, if it has one; its exit status.
pub fn run(cli: &Cli) -> Option<ExitCode> {
    let (name, result) = match cli.command.as_ref()? {
        Command::Sessions(a) => {
            let name = match &a.command {
                crate::config::cli_tools::SessionsCommand::List(_) => "sessions list",
                crate::config::cli_tools::SessionsCommand::Kill(_) => "sessions kill",
                crate::config::cli_tools::SessionsCommand::Revoke(_) => "sessions revoke",
            };
            (name, sessions::run(&a.command, cli))
        }
        Command::Config(a) => match &a.command {
            ConfigCommand::Show(show) => {
                let mut cli = cli.clone();
                if show.config.is_some() {
                    cli.config = show.config.clone();
                }
                match Config::load(&cli) {
                    Ok(config) => ("config show", Ok(crate::config::show::show(&config))),
                    Err(e) => {
                        eprintln!("ternd config show: configuration error: {e}");
                        return Some(ExitCode::from(2));
                    }
                }
            }
        },
        Command::Completions(a) => {
            let mut out = Vec::new();
            clap_complete::generate(a.shell, &mut Cli::command(), "ternd", &mut out);
            (
                "completions",
                Ok(String::from_utf8_lossy(&out).into_owned()),
            )
        }
        Command::Manpage => {
            let mut out = Vec::new();
            // NAME reads "ternd - a STUN/TURN relay server", not "ternd - ternd — ...".
            let cmd = Cli::command().about("a STUN/TURN relay server");
            let page = clap_mangen::Man::new(cmd).render(&mut out);
            let text = page
                .map(|()| String::from_utf8_lossy(&out).into_owned())
                .map_err(|e| e.to_string());
            ("manpage", text)
        }
        _ => return None,
    };
    Some(match result {
        Ok(text) => {
            // A closed pipe (`| head`) is not an error worth a message.
            let _ = std::io::stdout().lock().write_all(text.as_bytes());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("ternd {name}: {e}");
            ExitCode::FAILURE
        }
    })
}
