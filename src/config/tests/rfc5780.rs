//! RFC 5780 NAT behaviour discovery; UDP socket buffers.

use super::*;

// ---------------------------------------------------------------------------
// RFC 5780 NAT behaviour discovery

#[test]
fn rfc5780_from_file() {
    let c = parse(
        "listen = [\"127.0.0.1:3478\"]\nrfc5780 = true\nalt_ip = \"127.0.0.2\"\nalt_port = 3479",
    )
    .expect("file");
    assert!(c.rfc5780);
    assert_eq!(c.alt_ip, Some(ip("127.0.0.2")));
    assert_eq!(c.alt_port, Some(3479));
    assert_eq!(c.rfc5780_primary(), Some(sa("127.0.0.1:3478")));

    // alt_port = 0 means "the primary port + 1" (None); IPv6 works too.
    let c = parse(
        "listen = [\"[2001:db8::1]:3478\"]\nrfc5780 = true\nalt_ip = \"2001:db8::2\"\nalt_port = 0",
    )
    .expect("IPv6, derived port");
    assert_eq!(c.alt_ip, Some(ip("2001:db8::2")));
    assert_eq!(c.alt_port, None);
    assert_eq!(c.rfc5780_primary(), Some(sa("[2001:db8::1]:3478")));

    // The shipped file's forms: off, empty and 0 are the defaults.
    assert_eq!(
        parse("rfc5780 = false\nalt_ip = \"\"\nalt_port = 0").expect("off"),
        Config::default()
    );

    // Port 0 on the primary (a free port at bind time): any alt_port goes.
    let c =
        parse("listen = [\"127.0.0.1:0\"]\nrfc5780 = true\nalt_ip = \"127.0.0.2\"\nalt_port = 0")
            .expect("ephemeral primary");
    assert_eq!(c.rfc5780_primary(), Some(sa("127.0.0.1:0")));
    assert!(
        parse("listen = [\"127.0.0.1:0\"]\nrfc5780 = true\nalt_ip = \"127.0.0.2\"\nalt_port = 1")
            .is_ok()
    );
}

#[test]
fn rfc5780_primary_is_the_first_specific_listen_address_of_alt_ips_family() {
    let listen = "listen = [\"0.0.0.0:3478\", \"[::]:3478\", \"[2001:db8::1]:3478\", \
                  \"127.0.0.1:4000\", \"127.0.0.3:3478\"]\nrfc5780 = true\n";
    let c = parse(&format!("{listen}alt_ip = \"127.0.0.2\"")).expect("IPv4");
    assert_eq!(c.rfc5780_primary(), Some(sa("127.0.0.1:4000")));
    let c = parse(&format!("{listen}alt_ip = \"2001:db8::2\"")).expect("IPv6");
    assert_eq!(c.rfc5780_primary(), Some(sa("[2001:db8::1]:3478")));
    // The primary may be another entry than the alternate IP's twin.
    let c = parse(&format!("{listen}alt_ip = \"127.0.0.3\"")).expect("127.0.0.3");
    assert_eq!(c.rfc5780_primary(), Some(sa("127.0.0.1:4000")));

    // Off: None, whatever else is set (hand-built configurations included).
    let mut c = parse(&format!("{listen}alt_ip = \"127.0.0.2\"")).expect("on");
    c.rfc5780 = false;
    assert_eq!(c.rfc5780_primary(), None);
    let c = Config {
        rfc5780: true,
        ..Config::default()
    };
    assert_eq!(c.rfc5780_primary(), None, "no alt_ip");
    let c = Config {
        rfc5780: true,
        alt_ip: Some(ip("192.0.2.2")),
        ..Config::default()
    };
    assert_eq!(
        c.rfc5780_primary(),
        None,
        "only unspecified listen addresses"
    );
}

