//! `velvet loadtest` against a node this test starts: a small launch runs
//! to its end and its report adds up. Counts only: a test never asserts
//! on time.

mod common;

use std::process::{Command, Output};

use common::{ADMIN_KEY, Backend, MERCHANT_KEY, TestNode};
use serde_json::Value;

fn loadtest(args: Vec<String>) -> Output {
    Command::new(env!("CARGO_BIN_EXE_velvet"))
        .arg("loadtest")
        .args(args)
        .output()
        .expect("the velvet binary runs")
}

fn n(report: &Value, pointer: &str) -> u64 {
    report
        .pointer(pointer)
        .and_then(Value::as_u64)
        .unwrap_or_else(|| panic!("{pointer} in {report:#}"))
}

fn sum(report: &Value, pointer: &str) -> u64 {
    let Some(map) = report.pointer(pointer).and_then(Value::as_object) else {
        return 0;
    };
    map.values().filter_map(Value::as_u64).sum()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_small_launch_runs_to_the_end_and_its_report_adds_up() {
    let node = TestNode::start(Backend::Memory).await;
    let json =
        std::env::temp_dir().join(format!("velvet-lt-{}.json", uuid::Uuid::new_v4()));
    let args: Vec<String> = [
        "--target",
        &format!("http://{}", node.addr),
        "--admin-key",
        ADMIN_KEY,
        "--merchant-key",
        MERCHANT_KEY,
        "--consumers",
        "200",
        "--duration",
        "3",
        "--hold",
        "3",
        "--admit-per-minute",
        "3000",
        "--batch-gap-ms",
        "30",
        "--server-pid",
        &std::process::id().to_string(),
        "--json",
        json.to_str().expect("utf-8 temp path"),
        "--quiet",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();

    // The node serves from this test's runtime while the tool runs.
    let out = tokio::task::spawn_blocking(move || loadtest(args))
        .await
        .expect("join");

    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(stdout.contains("enters/s"), "a table on stdout:\n{stdout}");
    let r: Value = serde_json::from_slice(&std::fs::read(&json).expect("--json file"))
        .expect("the report is JSON");
    let _ = std::fs::remove_file(&json);

    // Everyone planned arrived and finished; each step accounts for all.
    let arrived = n(&r, "/consumers/arrived");
    assert_eq!((n(&r, "/consumers/planned"), arrived), (200, 200));
    assert_eq!(n(&r, "/consumers/unfinished"), 0);
    let (sessions, entered) = (n(&r, "/consumers/sessions"), n(&r, "/consumers/entered"));
    assert_eq!(sessions + sum(&r, "/errors/byStep/session"), arrived);
    assert_eq!(entered + sum(&r, "/errors/byStep/enter"), sessions);
    assert_eq!(n(&r, "/enter/ok"), entered);
    let phases = r["phases"].as_array().expect("phases");
    let by_phase = |field: &str| phases.iter().map(|p| p[field].as_u64().unwrap()).sum();
    assert_eq!(
        (by_phase("arrived"), by_phase("entered")),
        (arrived, entered)
    );

    // Errors: one per failed consumer, counted by code and by step.
    let failed = n(&r, "/consumers/failed");
    assert_eq!(n(&r, "/errors/total"), failed);
    assert_eq!(sum(&r, "/errors/byCode"), failed);
    // On a quiet node with generous limits, nobody fails.
    assert_eq!(failed, 0, "{:#}", r["errors"]);

    // Sockets: each consumer was admitted or still waiting at the end.
    let (sockets, granted) = (n(&r, "/consumers/sockets"), n(&r, "/consumers/granted"));
    assert_eq!(sockets, entered);
    assert_eq!(granted + n(&r, "/consumers/stillWaiting"), sockets);
    assert_eq!(n(&r, "/grants/received"), granted);
    assert_eq!(
        n(&r, "/grants/pushed") + n(&r, "/grants/onConnect"),
        granted
    );
    assert!(granted > 0, "3000 a minute over seconds admits someone");

    // Every grant was redeemed once, and every request is counted.
    assert_eq!(
        (n(&r, "/redeem/attempted"), n(&r, "/redeem/ok")),
        (granted, granted)
    );
    let requests = arrived + sessions + entered + granted;
    assert_eq!(n(&r, "/errors/requests"), requests);
    assert!(n(&r, "/memory/socketsAtPeak") > 0, "{:#}", r["memory"]);
}

#[test]
fn a_target_beyond_loopback_is_refused_without_the_flag() {
    // A documentation address: refused before any connection is tried.
    let args = [
        "--target",
        "http://192.0.2.1:8080",
        "--queue",
        "q",
        "--quiet",
    ];
    let out = loadtest(args.iter().map(|s| s.to_string()).collect());

    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--allow-remote"), "{stderr}");
}

#[test]
fn a_run_past_the_hard_caps_is_refused() {
    let args = ["--queue", "q", "--consumers", "1000000", "--quiet"];
    let out = loadtest(args.iter().map(|s| s.to_string()).collect());

    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("at most"), "{stderr}");
}
