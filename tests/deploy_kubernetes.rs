//! The Kubernetes deployment, checked against the binary it deploys (the systemd unit and
//! the container image: `deploy_host.rs`):
//!
//! - `deploy/kubernetes`: every kustomization renders with `kubectl kustomize` (no
//!   warning), validates with `kubernetes-validate --strict` against Kubernetes
//!   [`KUBERNETES`], lints clean with `yamllint`, and keeps the properties a relay fleet
//!   depends on. The config each pod mounts, with the pod's own arguments and secret
//!   files, is checked by `ternd --check-config`.
//!
//! The external tools are installed by `.ci/run`; without them a check is SKIPPED loudly
//! here, and fails with `TERND_REQUIRE_INTEROP=1`.

#[path = "common/tls.rs"]
mod tls;
#[path = "common/tools.rs"]
mod tools;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use ternd::config::{Cli, Config};
use tools::{have, root};

/// The Kubernetes version the manifests are validated against.
const KUBERNETES: &str = "1.37.0";

/// The kustomizations: the base and every overlay.
fn kustomizations() -> Vec<PathBuf> {
    let k = root().join("deploy/kubernetes");
    let mut dirs = vec![k.join("base")];
    let mut overlays: Vec<PathBuf> = std::fs::read_dir(k.join("overlays"))
        .expect("deploy/kubernetes/overlays")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.join("kustomization.yaml").is_file())
        .collect();
    overlays.sort();
    assert!(overlays.len() >= 3, "{overlays:?}");
    dirs.extend(overlays);
    dirs
}

fn render(dir: &Path) -> String {
    let out = Command::new("kubectl")
        .arg("kustomize")
        .arg(dir)
        .output()
        .expect("run kubectl kustomize");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{}: {stderr}", dir.display());
    assert!(
        stderr.trim().is_empty(),
        "{}: kustomize warned: {stderr}",
        dir.display()
    );
    String::from_utf8(out.stdout).expect("utf-8")
}

fn to_json(y: &yaml_rust2::Yaml) -> Value {
    use yaml_rust2::Yaml;
    match y {
        Yaml::Real(s) => s.parse::<f64>().map_or(Value::Null, Value::from),
        Yaml::Integer(i) => Value::from(*i),
        Yaml::String(s) => Value::from(s.as_str()),
        Yaml::Boolean(b) => Value::from(*b),
        Yaml::Array(a) => Value::Array(a.iter().map(to_json).collect()),
        Yaml::Hash(h) => Value::Object(
            h.iter()
                .map(|(k, v)| {
                    let key = match k {
                        Yaml::String(s) => s.clone(),
                        other => format!("{other:?}"),
                    };
                    (key, to_json(v))
                })
                .collect(),
        ),
        Yaml::Alias(_) | Yaml::Null | Yaml::BadValue => Value::Null,
    }
}

fn parse_docs(text: &str) -> Vec<Value> {
    yaml_rust2::YamlLoader::load_from_str(text)
        .expect("rendered YAML parses")
        .iter()
        .map(to_json)
        .filter(|d| !d.is_null())
        .collect()
}

fn find<'a>(docs: &'a [Value], kind: &str, name: &str) -> Option<&'a Value> {
    docs.iter()
        .find(|d| d["kind"] == kind && d["metadata"]["name"] == name)
}

