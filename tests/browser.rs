//! The consumer side in a real browser: starts a node, then runs the
//! `node:test` files of `tests/browser/` against it, in headless Chromium
//! (Debian's `chromium`) driven by `playwright-core`.
//!
//! `tests/run.sh` installs Chromium, Node.js and the suite's npm packages.
//! When one is missing this test fails and names it: a browser suite that
//! skips itself quietly would pass CI having tested nothing.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus};
use std::time::{Duration, Instant};

use common::{ADMIN_KEY, Backend, MERCHANT_KEY, TestNode};

/// Longer than the whole suite takes on a 2-core machine, several times over.
const SUITE_LIMIT: Duration = Duration::from_secs(600);

fn suite_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser")
}

fn chromium() -> PathBuf {
    std::env::var_os("VELVET_CHROMIUM")
        .map_or_else(|| PathBuf::from("/usr/bin/chromium"), PathBuf::from)
}

/// Screenshots land here, kept as build artefacts.
fn screenshot_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("target"),
        PathBuf::from,
    );
    target.join("screenshots")
}

/// Panics with what to install when a tool the suite needs is missing.
fn require_tools(dir: &Path, chromium: &Path) {
    let node = Command::new("node").arg("--version").output();
    assert!(
        node.is_ok_and(|o| o.status.success()),
        "`node` is not on PATH: install Node.js 20+ (Debian: apt-get install nodejs \
         npm; tests/run.sh does)"
    );
    assert!(
        chromium.is_file(),
        "Chromium not found at {}: install Debian's `chromium` (tests/run.sh does), \
         or point VELVET_CHROMIUM at a Chromium binary",
        chromium.display()
    );
    assert!(
        dir.join("node_modules/playwright-core").is_dir(),
        "playwright-core is not installed: run `npm ci` in {} (tests/run.sh does)",
        dir.display()
    );
}

fn test_files(dir: &Path) -> Vec<String> {
    let mut files: Vec<String> = std::fs::read_dir(dir)
        .expect("tests/browser exists")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|name| name.ends_with(".test.mjs"))
        .collect();
    files.sort();
    assert!(
        !files.is_empty(),
        "no *.test.mjs files in {}",
        dir.display()
    );
    files
}

fn spawn_suite(dir: &Path, chromium: &Path, base_url: &str) -> Child {
    Command::new("node")
        // One file at a time: each drives its own Chromium.
        .args(["--test", "--test-concurrency=1"])
        .args(test_files(dir))
        .current_dir(dir)
        .env("VELVET_URL", base_url)
        .env("VELVET_ADMIN_KEY", ADMIN_KEY)
        .env("VELVET_MERCHANT_KEY", MERCHANT_KEY)
        .env("VELVET_CHROMIUM", chromium)
        .env("VELVET_SCREENSHOTS", screenshot_dir())
        .spawn()
        .expect("start `node --test`")
}

/// Waits for the suite without blocking the runtime the node serves on.
async fn wait(mut child: Child) -> ExitStatus {
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("poll node") {
            return status;
        }
        if started.elapsed() > SUITE_LIMIT {
            let _ = child.kill();
            panic!("the browser suite ran over {SUITE_LIMIT:?} and was stopped");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sdk_and_hosted_pages_work_in_headless_chromium() {
    let dir = suite_dir();
    let chromium = chromium();
    require_tools(&dir, &chromium);
    let node = TestNode::start(Backend::Memory).await;

    let child = spawn_suite(&dir, &chromium, &format!("http://{}", node.addr));
    let status = wait(child).await;

    assert!(
        status.success(),
        "the browser suite failed ({status}); its report is above, screenshots in {}",
        screenshot_dir().display()
    );
}
