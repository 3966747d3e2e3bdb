//! Redis servers of a test's own (a lone redis-server with AOF, crashes and restarts; the
//! nodes and Sentinels of `redis_deployments.rs`). Each listens on a port below the
//! kernel's ephemeral range and is known by its process id, so a test never talks to a
//! server that is not its own.

use std::collections::HashSet;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use rand::Rng;

use super::process::temp_path;

/// A free loopback port for a test's own server.
pub fn free_port() -> u16 {
    free_port_with_gap(0)
}

/// A Redis Cluster node's bus listens this far above its port.
const CLUSTER_BUS_GAP: u16 = 10_000;

/// A free port for a Redis Cluster node: its bus port is free too.
pub(super) fn free_cluster_port() -> u16 {
    free_port_with_gap(CLUSTER_BUS_GAP)
}

/// The ports this test process has handed out (and their bus ports): never handed out
/// again, so that a server down for a restart keeps its port from the other tests too.
static HANDED_OUT: Mutex<Option<HashSet<u16>>> = Mutex::new(None);

/// How many random ports are tried before giving up.
const PORT_PICKS: usize = 1000;

/// How many ports a server is started on before giving up, when each was taken by the
/// time it bound.
const PORT_TRIES: usize = 5;

/// A loopback port nothing listens on, picked at random below the kernel's ephemeral range
/// (`ip_local_port_range`). Outgoing connections draw their ports from that range, so the
/// many the tests beside open can never take this one before the server binds it, or while
/// the server is down for a restart. With a `gap`, port + gap is free and below the range
/// too.
fn free_port_with_gap(gap: u16) -> u16 {
    let ephemeral: u16 = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|range| range.split_whitespace().next()?.parse().ok())
        .unwrap_or(32_768);
    let ports = 10_000..ephemeral.saturating_sub(gap);
    assert!(
        ports.len() >= 1000,
        "the ephemeral range starts at {ephemeral}: too low for test servers below it"
    );
    let mut handed_out = HANDED_OUT.lock();
    let handed_out = handed_out.get_or_insert_with(HashSet::new);
    let free =
        |port: u16| !handed_out.contains(&port) && TcpListener::bind(("127.0.0.1", port)).is_ok();
    for _ in 0..PORT_PICKS {
        let port = rand::rng().random_range(ports.clone());
        if free(port) && (gap == 0 || free(port + gap)) {
            handed_out.extend([port, port + gap]);
            return port;
        }
    }
    panic!(
        "no free loopback port between {} and {}",
        ports.start, ports.end
    )
}

/// One redis-server (or Sentinel) of the test's own, in a folder of its own: killed with
/// SIGKILL and started again on the same port, folder and arguments.
pub struct RedisServer {
    pub port: u16,
    dir: PathBuf,
    args: Vec<String>,
    child: Option<Child>,
}

impl RedisServer {
    /// A lone server; with `aof`, every write is appended and fsynced (`appendfsync
    /// always`).
    pub fn start(aof: bool) -> Self {
        let appendonly = if aof { "yes" } else { "no" };
        Self::spawn(
            free_port,
            temp_path("redis"),
            [
                "--save",
                "",
                "--appendonly",
                appendonly,
                "--appendfsync",
                "always",
            ]
            .map(String::from)
            .to_vec(),
        )
    }