fn strs(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// Whether a selector (`matchLabels` or a Service's `selector`) picks pods with `labels`.
fn selects(selector: &Value, labels: &Value) -> bool {
    selector
        .as_object()
        .is_some_and(|s| !s.is_empty() && s.iter().all(|(k, v)| labels.get(k) == Some(v)))
}

/// The environment of `container`, as name → literal value; `valueFrom` entries are
/// resolved from `fields` (downward API stand-ins) and must not read Secrets.
fn env_of(container: &Value, fields: &BTreeMap<&str, &str>) -> Vec<(String, String)> {
    let mut env = Vec::new();
    for e in container["env"].as_array().into_iter().flatten() {
        let name = e["name"].as_str().expect("env name").to_owned();
        assert!(
            e["valueFrom"]["secretKeyRef"].is_null(),
            "{name}: secrets are mounted as files, never put in the environment"
        );
        let value = match e["valueFrom"]["fieldRef"]["fieldPath"].as_str() {
            Some(path) => fields
                .get(path)
                .unwrap_or_else(|| panic!("{name}: unexpected fieldRef {path}"))
                .to_string(),
            None => e["value"].as_str().unwrap_or_default().to_owned(),
        };
        env.push((name, value));
    }
    env
}

/// Replaces `$(VAR)` references as the kubelet does.
fn expand(s: &str, env: &[(String, String)]) -> String {
    let mut out = s.to_owned();
    for (k, v) in env {
        out = out.replace(&format!("$({k})"), v);
    }
    out
}

/// Everything a pod's ternd container would see, rebuilt under a temporary directory:
/// its mounted config and secret files, its arguments and environment.
struct Pod {
    args: Vec<String>,
    env: Vec<(String, String)>,
    config: Config,
}

/// Builds `container`'s view of its mounts under `dir` (the ConfigMap's `ternd.toml`,
/// made-up secret files, a self-signed certificate for a TLS secret) and parses its
/// configuration exactly as ternd would, from its arguments and `TERND_*` environment.
fn pod_view(
    docs: &[Value],
    pod: &Value,
    container: &Value,
    dir: &Path,
    fields: &BTreeMap<&str, &str>,
) -> Pod {
    let volumes = pod["volumes"].as_array().expect("volumes");
    let local = |p: &str| dir.join(p.trim_start_matches('/'));
    let mut secret_dirs = Vec::new();
    for m in container["volumeMounts"].as_array().expect("volumeMounts") {
        let name = m["name"].as_str().expect("mount name");
        let path = m["mountPath"].as_str().expect("mountPath");
        let v = volumes
            .iter()
            .find(|v| v["name"] == name)
            .unwrap_or_else(|| panic!("mount {name} has no volume"));
        if let Some(cm) = v["configMap"]["name"].as_str() {
            let cm = find(docs, "ConfigMap", cm)
                .unwrap_or_else(|| panic!("ConfigMap {cm} is not rendered"));
            let key = m["subPath"]
                .as_str()
                .expect("the config is mounted by subPath");
            let text = cm["data"][key].as_str().expect("ConfigMap key");
            std::fs::create_dir_all(local(path).parent().unwrap()).unwrap();
            std::fs::write(local(path), text).unwrap();
        } else if v["secret"].is_object() {
            assert_eq!(m["readOnly"], true, "secret mount {name} is read-only");
            // The kubelet writes secret files as root; only fsGroup lets the pod's
            // non-root user read a 0400 file (it becomes root:fsGroup 0440).
            assert_eq!(
                pod["securityContext"]["fsGroup"], pod["securityContext"]["runAsGroup"],
                "secret {name}: fsGroup makes the files readable by the pod's group"
            );
            let mode = v["secret"]["defaultMode"].as_i64();
            assert!(
                mode.is_some_and(|m| m & 0o077 == 0),
                "secret {name} is readable by its owner only: {mode:?}"
            );
            std::fs::create_dir_all(local(path)).unwrap();
            secret_dirs.push(path.to_owned());
            let items = strs(&Value::Array(
                v["secret"]["items"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|i| i["path"].clone())
                    .collect(),
            ));
            if items.is_empty() {
                // A kubernetes.io/tls Secret: tls.crt and tls.key.
                let (key, cert) = tls::self_signed(&local(path), "tls", "turn.example.com");
                std::fs::rename(cert, local(path).join("tls.crt")).unwrap();
                std::fs::rename(key, local(path).join("tls.key")).unwrap();
            }
            for item in items {
                let value = match item.as_str() {
                    "redis_url" => "redis://:password@redis.example.internal:6379/0",
                    "rest_secret" => "a-rest-secret-from-openssl-rand",
                    _ => "0123456789abcdef0123456789abcdef",
                };
                std::fs::write(local(path).join(item), format!("{value}\n")).unwrap();
            }
        } else if v["emptyDir"].is_object() {
            std::fs::create_dir_all(local(path)).unwrap();
        }
    }
    let env = env_of(container, fields);
    for (name, value) in &env {
        if name.starts_with("TERND_") {
            assert!(
                name.ends_with("_FILE")
                    || !["SECRET", "TOKEN", "PASSWORD", "REDIS_URL", "USER"]
                        .iter()
                        .any(|s| name.contains(s)),
                "{name}: a secret in the environment; use {name}_FILE"
            );
        }
        if name.ends_with("_FILE") {
            assert!(
                secret_dirs.iter().any(|d| value.starts_with(d.as_str())),
                "{name}={value} is not on a secret mount ({secret_dirs:?})"
            );
        }
    }
    // The container's command line, as the runtime builds it: `command` replaces the
    // image's ENTRYPOINT (read from the Dockerfile), `args` follow either.
    let mut args: Vec<String> = strs(&container["args"])
        .iter()
        .map(|a| expand(a, &env))
        .collect();
    let command = strs(&container["command"]);
    if command.is_empty() {
        let mut entrypoint = image_entrypoint();
        assert_eq!(entrypoint[0], "/usr/local/bin/ternd");
        entrypoint.remove(0);
        entrypoint.append(&mut args);
        args = entrypoint;
    } else if command == ["/usr/local/bin/ternd"] {
        // The binary, with the args alone.
    } else {
        // overlays/nat: bash -c 'exec ternd "$@" --external-ip "$(cat FILE)"' ternd ARGS
        assert_eq!(command[..2], ["/bin/bash", "-c"], "{command:?}");
        assert_eq!(command.len(), 4, "the script, then $0: {command:?}");
        assert!(
            command[2].contains("exec /usr/local/bin/ternd \"$@\""),
            "{command:?}"
        );
        let file = command[2]
            .split("$(cat ")
            .nth(1)
            .and_then(|s| s.split(')').next())
            .expect("the wrapper reads a file");
        std::fs::write(
            local(file),
            format!("198.51.100.7/{}", fields["status.hostIP"]),
        )
        .unwrap();
        let ip = std::fs::read_to_string(local(file)).unwrap();
        args.extend(["--external-ip".to_owned(), ip]);
    }
    let relocate = |s: &str| {
        if s.starts_with("/etc/ternd") || s.starts_with("/run/ternd") {
            local(s).to_string_lossy().into_owned()
        } else {
            s.to_owned()
        }
    };
    let args: Vec<String> = args.iter().map(|a| relocate(a)).collect();
    let env: Vec<(String, String)> = env
        .into_iter()
        .map(|(k, v)| {
            let v = relocate(&v);
            (k, v)
        })
        .collect();
    // The binary itself checks it, with exactly this environment.
    let out = Command::new(env!("CARGO_BIN_EXE_ternd"))
        .args(&args)
        .arg("--check-config")
        .env_clear()
        .envs(env.iter().map(|(k, v)| (k, v)))
        .output()
        .expect("run ternd --check-config");
    assert!(
        out.status.success(),
        "ternd --check-config {args:?} with {env:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // And the test reads the same configuration through the library, with the pod's
    // environment given as the flags it stands for (TERND_ADMIN_TOKEN_FILE=F is
    // --admin-token "$(cat F)"; TERND_SECRET_FILE is --secret-file itself).
    let mut argv = vec!["ternd".to_owned()];
    argv.extend(args.iter().cloned());
    for (name, value) in &env {
        let Some(var) = name.strip_prefix("TERND_") else {
            continue;
        };
        let flag = |v: &str| format!("--{}", v.to_lowercase().replace('_', "-"));
        match var.strip_suffix("_FILE") {
            Some(secret) if var != "SECRET_FILE" => {
                let text = std::fs::read_to_string(value).expect("secret file");
                argv.extend([flag(secret), text.trim().to_owned()]);
            }
            _ => argv.extend([flag(var), value.clone()]),
        }
    }
    let cli = <Cli as clap::Parser>::try_parse_from(&argv).expect("the arguments parse");
    let config = Config::load(&cli)
        .and_then(Config::load_files)
        .expect("the configuration loads");
    Pod { args, env, config }
}

/// The image's ENTRYPOINT, from the Dockerfile's exec form.
fn image_entrypoint() -> Vec<String> {
    let dockerfile = std::fs::read_to_string(root().join("Dockerfile")).expect("Dockerfile");
    let line = dockerfile
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix("ENTRYPOINT "))
        .expect("an ENTRYPOINT");
    let entrypoint: Vec<String> = serde_json::from_str(line).expect("ENTRYPOINT in exec form");
    entrypoint
}

fn container_port(container: &Value, port: &Value) -> u64 {
    if let Some(n) = port.as_u64() {
        return n;
    }
    let name = port.as_str().expect("port by number or name");
    container["ports"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|p| p["name"] == name)
        .and_then(|p| p["containerPort"].as_u64())
        .unwrap_or_else(|| panic!("no container port named {name}"))
}

fn probe(container: &Value, which: &str) -> (String, u64) {
    let p = &container[which]["httpGet"];
    assert!(p.is_object(), "{which} is an HTTP probe");
    (
        p["path"].as_str().expect("probe path").to_owned(),
        container_port(container, &p["port"]),
    )
}

/// The security context every container of the fleet runs with.
fn assert_locked_down(what: &str, pod: &Value, container: &Value) {
    let sc = &container["securityContext"];
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true, "{what}");
    assert!(
        pod["securityContext"]["runAsUser"]
            .as_u64()
            .is_some_and(|u| u > 0),
        "{what}: a non-root UID"
    );
    assert_eq!(sc["allowPrivilegeEscalation"], false, "{what}");
    assert_eq!(sc["readOnlyRootFilesystem"], true, "{what}");
    assert_eq!(strs(&sc["capabilities"]["drop"]), ["ALL"], "{what}");
    for cap in strs(&sc["capabilities"]["add"]) {
        assert_eq!(
            cap, "NET_BIND_SERVICE",
            "{what}: only NET_BIND_SERVICE is added"
        );
    }
    assert!(
        container["resources"]["requests"].is_object()
            && container["resources"]["limits"]["memory"].is_string(),
        "{what}: resource requests and a memory limit"
    );
    assert_ne!(sc["privileged"], true, "{what}");
    if let Some(class) = pod["priorityClassName"].as_str() {
        assert!(
            !class.starts_with("system-"),
            "{what}: the system classes are the cluster's own (and refused outside kube-system by some providers)"
        );
    }
}

