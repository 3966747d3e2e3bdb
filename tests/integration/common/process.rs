//! Real processes for the tests that need them: the footfall binary (two instances, a
//! SIGKILL, a restart) and a redis-server of the test's own (AOF, restarts).

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
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

/// The footfall binary, started with a config file; its JSON logs tell the port.
pub struct FootfallProcess {
    child: Child,
    pub base: String,
    config: PathBuf,
}

impl FootfallProcess {
    pub fn start(config_toml: &str) -> Self {
        let config = temp_path("config.toml");
        std::fs::write(&config, config_toml).unwrap();
        Self::start_file_with_env(&config, &[])
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
        // Reads the logs until the process ends (so that its pipe never fills up).
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                // Warnings and errors of the process show in the test's output.
                if line.contains("\"level\":\"WARN\"") || line.contains("\"level\":\"ERROR\"") {
                    eprintln!("footfall: {line}");
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
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGKILL: the process dies at once, with whatever it had in flight.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, then waits for a graceful exit; returns how long it took.
    pub fn terminate(&mut self) -> Duration {
        let started = Instant::now();
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.pid().to_string())
            .status();
        let _ = self.child.wait();
        started.elapsed()
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
            .map(|o| String::from_utf8_lossy(&o.stdout).contains("PONG"))
            .unwrap_or(false);
        if pong {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("redis-server on port {port} did not answer");
}
