use super::super::{full_script, state, State};
use super::delta_script;
use serde_json::{json, Value};

fn svc(name: &str, ip: &str, extra: Value) -> Value {
    let mut s = json!({"metadata": {"namespace": "default", "name": name},
        "spec": {"clusterIP": ip, "ports": [{"name": "p", "port": 80, "protocol": "TCP"}]}});
    if let Value::Object(m) = extra {
        for (k, v) in m {
            s["spec"][k] = v;
        }
    }
    s
}

fn slice(name: &str, port: u16, ips: &[&str]) -> Value {
    json!({"metadata": {"namespace": "default", "name": format!("{name}-1"),
            "labels": {"kubernetes.io/service-name": name}},
        "addressType": "IPv4",
        "ports": [{"name": "p", "port": port, "protocol": "TCP"}],
        "endpoints": ips.iter().map(|i| json!({"addresses": [i], "conditions": {"ready": true}})).collect::<Vec<_>>()})
}

fn st(services: &[Value], slices: &[Value]) -> State {
    state("n1", &["192.0.2.2".into()], services, slices)
}

fn a() -> Value {
    svc("a", "10.43.0.10", json!({}))
}

fn b() -> Value {
    svc("b", "10.43.0.11", json!({}))
}

/// (what, old, new, the exact delta).
fn cases() -> Vec<(&'static str, State, State, &'static str)> {
    let base = st(
        &[a(), b()],
        &[
            slice("a", 8080, &["10.42.0.5"]),
            slice("b", 8080, &["10.42.0.6"]),
        ],
    );
    let mut np = b();
    np["spec"]["type"] = json!("NodePort");
    np["spec"]["ports"][0]["nodePort"] = json!(30080);
    let aff = svc(
        "a",
        "10.43.0.10",
        json!({"sessionAffinity": "ClientIP",
        "sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 60}}}),
    );
    vec![
        ("nothing changed", base.clone(), base.clone(), ""),
        (
            "one service's endpoint swapped: only its chains change",
            base.clone(),
            st(&[a(), b()], &[slice("a", 8080, &["10.42.0.7"]), slice("b", 8080, &["10.42.0.6"])]),
            "flush chain ip T svc-default/a/tcp/p
add rule ip T svc-default/a/tcp/p meta l4proto tcp dnat to 10.42.0.7:8080
delete element ip T hairpin { 10.42.0.5 . 10.42.0.5 }
add element ip T hairpin { 10.42.0.7 . 10.42.0.7 }
",
        ),
        (
            "a service added",
            st(&[a()], &[slice("a", 8080, &["10.42.0.5"])]),
            base.clone(),
            "add chain ip T svc-default/b/tcp/p
add rule ip T svc-default/b/tcp/p meta l4proto tcp dnat to 10.42.0.6:8080
add element ip T hairpin { 10.42.0.6 . 10.42.0.6 }
add element ip T service-ips { 10.43.0.11 . tcp . 80 : goto svc-default/b/tcp/p }
",
        ),
        (
            "a service deleted",
            base.clone(),
            st(&[a()], &[slice("a", 8080, &["10.42.0.5"])]),
            "delete element ip T hairpin { 10.42.0.6 . 10.42.0.6 }
delete element ip T service-ips { 10.43.0.11 . tcp . 80 }
flush chain ip T svc-default/b/tcp/p
delete chain ip T svc-default/b/tcp/p
",
        ),
        (
            "the last endpoint gone: the key moves to the reject map",
            base.clone(),
            st(&[a(), b()], &[slice("a", 8080, &["10.42.0.5"])]),
            "delete element ip T hairpin { 10.42.0.6 . 10.42.0.6 }
delete element ip T service-ips { 10.43.0.11 . tcp . 80 }
add element ip T no-endpoint-services { 10.43.0.11 . tcp . 80 : goto reject-chain }
flush chain ip T svc-default/b/tcp/p
delete chain ip T svc-default/b/tcp/p
",
        ),
        (
            "ClusterIP → NodePort, and a node address added",
            base.clone(),
            state("n1", &["192.0.2.2".into(), "192.0.2.3".into()], &[a(), np],
                  &[slice("a", 8080, &["10.42.0.5"]), slice("b", 8080, &["10.42.0.6"])]),
            "add chain ip T ext-default/b/tcp/p
add rule ip T ext-default/b/tcp/p jump mark-for-masquerade
add rule ip T ext-default/b/tcp/p goto svc-default/b/tcp/p
add element ip T nodeport-ips { 192.0.2.3 }
add element ip T service-nodeports { tcp . 30080 : goto ext-default/b/tcp/p }
",
        ),
        (
            "affinity turned on: its sets first, off: its sets last",
            base.clone(),
            st(&[aff.clone(), b()], &[slice("a", 8080, &["10.42.0.5"]), slice("b", 8080, &["10.42.0.6"])]),
            "add set ip T aff-default/a/tcp/p/10.42.0.5/8080 { type ipv4_addr; flags dynamic,timeout; timeout 60s; }
add chain ip T ep-default/a/tcp/p/10.42.0.5/8080
flush chain ip T svc-default/a/tcp/p
add rule ip T svc-default/a/tcp/p ip saddr @aff-default/a/tcp/p/10.42.0.5/8080 goto ep-default/a/tcp/p/10.42.0.5/8080
add rule ip T svc-default/a/tcp/p numgen random mod 1 vmap { 0 : goto ep-default/a/tcp/p/10.42.0.5/8080 }
add rule ip T ep-default/a/tcp/p/10.42.0.5/8080 update @aff-default/a/tcp/p/10.42.0.5/8080 { ip saddr }
add rule ip T ep-default/a/tcp/p/10.42.0.5/8080 meta l4proto tcp dnat to 10.42.0.5:8080
",
        ),
        (
            "affinity turned off",
            st(&[aff, b()], &[slice("a", 8080, &["10.42.0.5"]), slice("b", 8080, &["10.42.0.6"])]),
            base,
            "flush chain ip T svc-default/a/tcp/p
add rule ip T svc-default/a/tcp/p meta l4proto tcp dnat to 10.42.0.5:8080
flush chain ip T ep-default/a/tcp/p/10.42.0.5/8080
delete chain ip T ep-default/a/tcp/p/10.42.0.5/8080
delete set ip T aff-default/a/tcp/p/10.42.0.5/8080
",
        ),
    ]
}

#[test]
fn delta_scripts_exactly() {
    for (what, old, new, want) in cases() {
        assert_eq!(
            delta_script("T", &old, &new).as_deref(),
            Some(want),
            "{what}"
        );
    }
}

#[test]
fn an_affinity_timeout_change_asks_for_a_rebuild() {
    let aff = |t: u64| {
        svc(
            "a",
            "10.43.0.10",
            json!({"sessionAffinity": "ClientIP",
            "sessionAffinityConfig": {"clientIP": {"timeoutSeconds": t}}}),
        )
    };
    let sl = [slice("a", 8080, &["10.42.0.5"])];
    assert_eq!(
        delta_script("T", &st(&[aff(60)], &sl), &st(&[aff(90)], &sl)),
        None
    );
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status").is_ok_and(|s| {
        s.lines()
            .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"))
    })
}