#[test]
fn rfc5780_on_the_command_line() {
    let c = Config::load(&cli(&[
        "--listen",
        "127.0.0.1:3478",
        "--rfc5780",
        "--alt-ip",
        "127.0.0.2",
        "--alt-port",
        "4000",
    ]))
    .expect("flags");
    assert!(c.rfc5780);
    assert_eq!(c.alt_ip, Some(ip("127.0.0.2")));
    assert_eq!(c.alt_port, Some(4000));
    assert_eq!(c.rfc5780_primary(), Some(sa("127.0.0.1:3478")));
    // Re-applying an empty command line keeps everything.
    assert_eq!(c.clone().apply_cli(&cli(&[])).expect("same"), c);
    // `--alt-port 0` (or empty) goes back to the derived port.
    for zero in [["--alt-port", "0"], ["--alt-port", ""]] {
        let d = c.clone().apply_cli(&cli(&zero)).expect("derived");
        assert_eq!(d.alt_port, None, "{zero:?}");
        assert!(d.rfc5780);
    }
    // Everything off again: the alternate IP must be cleared with it.
    let d = c
        .clone()
        .apply_cli(&cli(&[
            "--rfc5780=false",
            "--alt-ip",
            "",
            "--alt-port",
            "0",
        ]))
        .expect("off");
    assert!(!d.rfc5780 && d.alt_ip.is_none() && d.alt_port.is_none());
    assert_eq!(d.rfc5780_primary(), None);

    // The command line beats the file.
    let file = parse(
        "listen = [\"127.0.0.1:3478\"]\nrfc5780 = true\nalt_ip = \"127.0.0.2\"\nalt_port = 3479",
    )
    .expect("file");
    let c = file
        .apply_cli(&cli(&[
            "--alt-ip=127.0.0.9",
            "--alt-port=5000",
            "--rfc5780",
            "yes",
        ]))
        .expect("override");
    assert_eq!((c.alt_ip, c.alt_port), (Some(ip("127.0.0.9")), Some(5000)));

    // All three show in the Cli's Debug output.
    let debug = format!(
        "{:?}",
        cli(&["--rfc5780", "--alt-ip", "192.0.2.7", "--alt-port", "3479"])
    );
    for needle in [
        "rfc5780: Some(true)",
        "alt_ip: Some(\"192.0.2.7\")",
        "alt_port: Some(\"3479\")",
    ] {
        assert!(debug.contains(needle), "{needle}: {debug}");
    }
    assert!(Cli::try_parse_from(["ternd", "--rfc5780=maybe"]).is_err());
}

#[test]
fn rfc5780_env_vars() {
    // The environment itself is exercised in tests/config_env.rs; here only
    // the flag <-> variable pairing (no test here touches the environment).
    use clap::CommandFactory;
    let cmd = Cli::command();
    for (flag, env) in [
        ("rfc5780", "TERND_RFC5780"),
        ("alt-ip", "TERND_ALT_IP"),
        ("alt-port", "TERND_ALT_PORT"),
    ] {
        let arg = cmd
            .get_arguments()
            .find(|a| a.get_long() == Some(flag))
            .unwrap_or_else(|| panic!("no --{flag}"));
        assert_eq!(
            arg.get_env().and_then(|e| e.to_str()),
            Some(env),
            "--{flag}"
        );
    }
}

#[test]
fn rfc5780_bad_values_name_the_key() {
    for bad in [
        "alt_ip = \"nope\"",
        "alt_ip = \"127.0.0.2:3478\"",
        "alt_ip = \"0.0.0.0\"",
        "alt_ip = \"::\"",
        "alt_ip = \"224.0.0.1\"",
        "alt_ip = \"ff02::1\"",
        "alt_ip = [\"127.0.0.2\"]",
        "alt_ip = 2130706434",
    ] {
        names(&err(bad), "alt_ip", FILE);
    }
    let m = err("alt_ip = \"0.0.0.0\"");
    assert!(m.contains("unspecified"), "{m}");
    let m = err("alt_ip = \"224.0.0.1\"");
    assert!(m.contains("multicast"), "{m}");
    for bad in ["alt_port = -1", "alt_port = 65536", "alt_port = \"3479\""] {
        names(&err(bad), "alt_port", FILE);
    }
    names(&err("rfc5780 = \"yes\""), "rfc5780", FILE);
    names(&err("rfc5780 = 1"), "rfc5780", FILE);

    for bad in ["nope", "0.0.0.0", "::", "239.1.2.3", "127.0.0.2:1"] {
        let m = cli_err(&["--rfc5780", "--alt-ip", bad]);
        names(&m, "--alt-ip", "command line");
    }
    for bad in ["x", "-1", "65536", "3479.0"] {
        let m = cli_err(&[&format!("--alt-port={bad}")]);
        names(&m, "--alt-port", "command line");
    }
}