/// The relay DaemonSet of one rendering, checked against the config it mounts.
fn check_relays(docs: &[Value], dir: &Path, overlay: &str) {
    let ds = find(docs, "DaemonSet", "ternd-relay").expect("the relay DaemonSet");
    let pod = &ds["spec"]["template"]["spec"];
    let labels = &ds["spec"]["template"]["metadata"]["labels"];
    assert!(selects(&ds["spec"]["selector"]["matchLabels"], labels));
    assert_eq!(
        pod["hostNetwork"], true,
        "{overlay}: relays use the node's network"
    );
    assert_eq!(pod["dnsPolicy"], "ClusterFirstWithHostNet", "{overlay}");
    assert!(
        pod["nodeSelector"].is_object(),
        "{overlay}: relay nodes are chosen"
    );
    let update = &ds["spec"]["updateStrategy"];
    assert_eq!(update["type"], "RollingUpdate");
    assert_eq!(
        update["rollingUpdate"]["maxUnavailable"], 1,
        "one node at a time"
    );
    assert_eq!(update["rollingUpdate"]["maxSurge"], 0);
    let c = &pod["containers"][0];
    assert_locked_down(&format!("{overlay} relay"), pod, c);
    for init in pod["initContainers"].as_array().into_iter().flatten() {
        assert_locked_down(&format!("{overlay} relay init"), pod, init);
    }
    let fields = BTreeMap::from([
        ("spec.nodeName", "relay-node-1"),
        ("status.hostIP", "127.0.0.1"),
    ]);
    let view = pod_view(docs, pod, c, &dir.join("relay"), &fields);
    let config = &view.config;
    assert!(!config.cluster.api_only);
    assert_eq!(
        config.cluster.node_id.as_deref(),
        Some("relay-node-1"),
        "node id from the node name"
    );
    assert!(config.cluster.redis_url.is_some(), "{overlay}: a cluster");
    // Drain: SIGKILL comes only after the whole drain.
    let grace = pod["terminationGracePeriodSeconds"]
        .as_u64()
        .expect("grace");
    assert!(
        grace >= config.drain_timeout.as_secs(),
        "{overlay}: terminationGracePeriodSeconds {grace} < drain_timeout {:?}",
        config.drain_timeout
    );
    // The probes reach the HTTP endpoint the config runs, at its real paths.
    let http = config.http.listen.expect("an HTTP endpoint");
    assert_eq!(
        http.ip().to_string(),
        "127.0.0.1",
        "on the node's InternalIP"
    );
    for (which, path) in [
        ("livenessProbe", "/healthz"),
        ("readinessProbe", "/readyz"),
        ("startupProbe", "/healthz"),
    ] {
        assert_eq!(
            probe(c, which),
            (path.to_owned(), u64::from(http.port())),
            "{overlay}: {which}"
        );
    }
    // Every listener is a declared container port of its protocol.
    let declared =
        |port: u16, proto: &str| {
            c["ports"].as_array().into_iter().flatten().any(|p| {
                p["containerPort"].as_u64() == Some(u64::from(port)) && p["protocol"] == proto
            })
        };
    for l in &config.listen {
        assert!(
            declared(l.port(), "UDP") && declared(l.port(), "TCP"),
            "{l}"
        );
    }
    for l in &config.tls_listen {
        assert!(declared(l.port(), "TCP"), "{l}");
    }
    // The HTTP endpoint is in no Service; the relays' NetworkPolicy admits it only from
    // named sources, and TURN (with the relay range) from anywhere.
    for svc in docs.iter().filter(|d| d["kind"] == "Service") {
        assert!(
            !selects(&svc["spec"]["selector"], labels),
            "{overlay}: Service {} exposes relay pods",
            svc["metadata"]["name"]
        );
    }
    let np = docs
        .iter()
        .find(|d| {
            d["kind"] == "NetworkPolicy"
                && selects(&d["spec"]["podSelector"]["matchLabels"], labels)
        })
        .expect("a NetworkPolicy for the relays");
    let rules = np["spec"]["ingress"].as_array().expect("ingress rules");
    let mut http_open = false;
    for rule in rules {
        let ports: Vec<u64> = rule["ports"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|p| p["port"].as_u64())
            .collect();
        if ports.contains(&u64::from(http.port())) {
            assert!(
                rule["from"].as_array().is_some_and(|f| !f.is_empty()),
                "{overlay}: the HTTP port is open to everyone"
            );
            http_open = true;
        } else {
            for l in config.listen.iter().chain(&config.tls_listen) {
                assert!(
                    ports.contains(&u64::from(l.port())),
                    "{overlay}: {l} not admitted"
                );
            }
            let range = rule["ports"].as_array().into_iter().flatten().any(|p| {
                p["port"].as_u64() == Some(u64::from(config.relay.ports.lo))
                    && p["endPort"].as_u64() == Some(u64::from(config.relay.ports.hi))
            });
            assert!(
                range,
                "{overlay}: the relay range {} is admitted",
                config.relay.ports
            );
        }
    }
    assert!(
        http_open,
        "{overlay}: Prometheus and the API pods reach the HTTP port"
    );
    // A PodDisruptionBudget keeps voluntary evictions to one relay at a time.
    let pdb = docs
        .iter()
        .find(|d| {
            d["kind"] == "PodDisruptionBudget"
                && selects(&d["spec"]["selector"]["matchLabels"], labels)
        })
        .expect("a PodDisruptionBudget for the relays");
    assert_eq!(pdb["spec"]["maxUnavailable"], 1);
    if overlay == "nat" {
        assert!(
            !config.relay.external_ips.is_empty(),
            "overlays/nat advertises the node's public address"
        );
    }
    let _ = view.args;
}

