//! Real processes for the tests that need them: the footfall binary (two instances, a
//! SIGKILL, a restart) and a redis-server of the test's own (AOF, restarts).

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use rand::Rng;

/// A free loopback port (bound and released; good enough for a test's own server).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A free port for a Redis Cluster node, whose bus listens 10 000 above it: both must be
/// free, and the bus port must exist (the kernel hands out ports up to 60 999).
fn free_cluster_port() -> u16 {
    for _ in 0..1000 {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        if port < 55_000 && TcpListener::bind(("127.0.0.1", port + 10_000)).is_ok() {
            return port;
        }
    }
    panic!("no free port below 55 000 (see /proc/sys/net/ipv4/ip_local_port_range)")
}

fn temp_path(name: &str) -> PathBuf {
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

/// A redis-server of the test's own, on a free port, in a folder of its own.
pub struct RedisServer {
    pub port: u16,
    dir: PathBuf,
    aof: bool,
    child: Option<Child>,
}

impl RedisServer {
    /// With `aof`, every write is appended and fsynced (`appendfsync always`).
    pub fn start(aof: bool) -> Self {
        let dir = temp_path("redis");
        std::fs::create_dir_all(&dir).unwrap();
        let mut server = Self {
            port: free_port(),
            dir,
            aof,
            child: None,
        };
        server.run();
        server
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    fn run(&mut self) {
        let child = Command::new("redis-server")
            .args([
                "--port",
                &self.port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
            ])
            .args([
                "--appendonly",
                if self.aof { "yes" } else { "no" },
                "--appendfsync",
                "always",
            ])
            .arg("--dir")
            .arg(&self.dir)
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server starts (scripts/test.sh installs it)");
        self.child = Some(child);
        wait_for_pong(self.port);
    }

    /// Kills Redis without a chance to save (a crash), and starts it again on the same
    /// port and folder.
    pub fn crash_and_restart(&mut self, down_for: Duration) {
        self.stop();
        std::thread::sleep(down_for);
        self.run();
    }

    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub fn start_again(&mut self) {
        self.run();
    }

    /// Every command Redis receives while `work` runs (`redis-cli monitor`), a line each.
    pub async fn commands_during<F: std::future::Future>(&self, work: F) -> (F::Output, String) {
        use std::io::BufRead;
        use std::sync::mpsc;
        use std::time::Duration;
        let mut monitor = std::process::Command::new("redis-cli")
            .args(["-p", &self.port.to_string(), "monitor"])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("redis-cli runs");
        let stdout = monitor.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout).lines() {
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

    /// The server's process id (for `kill -STOP` / `-CONT`).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A local Redis Cluster of `masters` nodes (no replicas) on free loopback ports, made with
/// `redis-cli --cluster create`, torn down on drop.
pub struct RedisCluster {
    nodes: Vec<RedisClusterNode>,
}

struct RedisClusterNode {
    port: u16,
    dir: PathBuf,
    child: Child,
}

impl RedisCluster {
    pub fn start(masters: usize) -> Self {
        let mut nodes = Vec::new();
        for _ in 0..masters {
            let port = free_cluster_port();
            let dir = temp_path("cluster");
            std::fs::create_dir_all(&dir).unwrap();
            let child = Command::new("redis-server")
                .args([
                    "--port",
                    &port.to_string(),
                    "--bind",
                    "127.0.0.1",
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                ])
                .args([
                    "--cluster-enabled",
                    "yes",
                    "--cluster-config-file",
                    "nodes.conf",
                ])
                .arg("--dir")
                .arg(&dir)
                .stdout(Stdio::null())
                .spawn()
                .expect("redis-server starts");
            nodes.push(RedisClusterNode { port, dir, child });
        }
        let cluster = Self { nodes };
        for node in &cluster.nodes {
            wait_for_pong(node.port);
        }
        let addresses: Vec<String> = cluster
            .nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port))
            .collect();
        let created = Command::new("redis-cli")
            .args(["--cluster", "create"])
            .args(&addresses)
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .stdout(Stdio::null())
            .status()
            .expect("redis-cli runs");
        assert!(created.success(), "redis-cli --cluster create failed");
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            let ok = cluster.nodes.iter().all(|n| {
                Command::new("redis-cli")
                    .args(["-p", &n.port.to_string(), "cluster", "info"])
                    .output()
                    .map(|o| String::from_utf8_lossy(&o.stdout).contains("cluster_state:ok"))
                    .unwrap_or(false)
            });
            if ok {
                return cluster;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("the cluster did not reach cluster_state:ok");
    }

    /// `redis://` URLs of every node (seeds for the cluster client).
    pub fn urls(&self) -> Vec<String> {
        self.nodes
            .iter()
            .map(|n| format!("redis://127.0.0.1:{}", n.port))
            .collect()
    }

    /// How many keys each node holds.
    pub fn keys_per_node(&self) -> Vec<u64> {
        self.nodes
            .iter()
            .map(|n| {
                Command::new("redis-cli")
                    .args(["-p", &n.port.to_string(), "dbsize"])
                    .output()
                    .ok()
                    .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
                    .unwrap_or(0)
            })
            .collect()
    }
}

impl Drop for RedisCluster {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            let _ = node.child.kill();
            let _ = node.child.wait();
            let _ = std::fs::remove_dir_all(&node.dir);
        }
    }
}

fn wait_for_pong(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        let pong = Command::new("redis-cli")
            .args(["-p", &port.to_string(), "ping"])
            .output()
            // A server behind a password answers too, that it wants one.
            .map(|o| {
                let said = String::from_utf8_lossy(&o.stdout);
                said.contains("PONG") || said.contains("NOAUTH")
            })
            .unwrap_or(false);
        if pong {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("redis-server on port {port} did not answer");
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

/// One redis-server of a replicated deployment: killed with SIGKILL and started again on
/// the same port, folder and arguments.
pub struct RedisNode {
    pub port: u16,
    dir: PathBuf,
    args: Vec<String>,
    child: Option<Child>,
}

impl RedisNode {
    fn start(port: u16, args: Vec<String>) -> Self {
        let dir = temp_path("node");
        std::fs::create_dir_all(&dir).unwrap();
        Self::start_in(port, dir, args)
    }

    fn start_in(port: u16, dir: PathBuf, args: Vec<String>) -> Self {
        let mut node = Self {
            port,
            dir,
            args,
            child: None,
        };
        node.run();
        node
    }

    fn run(&mut self) {
        let child = Command::new("redis-server")
            .args(&self.args)
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .arg("--dir")
            .arg(&self.dir)
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server starts (scripts/test.sh installs it)");
        self.child = Some(child);
        wait_for_pong(self.port);
    }

    /// SIGKILL: no chance to save or to hand over.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again (as a supervisor would): it comes back with the same arguments.
    pub fn restart(&mut self) {
        self.kill();
        self.run();
    }

    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// SIGSTOP: the server keeps its connections but answers nothing (a replica that
    /// lags without end).
    pub fn freeze(&self) {
        self.signal("-STOP");
    }

    /// SIGCONT after `freeze`.
    pub fn thaw(&self) {
        self.signal("-CONT");
    }

    fn signal(&self, signal: &str) {
        if let Some(child) = &self.child {
            let _ = Command::new("kill")
                .arg(signal)
                .arg(child.id().to_string())
                .status();
        }
    }
}

impl Drop for RedisNode {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Arguments of a redis-server that keeps nothing on disk except a cluster's node table.
fn node_args(extra: &[&str]) -> Vec<String> {
    [
        "--save",
        "",
        "--appendonly",
        "no",
        "--repl-diskless-sync-delay",
        "0",
    ]
    .iter()
    .chain(extra)
    .map(|s| s.to_string())
    .collect()
}

/// A Redis Cluster with a replica per primary on free loopback ports: a primary whose peers
/// cannot reach it for `NODE_TIMEOUT_MS` is failed over to its replica.
pub struct ReplicatedCluster {
    pub nodes: Vec<RedisNode>,
}

impl ReplicatedCluster {
    /// How long the cluster waits before it fails a silent primary over.
    pub const NODE_TIMEOUT_MS: u64 = 2000;

    pub fn start(primaries: usize) -> Self {
        let timeout = Self::NODE_TIMEOUT_MS.to_string();
        let nodes: Vec<RedisNode> = (0..primaries * 2)
            .map(|_| {
                RedisNode::start(
                    free_cluster_port(),
                    node_args(&[
                        "--cluster-enabled",
                        "yes",
                        "--cluster-config-file",
                        "nodes.conf",
                        "--cluster-node-timeout",
                        &timeout,
                    ]),
                )
            })
            .collect();
        let addresses: Vec<String> = nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port))
            .collect();
        let created = Command::new("redis-cli")
            .args(["--cluster", "create"])
            .args(&addresses)
            .args(["--cluster-replicas", "1", "--cluster-yes"])
            .stdout(Stdio::null())
            .status()
            .expect("redis-cli runs");
        assert!(created.success(), "redis-cli --cluster create failed");
        let cluster = Self { nodes };
        wait_until(
            "the cluster to be ok with every replica in sync",
            Duration::from_secs(30),
            || {
                cluster
                    .nodes
                    .iter()
                    .all(|n| redis_cli(n.port, &["cluster", "info"]).contains("cluster_state:ok"))
                    && cluster.primaries().len() == primaries
                    && cluster
                        .primaries()
                        .iter()
                        .all(|&i| replicas_online(cluster.nodes[i].port) == 1)
            },
        );
        cluster
    }

    pub fn urls(&self) -> Vec<String> {
        self.nodes
            .iter()
            .map(|n| format!("redis://127.0.0.1:{}", n.port))
            .collect()
    }

    /// Indexes of the nodes that are primaries now.
    pub fn primaries(&self) -> Vec<usize> {
        (0..self.nodes.len())
            .filter(|&i| self.nodes[i].is_running() && role_of(self.nodes[i].port) == "master")
            .collect()
    }

    /// The index of the replica of the primary at `primary`.
    pub fn replica_of(&self, primary: usize) -> usize {
        let id = redis_cli(self.nodes[primary].port, &["cluster", "myid"]);
        (0..self.nodes.len())
            .find(|&i| {
                i != primary
                    && redis_cli(self.nodes[i].port, &["cluster", "nodes"])
                        .lines()
                        .any(|l| l.contains("myself") && l.contains(&id))
            })
            .expect("every primary has a replica")
    }
}

/// A primary, its replicas and three Sentinels watching it, on free loopback ports: the
/// Sentinels fail a primary over after `DOWN_AFTER_MS` without an answer.
pub struct SentinelDeployment {
    pub nodes: Vec<RedisNode>,
    pub sentinels: Vec<RedisNode>,
}

impl SentinelDeployment {
    pub const MASTER: &str = "footfall";
    pub const DOWN_AFTER_MS: u64 = 1000;

    pub fn start(replicas: usize) -> Self {
        Self::start_inner(replicas, None)
    }

    /// A primary alone behind `password` (which the Sentinels are given), watched by the
    /// three Sentinels.
    pub fn start_behind_password(password: &str) -> Self {
        Self::start_inner(0, Some(password))
    }

    fn start_inner(replicas: usize, password: Option<&str>) -> Self {
        let login: Vec<&str> = password.map_or(Vec::new(), |p| vec!["--requirepass", p]);
        let primary = RedisNode::start(free_port(), node_args(&login));
        let primary_port = primary.port.to_string();
        let mut nodes = vec![primary];
        for _ in 0..replicas {
            nodes.push(RedisNode::start(
                free_port(),
                node_args(&["--replicaof", "127.0.0.1", &primary_port]),
            ));
        }
        wait_until("the replicas to sync", Duration::from_secs(20), || {
            replicas_online(nodes[0].port) == replicas
        });
        let sentinels: Vec<RedisNode> = (0..3)
            .map(|_| {
                let port = free_port();
                // Sentinel rewrites its configuration file: one of its own, in its folder.
                let dir = temp_path("sentinel");
                std::fs::create_dir_all(&dir).unwrap();
                let conf = dir.join("sentinel.conf");
                std::fs::write(
                    &conf,
                    format!(
                        "sentinel monitor {m} 127.0.0.1 {primary_port} 2\n\
                         sentinel down-after-milliseconds {m} {down}\n\
                         sentinel failover-timeout {m} 10000\n\
                         sentinel parallel-syncs {m} 2\n{auth}",
                        m = Self::MASTER,
                        down = Self::DOWN_AFTER_MS,
                        auth = password
                            .map(|p| format!("sentinel auth-pass {} {p}\n", Self::MASTER))
                            .unwrap_or_default(),
                    ),
                )
                .unwrap();
                let args = vec![conf.to_string_lossy().into_owned(), "--sentinel".into()];
                RedisNode::start_in(port, dir, args)
            })
            .collect();
        let deployment = Self { nodes, sentinels };
        wait_until(
            "the Sentinels to know each other and the replicas",
            Duration::from_secs(30),
            || {
                deployment.sentinels.iter().all(|s| {
                    let replicas_known = redis_cli(s.port, &["sentinel", "replicas", Self::MASTER])
                        .lines()
                        .filter(|l| *l == "name")
                        .count();
                    let sentinels_known =
                        redis_cli(s.port, &["sentinel", "sentinels", Self::MASTER])
                            .lines()
                            .filter(|l| *l == "name")
                            .count();
                    replicas_known == replicas && sentinels_known == 2
                })
            },
        );
        deployment
    }

    /// The Sentinels' addresses, as `store.redis_sentinels` takes them.
    pub fn addresses(&self) -> Vec<String> {
        self.sentinels
            .iter()
            .map(|s| format!("127.0.0.1:{}", s.port))
            .collect()
    }

    /// The port of the primary the Sentinels name now.
    pub fn primary_port(&self) -> Option<u16> {
        self.sentinels.iter().find_map(|s| {
            redis_cli(
                s.port,
                &["sentinel", "get-master-addr-by-name", Self::MASTER],
            )
            .lines()
            .nth(1)
            .and_then(|p| p.trim().parse().ok())
        })
    }
}

impl FootfallProcess {
    /// Whether the process still runs (it was never restarted: the same process).
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}