#[test]
fn rfc5780_needs_alt_ip() {
    let m = err("listen = [\"127.0.0.1:3478\"]\nrfc5780 = true");
    names(&m, "rfc5780", FILE);
    assert!(m.contains("alt_ip") && m.contains("--alt-ip"), "{m}");
    // An explicitly empty alt_ip is no better.
    let m = err("listen = [\"127.0.0.1:3478\"]\nrfc5780 = true\nalt_ip = \"\"");
    names(&m, "rfc5780", FILE);
    let m = cli_err(&["--listen", "127.0.0.1:3478", "--rfc5780"]);
    names(&m, "--rfc5780", "command line");
}

#[test]
fn rfc5780_needs_a_specific_listen_address_of_alt_ips_family() {
    // The default listen addresses are unspecified.
    let m = err("rfc5780 = true\nalt_ip = \"127.0.0.2\"");
    names(&m, "rfc5780", FILE);
    assert!(
        m.contains("`--listen 127.0.0.1:3478 --alt-ip 127.0.0.2`"),
        "{m}"
    );
    assert!(m.contains("IPv4") && m.contains("built-in default"), "{m}");
    // Only the other family is specific.
    let m =
        err("listen = [\"0.0.0.0:3478\", \"[::1]:3478\"]\nrfc5780 = true\nalt_ip = \"127.0.0.2\"");
    names(&m, "rfc5780", FILE);
    assert!(m.contains("`listen` from test.toml"), "{m}");
    let m = err("listen = [\"127.0.0.1:3478\"]\nrfc5780 = true\nalt_ip = \"2001:db8::2\"");
    names(&m, "rfc5780", FILE);
    assert!(
        m.contains("IPv6") && m.contains("--alt-ip 2001:db8::2"),
        "{m}"
    );
    let m = cli_err(&["--rfc5780", "--alt-ip", "127.0.0.2"]);
    names(&m, "--rfc5780", "command line");
}

#[test]
fn rfc5780_alternate_must_differ_from_primary() {
    // The same IP as the primary address.
    let m = err("listen = [\"127.0.0.1:3478\"]\nrfc5780 = true\nalt_ip = \"127.0.0.1\"");
    names(&m, "alt_ip", FILE);
    assert!(m.contains("127.0.0.1:3478"), "{m}");
    let m = cli_err(&[
        "--listen",
        "[2001:db8::1]:3478",
        "--rfc5780",
        "--alt-ip",
        "2001:db8::1",
    ]);
    names(&m, "--alt-ip", "command line");

    // The same port as the primary address.
    let m = err(
        "listen = [\"127.0.0.1:3478\"]\nrfc5780 = true\nalt_ip = \"127.0.0.2\"\nalt_port = 3478",
    );
    names(&m, "alt_port", FILE);
    assert!(m.contains("3478"), "{m}");
    // Only the primary's port counts, not another listen address's.
    let c = parse(
        "listen = [\"127.0.0.1:3478\", \"127.0.0.1:5000\"]\nrfc5780 = true\n\
         alt_ip = \"127.0.0.2\"\nalt_port = 5001",
    )
    .expect("other entry");
    assert_eq!(c.alt_port, Some(5001));
    let m = cli_err(&[
        "--listen",
        "127.0.0.1:3478",
        "--rfc5780",
        "--alt-ip",
        "127.0.0.2",
        "--alt-port",
        "3478",
    ]);
    names(&m, "--alt-port", "command line");

    // Port 65535 has no "+ 1": alt_port must be given.
    let m = err("listen = [\"127.0.0.1:65535\"]\nrfc5780 = true\nalt_ip = \"127.0.0.2\"");
    names(&m, "rfc5780", FILE);
    assert!(m.contains("alt_port"), "{m}");
    assert!(
        parse(
            "listen = [\"127.0.0.1:65535\"]\nrfc5780 = true\nalt_ip = \"127.0.0.2\"\nalt_port = 3478"
        )
        .is_ok()
    );
}