/// The API-only Deployment and its Service.
fn check_api(docs: &[Value], dir: &Path, overlay: &str) {
    let d = find(docs, "Deployment", "ternd-api").expect("the API Deployment");
    let pod = &d["spec"]["template"]["spec"];
    let labels = &d["spec"]["template"]["metadata"]["labels"];
    assert_ne!(pod["hostNetwork"], true);
    let c = &pod["containers"][0];
    assert_locked_down(&format!("{overlay} api"), pod, c);
    let fields = BTreeMap::from([("metadata.name", "ternd-api-0")]);
    let view = pod_view(docs, pod, c, &dir.join("api"), &fields);
    let config = &view.config;
    assert!(config.cluster.api_only, "{overlay}: API-only pods");
    assert!(config.cluster.redis_url.is_some());
    assert!(
        !config.http.token_hs256_secrets.is_empty() && !config.auth.secrets.is_empty(),
        "{overlay}: the API pods verify tokens and mint credentials"
    );
    assert!(config.http.admin_token.is_some(), "the admin API is on");
    let http = config.http.listen.expect("HTTP");
    assert_eq!(
        probe(c, "readinessProbe"),
        ("/readyz".to_owned(), u64::from(http.port()))
    );
    assert_eq!(
        probe(c, "livenessProbe"),
        ("/healthz".to_owned(), u64::from(http.port()))
    );
    let svc = docs
        .iter()
        .find(|s| s["kind"] == "Service" && selects(&s["spec"]["selector"], labels))
        .expect("a Service for the API pods");
    let target = &svc["spec"]["ports"][0]["targetPort"];
    assert_eq!(container_port(c, target), u64::from(http.port()));
    let _ = view.env;
}

