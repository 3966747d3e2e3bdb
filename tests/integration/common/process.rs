//! The footfall binary as a real process, for the tests that need one: two instances, a
//! SIGKILL, a restart, a graceful stop.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use rand::Rng;

pub(super) fn temp_path(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!(
        "footfall-test-{}-{name}",
        rand::rng().random::<u64>()
    ))
}

/// How long a process may take to exit after SIGTERM before the test fails: a guard
/// against a process that never exits, far beyond any shutdown (actix's own is 10 s).
pub const HANG_GUARD: Duration = Duration::from_secs(30);

/// The footfall binary, started with a config file; its JSON logs tell the port.
pub struct FootfallProcess {
    child: Child,
    pub base: String,
    config: PathBuf,
    /// Its warnings and errors so far (JSON log lines).
    warnings: Arc<parking_lot::Mutex<Vec<String>>>,
}

impl FootfallProcess {
    pub fn start(config_toml: &str) -> Self {
        Self::start_with_env(config_toml, &[])
    }

    /// Starts with `FOOTFALL__…` overrides of the configuration.
    pub fn start_with_env(config_toml: &str, env: &[(&str, &str)]) -> Self {
        let config = temp_path("config.toml");
        std::fs::write(&config, config_toml).unwrap();
        Self::start_file_with_env(&config, env)
    }

    /// Starts with a config file of the test's own (removed when the process is dropped)
    /// and `FOOTFALL__…` overrides.
    pub fn start_file_with_env(config: &std::path::Path, env: &[(&str, &str)]) -> Self {
        let config = config.to_owned();
        let mut child = Command::new(env!("CARGO_BIN_EXE_footfall"))
            .arg("--config")
            .arg(&config)
            .envs(env.iter().copied())
            .env("FOOTFALL__SERVER__JSON_LOGS", "true")
            .env("RUST_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("the footfall binary starts");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        // Reads the logs until the process ends (so that its pipe never fills up); with
        // FOOTFALL_TEST_LOGS set, shows them.
        let show = std::env::var_os("FOOTFALL_TEST_LOGS").is_some();
        let warnings = Arc::new(parking_lot::Mutex::new(Vec::new()));
        let kept = warnings.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                // Warnings and errors always show in the test's output.
                let warns =
                    line.contains("\"level\":\"WARN\"") || line.contains("\"level\":\"ERROR\"");
                if show || warns {
                    eprintln!("footfall: {line}");
                }
                if warns {
                    kept.lock().push(line.clone());
                }
                if line.contains("footfall is listening") {
                    let v: serde_json::Value = serde_json::from_str(&line).unwrap_or_default();
                    let _ = tx.send(v["port"].as_u64().unwrap_or(0));
                }
            }
        });
        let port = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("footfall said where it listens");
        Self {
            child,
            base: format!("http://127.0.0.1:{port}"),
            config,
            warnings,
        }
    }

    /// The warnings and errors it logged so far (JSON lines).
    pub fn warnings(&self) -> Vec<String> {
        self.warnings.lock().clone()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether the process still runs (it was never restarted: the same process).
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// SIGKILL: the process dies at once, with whatever it had in flight.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, then waits for a graceful exit; returns how long it took. A process still
    /// running 30 s later fails the test (a hang guard, not a bound on the shutdown).
    pub fn terminate(&mut self) -> Duration {
        let started = Instant::now();
        self.sigterm();
        self.wait_for_exit(HANG_GUARD);
        started.elapsed()
    }

    /// Sends SIGTERM and returns at once.
    pub fn sigterm(&self) {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.pid().to_string())
            .status();
    }

    /// Waits for the process to exit; one still running after `hang_guard` is killed and
    /// fails the test.
    pub fn wait_for_exit(&mut self, hang_guard: Duration) {
        let deadline = Instant::now() + hang_guard;
        loop {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            if Instant::now() > deadline {
                self.kill();
                panic!("footfall did not exit within {hang_guard:?} of SIGTERM (hang guard)");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for FootfallProcess {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_file(&self.config);
    }
}

/// Waits until `done` holds (polling every 100 ms); panics with `what` after `timeout`.
pub fn wait_until(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if done() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("timed out waiting for {what}");
}
