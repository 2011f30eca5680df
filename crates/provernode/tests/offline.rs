//! Issue 24: nothing is fetched at run time. A node runs inside a network
//! namespace whose only interface is loopback (`unshare -n`), and proves
//! and verifies a program on every backend built into this binary: any code
//! path that downloaded something (parameters, keys, circuits, images)
//! would fail here. Run with `--features risc0,sp1` it covers the real
//! backends (CI's heavy step does).

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers panic by design

use std::process::Command;

fn need(tool: &str, package: &str) {
    let found = Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {tool}"))
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    assert!(
        found,
        "this test needs `{tool}`: install Debian's {package} package (.ci/run does)"
    );
}

#[test]
fn a_node_without_a_network_proves_on_every_built_backend() {
    need("unshare", "util-linux");
    need("ip", "iproute2");
    let probe = Command::new("unshare").args(["-n", "true"]).output().unwrap();
    assert!(
        probe.status.success(),
        "`unshare -n` failed ({}): this test needs root or CAP_SYS_ADMIN to make a network namespace",
        String::from_utf8_lossy(&probe.stderr).trim()
    );
    let backends: Vec<String> = provernode_backends::Registry::default()
        .available()
        .map(|b| b.name().to_owned())
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let exe = env!("CARGO_BIN_EXE_provernode");
    // One script in the namespace: the node, then a proof per backend, each
    // verified by the binary from nothing but the file.
    let mut script = format!(
        "set -eu\n\
         ip link set lo up\n\
         if ip -o link | grep -v ': lo:' | grep -q .; then echo 'an interface besides lo' >&2; exit 3; fi\n\
         if getent hosts deb.debian.org >/dev/null 2>&1; then echo 'names resolve' >&2; exit 3; fi\n\
         {exe} doctor run --data-dir {dir}/data --memory-budget-mib 20480 > {dir}/doctor.txt 2>&1 || true\n\
         {exe} run --data-dir {dir}/data --listen 127.0.0.1:17979 --sqlite-synchronous normal --memory-budget-mib 20480 2> {dir}/node.log &\n\
         node=$!\n\
         trap 'kill $node 2>/dev/null || true' EXIT\n\
         tries=0\n\
         until {exe} tasks --node http://127.0.0.1:17979 >/dev/null 2>&1; do\n\
           tries=$((tries + 1)); [ $tries -lt 600 ] || {{ echo 'the node did not start' >&2; exit 4; }}; sleep 0.1\n\
         done\n",
        dir = dir.path().display()
    );
    for backend in &backends {
        script.push_str(&format!(
            "{exe} submit fibonacci --n 10 --backend {backend} --wait --wait-timeout-secs 3000 \
             --node http://127.0.0.1:17979 -o {dir}/{backend}.proof > /dev/null\n\
             {exe} verify {dir}/{backend}.proof\n\
             echo proved-offline {backend}\n",
            dir = dir.path().display()
        ));
    }
    let out = Command::new("unshare")
        .args(["-n", "sh", "-c", &script])
        .env_remove("PROVERNODE_CONFIG")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let node_log = std::fs::read_to_string(dir.path().join("node.log")).unwrap_or_default();
    assert!(
        out.status.success(),
        "offline run failed: {}\nstdout:\n{stdout}\nstderr:\n{}\nnode log:\n{node_log}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    for backend in &backends {
        assert!(
            stdout.contains(&format!("proved-offline {backend}")),
            "{backend} did not prove offline:\n{stdout}"
        );
    }
    // SP1's worker kept the keys it set up in the artifact store, for the
    // next worker to load instead.
    if backends.iter().any(|b| b == "sp1") {
        assert!(
            node_log.contains("saved as artifact keys/sp1/"),
            "the SP1 worker saved no keys:\n{node_log}"
        );
        // 20 GiB shared by the node's 2 slots is below the 32 GiB an attempt
        // at which SP1's own pool sizes fit, so its workers got them at 1.
        assert!(
            node_log.contains("SP1_WORKER_NUM_CORE_WORKERS=1"),
            "the SP1 workers did not get SP1's pools at 1 on a 20 GiB budget:\n{node_log}"
        );
        let doctor = std::fs::read_to_string(dir.path().join("doctor.txt")).unwrap_or_default();
        assert!(
            doctor.contains("SP1_WORKER_NUM_CORE_WORKERS=1"),
            "`doctor run` does not say the SP1 workers get SP1's pools at 1:\n{doctor}"
        );
    }
}