#[test]
fn kubernetes_manifests_render_validate_and_match_the_binary() {
    let test = "kubernetes_manifests_render_validate_and_match_the_binary";
    let kubectl = have(
        test,
        "kubectl",
        &["kustomize", "--help"],
        "kubectl 1.27 or later, with kustomize v5",
    );
    let validate = have(
        test,
        "kubernetes-validate",
        &["--version"],
        "pip install kubernetes-validate",
    );
    let yamllint = have(test, "yamllint", &["--version"], "pip install yamllint");
    let deploy = root().join("deploy");
    if yamllint {
        let out = Command::new("yamllint")
            .args(["--strict", "-c"])
            .arg(deploy.join(".yamllint"))
            .arg(deploy.join("kubernetes"))
            .output()
            .expect("yamllint");
        assert!(
            out.status.success(),
            "yamllint: {}",
            String::from_utf8_lossy(&out.stdout)
        );
    }
    if !kubectl {
        return;
    }
    let tmp = tls::TempDir::new("deploy");
    let mut seen = Vec::new();
    for dir in kustomizations() {
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        let rendered = render(&dir);
        let docs = parse_docs(&rendered);
        assert!(docs.len() >= 10, "{name}: {} objects", docs.len());
        if validate {
            let file = tmp.0.join(format!("{name}.yaml"));
            std::fs::write(&file, &rendered).unwrap();
            let out = Command::new("kubernetes-validate")
                .args(["--strict", "--quiet", "-k", KUBERNETES])
                .arg(&file)
                .output()
                .expect("kubernetes-validate");
            let text = String::from_utf8_lossy(&out.stdout).into_owned()
                + &String::from_utf8_lossy(&out.stderr);
            assert!(out.status.success(), "{name}: {text}");
            // Only the Prometheus Operator's kinds have no bundled schema.
            for line in text.lines().filter(|l| !l.trim().is_empty()) {
                assert!(
                    line.contains("Couldn't find schema for kind PodMonitor")
                        || line.contains("Couldn't find schema for kind ServiceMonitor"),
                    "{name}: {line}"
                );
            }
        }
        // No Secret is shipped: its values come from the operator.
        assert!(
            docs.iter().all(|d| d["kind"] != "Secret"),
            "{name} ships a Secret"
        );
        let work = tmp.0.join(&name);
        check_relays(&docs, &work, &name);
        check_api(&docs, &work, &name);
        let redis = find(&docs, "StatefulSet", "ternd-redis");
        match name.as_str() {
            "production" => {
                assert!(redis.is_none(), "production uses the operator's Redis");
                assert!(rendered.contains("TERND_CLUSTER_REDIS_URL_FILE"));
            }
            _ => {
                let redis = redis.expect("the base's Redis");
                let pod = &redis["spec"]["template"]["spec"];
                assert_locked_down("redis", pod, &pod["containers"][0]);
            }
        }
        if name == "monitoring" {
            let pm = find(&docs, "PodMonitor", "ternd-relay").expect("PodMonitor");
            let ds = find(&docs, "DaemonSet", "ternd-relay").unwrap();
            assert!(selects(
                &pm["spec"]["selector"]["matchLabels"],
                &ds["spec"]["template"]["metadata"]["labels"]
            ));
            let port = &pm["spec"]["podMetricsEndpoints"][0]["port"];
            container_port(&ds["spec"]["template"]["spec"]["containers"][0], port);
            assert!(find(&docs, "ServiceMonitor", "ternd-api").is_some());
        }
        seen.push(name);
    }
    eprintln!("rendered, validated (Kubernetes {KUBERNETES}) and checked: {seen:?}");
}