#[test]
fn alt_ip_and_alt_port_need_rfc5780() {
    for (text, key) in [
        ("alt_ip = \"127.0.0.2\"", "alt_ip"),
        (
            "listen = [\"127.0.0.1:3478\"]\nalt_ip = \"127.0.0.2\"",
            "alt_ip",
        ),
        ("alt_port = 3479", "alt_port"),
        (
            "rfc5780 = false\nalt_ip = \"127.0.0.2\"\nalt_port = 3479",
            "alt_ip",
        ),
    ] {
        let m = err(text);
        names(&m, key, FILE);
        assert!(m.contains("rfc5780 = true"), "{m}");
    }
    names(
        &cli_err(&["--alt-ip", "127.0.0.2"]),
        "--alt-ip",
        "command line",
    );
    names(
        &cli_err(&["--alt-port", "4000"]),
        "--alt-port",
        "command line",
    );

    // Turning RFC 5780 off on the command line while the file (here: an
    // already loaded configuration) keeps an alternate IP is an error too.
    let file = parse(
        "listen = [\"127.0.0.1:3478\"]\nrfc5780 = true\nalt_ip = \"127.0.0.2\"\nalt_port = 3479",
    )
    .expect("file");
    let m = file
        .clone()
        .apply_cli(&cli(&["--rfc5780=false"]))
        .expect_err("leftover alt_ip")
        .to_string();
    names(&m, "alt_ip", "configuration");
    assert!(m.contains("--rfc5780"), "{m}");
    let m = file
        .apply_cli(&cli(&["--rfc5780=false", "--alt-ip="]))
        .expect_err("leftover alt_port")
        .to_string();
    names(&m, "alt_port", "configuration");
}

#[test]
fn udp_socket_buffers_default_file_cli_and_ranges() {
    let c = Config::default();
    assert_eq!((c.udp_recv_buffer, c.udp_send_buffer), (4 << 20, 4 << 20));
    let file = parse("udp_recv_buffer = 8388608\nudp_send_buffer = 0").expect("file");
    assert_eq!((file.udp_recv_buffer, file.udp_send_buffer), (8 << 20, 0));
    // Absent flags keep the file's values; given ones override them.
    assert_eq!(file.clone().apply_cli(&cli(&[])).expect("none"), file);
    let c = file
        .apply_cli(&cli(&[
            "--udp-recv-buffer",
            "0",
            "--udp-send-buffer=1048576",
        ]))
        .expect("flags");
    assert_eq!((c.udp_recv_buffer, c.udp_send_buffer), (0, 1 << 20));
    // 0 (the kernel default) or 4096..=1 GiB.
    assert!(parse("udp_recv_buffer = 4096").is_ok());
    assert!(parse("udp_send_buffer = 1073741824").is_ok());
    names(&err("udp_recv_buffer = 4095"), "udp_recv_buffer", FILE);
    names(
        &err("udp_send_buffer = 1073741825"),
        "udp_send_buffer",
        FILE,
    );
    names(&err("udp_recv_buffer = -1"), "udp_recv_buffer", FILE);
    names(&err("udp_recv_buffer = \"4M\""), "udp_recv_buffer", FILE);
    let e = cli_err(&["--udp-recv-buffer", "100"]);
    assert!(e.contains("--udp-recv-buffer"), "{e}");
    let e = cli_err(&["--udp-send-buffer", "lots"]);
    assert!(e.contains("--udp-send-buffer"), "{e}");
}