    /// Starts with `args` on a port from `pick`; a port something else took first is given
    /// up for another, [`PORT_TRIES`] times at most.
    pub(super) fn spawn(pick: fn() -> u16, dir: PathBuf, args: Vec<String>) -> Self {
        let mut server = Self {
            port: 0,
            dir,
            args,
            child: None,
        };
        std::fs::create_dir_all(&server.dir).unwrap();
        for _ in 0..PORT_TRIES {
            server.port = pick();
            if server.try_run() {
                return server;
            }
            let log = server.log();
            let lost_port =
                log.contains("Address already in use") || log.contains("Failed listening");
            assert!(lost_port, "redis-server exited:\n{log}");
            eprintln!(
                "redis-server lost port {}: {}",
                server.port,
                server.last_log()
            );
        }
        panic!("redis-server found no port it could listen on in {PORT_TRIES} tries");
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Starts the server on its port and waits until it answers there; false when it exits
    /// first (the port is taken).
    fn try_run(&mut self) -> bool {
        let log = File::create(self.dir.join("redis.log")).unwrap();
        let mut child = Command::new("redis-server")
            .args(&self.args)
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .arg("--dir")
            .arg(&self.dir)
            .stdout(log)
            .spawn()
            .expect("redis-server starts (scripts/test.sh installs it)");
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if matches!(child.try_wait(), Ok(Some(_))) {
                return false;
            }
            if self.answering_pid() == Some(child.id()) {
                self.child = Some(child);
                return true;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("redis-server on port {} did not answer in 10 s", self.port);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The process id of the server answering on the port (with the password the server
    /// was given, if any).
    fn answering_pid(&self) -> Option<u32> {
        let password = self
            .args
            .iter()
            .position(|a| a == "--requirepass")
            .map(|i| self.args[i + 1].as_str());
        // redis-cli has no timeout of its own: a port that takes connections and never
        // answers would hang it.
        let mut cli = Command::new("timeout");
        cli.args(["2", "redis-cli", "-p", &self.port.to_string()]);
        if let Some(password) = password {
            cli.args(["-a", password, "--no-auth-warning"]);
        }
        let info = cli.args(["info", "server"]).output().ok()?;
        String::from_utf8_lossy(&info.stdout)
            .lines()
            .find_map(|line| line.strip_prefix("process_id:")?.trim().parse().ok())
    }

    /// What the server logged.
    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("redis.log")).unwrap_or_default()
    }

    /// The last line the server logged (why it exited).
    fn last_log(&self) -> String {
        self.log().lines().last().unwrap_or_default().to_owned()
    }

    /// Starts it again (as a supervisor would) on the same port, folder and arguments.
    pub fn start_again(&mut self) {
        assert!(
            self.try_run(),
            "redis-server could not start again on port {}: {}",
            self.port,
            self.last_log()
        );
    }

    /// SIGKILL: no chance to save or to hand over.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// A crash and a supervisor's restart: SIGKILL, `down_for`, and a start on the same
    /// port and folder.
    pub fn crash_and_restart(&mut self, down_for: Duration) {
        self.kill();
        std::thread::sleep(down_for);
        self.start_again();
    }

    /// SIGKILL, then a start again at once.
    pub fn restart(&mut self) {
        self.crash_and_restart(Duration::ZERO);
    }

    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    fn freeze(&self) {
        self.signal("-STOP");
    }

    fn thaw(&self) {
        self.signal("-CONT");
    }

    /// Frozen (SIGSTOP: the server keeps its connections but answers nothing, as a replica
    /// that lags without end) until the guard is dropped, even by a test that fails
    /// half-way.
    pub fn frozen(&self) -> Frozen<'_> {
        self.freeze();
        Frozen(self)
    }

    fn signal(&self, signal: &str) {
        if let Some(child) = &self.child {
            let _ = Command::new("kill")
                .arg(signal)
                .arg(child.id().to_string())
                .status();
        }
    }

    /// Forgets every script, as a restarted server or a promoted replica has, then runs
    /// `step`: its scripts' next calls are answered `NOSCRIPT`, and footfall loads them
    /// again (seen by MONITOR). On the shared Redis another test could load them again in
    /// between, and the flush would disturb the others.
    pub async fn with_scripts_forgotten<F: std::future::Future>(&self, step: F) -> F::Output {
        let mut con = redis::Client::open(self.url())
            .unwrap()
            .get_connection()
            .unwrap();
        let () = redis::cmd("SCRIPT").arg("FLUSH").query(&mut con).unwrap();
        let (out, commands) = self.commands_during(step).await;
        assert!(
            commands.contains("\"SCRIPT\" \"LOAD\""),
            "no script was loaded again:\n{commands}"
        );
        out
    }

    /// Every command Redis receives while `work` runs (`redis-cli monitor`), a line each.
    pub async fn commands_during<F: std::future::Future>(&self, work: F) -> (F::Output, String) {
        let mut monitor = Command::new("redis-cli")
            .args(["-p", &self.port.to_string(), "monitor"])
            .stdout(Stdio::piped())
            .spawn()
            .expect("redis-cli runs");
        let stdout = monitor.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let next = |what: &str| {
            lines
                .recv_timeout(Duration::from_secs(10))
                .unwrap_or_else(|_| panic!("redis-cli monitor said nothing for 10 s ({what})"))
        };
        // MONITOR answers OK once it is on.
        assert_eq!(next("its OK"), "OK");
        let out = work.await;
        // A command that marks the end of what `work` sent.
        let mut con = redis::Client::open(self.url())
            .unwrap()
            .get_connection()
            .unwrap();
        let _: String = redis::cmd("ECHO")
            .arg("end-of-work")
            .query(&mut con)
            .unwrap();
        let mut seen = String::new();
        loop {
            let line = next("the end of the work");
            if line.contains("end-of-work") {
                break;
            }
            seen.push_str(&line);
            seen.push('\n');
        }
        let _ = monitor.kill();
        let _ = monitor.wait();
        (out, seen)
    }
}

/// A frozen server, thawed when dropped ([`RedisServer::frozen`]).
pub struct Frozen<'a>(&'a RedisServer);

impl Drop for Frozen<'_> {
    fn drop(&mut self) {
        self.0.thaw();
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Asks a Redis (or Sentinel) on `port` with redis-cli; empty when it does not answer.
pub fn redis_cli(port: u16, args: &[&str]) -> String {
    Command::new("redis-cli")
        .args(["-p", &port.to_string()])
        .args(args)
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default()
}

/// How many replicas of the primary on `port` are in sync (`state=online`).
pub fn replicas_online(port: u16) -> usize {
    redis_cli(port, &["info", "replication"])
        .lines()
        .filter(|l| l.starts_with("slave") && l.contains("state=online"))
        .count()
}

/// The first line of `ROLE`: `master`, `slave` or `sentinel` (empty when down).
pub fn role_of(port: u16) -> String {
    redis_cli(port, &["role"])
        .lines()
        .next()
        .unwrap_or_default()
        .to_owned()
}
