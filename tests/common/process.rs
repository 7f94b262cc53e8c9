//! A node as a separate process of the real binary, for what only a real
//! process shows: signals (SIGTERM, SIGKILL, SIGSTOP), exit codes, logs.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

pub struct NodeProcess {
    child: Child,
    pub addr: SocketAddr,
    /// Everything the node printed, stdout and stderr.
    pub log: PathBuf,
}

impl NodeProcess {
    /// Starts `velvet` with `env` on a free loopback port; waits for its
    /// `listening on ADDR` line.
    pub fn spawn(env: &[(&str, String)]) -> Self {
        let log = std::env::temp_dir()
            .join(format!("velvet-node-{}.log", uuid::Uuid::new_v4()));
        let mut command = Command::new(env!("CARGO_BIN_EXE_velvet"));
        command
            .env("VELVET__SERVER__LISTEN", "127.0.0.1:0")
            .env("VELVET__EXPERIENCES__FILE", "")
            .env_remove("RUST_LOG")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in env {
            command.env(k, v);
        }
        let mut child = command.spawn().expect("the velvet binary starts");
        let (tx, rx) = mpsc::channel();
        for stream in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let (tx, log) = (tx.clone(), log.clone());
            std::thread::spawn(move || copy_lines(stream, &log, &tx));
        }
        let addr = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("listening on ADDR");
        Self { child, addr, log }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args([&format!("-{name}"), &self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success(), "kill -{name}");
    }

    /// Waits for the process to exit; its exit code.
    pub fn wait(&mut self, limit: Duration) -> Option<i32> {
        let deadline = std::time::Instant::now() + limit;
        while std::time::Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

fn copy_lines(
    stream: Box<dyn std::io::Read + Send>,
    log: &PathBuf,
    found: &mpsc::Sender<SocketAddr>,
) {
    use std::io::Write;
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .expect("log file");
    for line in BufReader::new(stream).lines().map_while(Result::ok) {
        let _ = writeln!(file, "{line}");
        if let Some(Ok(addr)) =
            line.strip_prefix("listening on ").map(|a| a.trim().parse())
        {
            let _ = found.send(addr);
        }
    }
}

impl Drop for NodeProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.log);
    }
}