fn nft(args: &[&str], stdin: &str) -> Result<String, String> {
    use std::io::Write as _;
    let mut child = std::process::Command::new("nft")
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| e.to_string())?;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// Against the kernel: the full script of `old`, then the delta, leaves the table exactly as
/// the full script of `new` makes it (compared as `nft list table`, blocks sorted).
#[test]
fn deltas_applied_to_the_kernel_equal_a_rebuild() {
    let have_nft = std::process::Command::new("nft")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !is_root() || !have_nft {
        eprintln!("NOTICE: the kernel check needs root and nft; skipped");
        return;
    }
    let (t1, t2) = ("capstan-delta-a", "capstan-delta-b");
    // Chains and sets as blocks, sorted: a chain added later is listed later.
    let listed = |t: &str| {
        let text = nft(&["list", "table", "ip", t], "")
            .unwrap()
            .replace(t, "T");
        let body = text.trim_end().strip_suffix('}').unwrap_or(&text);
        let mut blocks: Vec<String> = body.split("\n\n").map(|b| b.trim().to_string()).collect();
        blocks.sort();
        blocks.join("\n\n")
    };
    let mut failure = None;
    for (what, old, new, _) in cases() {
        let r = (|| -> Result<(), String> {
            nft(&["-f", "-"], &full_script(t1, "n1", &old))?;
            let delta = delta_script(t1, &old, &new).expect("a delta");
            nft(&["-c", "-f", "-"], &delta).map_err(|e| format!("nft -c: {e}\n{delta}"))?;
            nft(&["-f", "-"], &delta).map_err(|e| format!("{e}\n{delta}"))?;
            nft(&["-f", "-"], &full_script(t2, "n1", &new))?;
            let (got, want) = (listed(t1), listed(t2));
            if got != want {
                return Err(format!("after the delta:\n{got}\nrebuilt:\n{want}"));
            }
            Ok(())
        })();
        if let Err(e) = r {
            failure = Some(format!("{what}: {e}"));
            break;
        }
    }
    for t in [t1, t2] {
        let _ = nft(&["delete", "table", "ip", t], "");
    }
    if let Some(f) = failure {
        panic!("{f}");
    }
}

