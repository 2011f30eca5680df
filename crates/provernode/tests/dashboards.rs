//! The monitoring files in deploy/: the Grafana dashboard and the alert
//! rules only query metrics provernode exports (the catalogue in
//! provernode-node's telemetry), and Prometheus's own checker accepts the
//! scrape config and the rules. The scrape itself, by a real Prometheus, is
//! in tests/cluster.rs.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers panic by design

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use provernode_node::telemetry::{Kind, CATALOGUE};

fn deploy(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../deploy")
        .join(path)
}

/// The metric names a PromQL text uses, with a histogram's series suffixes
/// taken back to the family name.
fn metric_names(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let bytes = text.as_bytes();
    let mut i = 0;
    while let Some(at) = text[i..].find("provernode_") {
        let start = i + at;
        let before_ok = start == 0 || !(bytes[start - 1].is_ascii_alphanumeric() || bytes[start - 1] == b'_');
        let end = text[start..]
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .map_or(text.len(), |e| start + e);
        if before_ok {
            let name = &text[start..end];
            let family = ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|s| {
                    name.strip_suffix(s)
                        .filter(|f| CATALOGUE.iter().any(|(n, k, _)| n == f && *k == Kind::Histogram))
                })
                .unwrap_or(name);
            names.insert(family.to_owned());
        }
        i = end;
    }
    names
}

fn exported() -> BTreeSet<String> {
    CATALOGUE.iter().map(|(n, _, _)| (*n).to_owned()).collect()
}

#[test]
fn the_dashboard_queries_only_exported_metrics() {
    let text = std::fs::read_to_string(deploy("grafana/provernode.json")).unwrap();
    let dashboard: serde_json::Value = serde_json::from_str(&text).unwrap();
    let mut queried = BTreeSet::new();
    let mut panels = 0;
    for panel in dashboard["panels"].as_array().unwrap() {
        panels += 1;
        let targets = panel["targets"].as_array().unwrap();
        assert!(!targets.is_empty(), "panel {} has no query", panel["title"]);
        for t in targets {
            let expr = t["expr"].as_str().unwrap();
            let names = metric_names(expr);
            assert!(
                !names.is_empty() || expr.starts_with("up"),
                "panel {}: {expr} queries no provernode metric",
                panel["title"]
            );
            queried.extend(names);
        }
    }
    assert!(panels >= 10, "{panels} panels");
    let exported = exported();
    let unknown: Vec<_> = queried.difference(&exported).collect();
    assert!(
        unknown.is_empty(),
        "the dashboard queries metrics provernode does not export: {unknown:?}"
    );
    // The histograms the issue names are on the dashboard.
    for h in [
        "provernode_queue_wait_seconds",
        "provernode_attempt_duration_seconds",
        "provernode_prove_seconds",
        "provernode_verify_seconds",
    ] {
        assert!(queried.contains(h), "{h} is not on the dashboard");
    }
}

#[test]
fn the_alert_rules_query_only_exported_metrics() {
    let text = std::fs::read_to_string(deploy("prometheus/alerts.yml")).unwrap();
    let exprs: Vec<&str> = text
        .lines()
        .filter_map(|l| l.trim().strip_prefix("expr:"))
        .collect();
    assert!(exprs.len() >= 6, "{exprs:?}");
    let queried: BTreeSet<String> = exprs.iter().flat_map(|e| metric_names(e)).collect();
    let exported = exported();
    let unknown: Vec<_> = queried.difference(&exported).collect();
    assert!(
        unknown.is_empty(),
        "the alerts query metrics provernode does not export: {unknown:?}"
    );
}

#[test]
fn the_name_scanner_finds_families() {
    let names = metric_names(
        "histogram_quantile(0.9, rate(provernode_prove_seconds_bucket[5m])) + provernode_tasks_submitted_total + xprovernode_no",
    );
    assert_eq!(
        names.into_iter().collect::<Vec<_>>(),
        ["provernode_prove_seconds", "provernode_tasks_submitted_total"]
    );
}

/// Debian's `prometheus` package brings `promtool`; `.ci/run` installs it.
fn promtool() -> Command {
    let found = Command::new("promtool").arg("--version").output();
    match found {
        Ok(out) if out.status.success() => Command::new("promtool"),
        _ => panic!(
            "promtool is missing: install Debian's prometheus package (`apt-get install --no-install-recommends prometheus`; .ci/run does)"
        ),
    }
}

#[test]
fn promtool_accepts_the_scrape_config_and_the_alert_rules() {
    // --syntax-only: the config names token files that exist only where it is deployed.
    let out = promtool()
        .args(["check", "config", "--syntax-only"])
        .arg(deploy("prometheus/prometheus.yml"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let out = promtool()
        .args(["check", "rules"])
        .arg(deploy("prometheus/alerts.yml"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("SUCCESS"), "{text}");
}