/// A `kubernetes-validate --strict` that passes everything would make the test above
/// worthless: it must refuse a misspelt field.
#[test]
fn the_strict_validator_refuses_an_unknown_field() {
    let test = "the_strict_validator_refuses_an_unknown_field";
    if !have(
        test,
        "kubernetes-validate",
        &["--version"],
        "pip install kubernetes-validate",
    ) {
        return;
    }
    let tmp = tls::TempDir::new("deploy-bad");
    let file = tmp.0.join("bad.yaml");
    std::fs::write(
        &file,
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: x\nspec:\n  selektor: {}\n  ports:\n  - port: 80\n",
    )
    .unwrap();
    let out = Command::new("kubernetes-validate")
        .args(["--strict", "--quiet", "-k", KUBERNETES])
        .arg(&file)
        .output()
        .expect("kubernetes-validate");
    assert!(
        !out.status.success(),
        "an unknown field passed strict validation"
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("selektor"));
}

/// overlays/nat's init container script, run with a stand-in `kubectl` that answers as
/// the API would for a node with and without the annotation and the ExternalIP (the real
/// API is not here: this checks the script's own logic, and the file the relay's
/// wrapper reads).
#[test]
fn the_nat_init_script_prefers_the_annotation_then_the_external_ip() {
    let test = "the_nat_init_script_prefers_the_annotation_then_the_external_ip";
    if !have(
        test,
        "kubectl",
        &["kustomize", "--help"],
        "kubectl 1.27 or later",
    ) {
        return;
    }
    let docs = parse_docs(&render(&root().join("deploy/kubernetes/overlays/nat")));
    let ds = find(&docs, "DaemonSet", "ternd-relay").expect("DaemonSet");
    let init = &ds["spec"]["template"]["spec"]["initContainers"][0];
    let command = strs(&init["command"]);
    assert_eq!(command[..2], ["/bin/sh", "-ec"]);
    let tmp = tls::TempDir::new("nat-init");
    let run_dir = tmp.0.join("run");
    let script = command[2].replace("/run/ternd", run_dir.to_str().unwrap());
    let bin = tmp.0.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let fake = bin.join("kubectl");
    // Answers from $ANNOTATION and $EXTERNAL for the two jsonpath queries, and records
    // what it was asked.
    std::fs::write(
        &fake,
        format!(
            "#!/bin/sh\necho \"$*\" >> {log}\ncase \"$*\" in\n  *annotations*) printf '%s' \"$ANNOTATION\" ;;\n  *ExternalIP*) printf '%s' \"$EXTERNAL\" ;;\n  *) exit 3 ;;\nesac\n",
            log = tmp.0.join("asked").display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
    let run = |annotation: &str, external: &str| {
        let _ = std::fs::remove_dir_all(&run_dir);
        std::fs::create_dir_all(&run_dir).unwrap();
        let out = Command::new("/bin/sh")
            .args(["-ec", &script])
            .env("PATH", format!("{}:/usr/bin:/bin", bin.display()))
            .env("NODE_NAME", "relay-node-1")
            .env("HOST_IP", "10.1.2.3")
            .env("ANNOTATION", annotation)
            .env("EXTERNAL", external)
            .output()
            .expect("run the init script");
        let file = std::fs::read_to_string(run_dir.join("external-ip")).ok();
        (
            out.status.success(),
            file,
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    assert_eq!(
        run("203.0.113.7", "198.51.100.9").1.as_deref(),
        Some("203.0.113.7/10.1.2.3"),
        "the annotation wins"
    );
    assert_eq!(
        run("", "198.51.100.9 2001:db8::9").1.as_deref(),
        Some("198.51.100.9/10.1.2.3"),
        "else the first ExternalIP"
    );
    let (ok, file, stderr) = run("", "");
    assert!(
        !ok && file.is_none(),
        "no address: the relay does not start"
    );
    assert!(
        stderr.contains("no ternd.dev/external-ip annotation and no ExternalIP"),
        "{stderr}"
    );
    let asked = std::fs::read_to_string(tmp.0.join("asked")).unwrap();
    assert!(
        asked
            .lines()
            .all(|l| l.starts_with("--cache-dir=") && l.contains("get node relay-node-1")),
        "{asked}"
    );
    // What the file holds is what --external-ip takes.
    let out = Command::new(env!("CARGO_BIN_EXE_ternd"))
        .args([
            "--external-ip",
            "203.0.113.7/10.1.2.3",
            "--secret",
            "x-secret",
            "--check-config",
        ])
        .env_clear()
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