/// `cargo test --release -p capstan-agent -- --ignored --nocapture state_and_delta_at_10k`:
/// what one pass costs at 10,000 services (state, delta, full script).
#[test]
#[ignore]
fn state_and_delta_at_10k() {
    let n = 10_000;
    let svcs: Vec<Value> = (0..n)
        .map(|i| {
            svc(
                &format!("np-{i}"),
                &format!("10.200.{}.{}", i / 250, i % 250 + 1),
                json!({}),
            )
        })
        .collect();
    let mut sls: Vec<Value> = (0..n)
        .map(|i| slice(&format!("np-{i}"), 1000, &["192.0.2.2"]))
        .collect();
    let t = std::time::Instant::now();
    let old = st(&svcs, &sls);
    let t_state = t.elapsed();
    sls[77] = slice("np-77", 2000, &["192.0.2.2"]);
    let new = st(&svcs, &sls);
    let t = std::time::Instant::now();
    let d = delta_script("T", &old, &new).unwrap();
    let t_delta = t.elapsed();
    // The agent's path: the memo, one slice changed since its last pass.
    let arcs = |v: &[Value]| -> Vec<std::sync::Arc<Value>> {
        v.iter().cloned().map(std::sync::Arc::new).collect()
    };
    let (asvcs, mut asls) = (arcs(&svcs), arcs(&sls));
    let mut memo = crate::proxy::rules::memo::Memo::default();
    let ips = ["192.0.2.2".to_string()];
    let m_old = memo.state("n1", &ips, &asvcs, &asls);
    asls[78] = std::sync::Arc::new(slice("np-78", 2000, &["192.0.2.2"]));
    let t = std::time::Instant::now();
    let m_new = memo.state("n1", &ips, &asvcs, &asls);
    let t_memo = t.elapsed();
    let t = std::time::Instant::now();
    let md = delta_script("T", &m_old, &m_new).unwrap();
    let t_mdelta = t.elapsed();
    eprintln!(
        "memo: state {t_memo:?}, delta {t_mdelta:?} ({} bytes)",
        md.len()
    );
    let t = std::time::Instant::now();
    let full = full_script("T", "n1", &new);
    let t_full = t.elapsed();
    eprintln!(
        "state {t_state:?}, delta {t_delta:?} ({} bytes), full script {t_full:?} ({} bytes)",
        d.len(),
        full.len()
    );
}
