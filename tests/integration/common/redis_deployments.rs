//! Replicated and clustered Redis deployments of a test's own, made of `RedisServer`s: a
//! Redis Cluster with or without replicas, and a primary watched by three Sentinels.

use std::process::{Command, Stdio};
use std::time::Duration;

use super::process::{temp_path, wait_until};
use super::redis_servers::{
    RedisServer, free_cluster_port, free_port, redis_cli, replicas_online, role_of,
};

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

/// A Redis Cluster on free loopback ports, made with `redis-cli --cluster create`: its
/// primaries alone, or each with a replica that takes over when its primary's peers cannot
/// reach it for `NODE_TIMEOUT_MS`.
pub struct RedisCluster {
    pub nodes: Vec<RedisServer>,
}

impl RedisCluster {
    /// How long a replicated cluster waits before it fails a silent primary over.
    pub const NODE_TIMEOUT_MS: u64 = 2000;

    /// `primaries` nodes, no replicas.
    pub fn start(primaries: usize) -> Self {
        Self::create(primaries, 0, &[])
    }

    /// `primaries` nodes, each with a replica.
    pub fn start_replicated(primaries: usize) -> Self {
        let timeout = Self::NODE_TIMEOUT_MS.to_string();
        Self::create(primaries, 1, &["--cluster-node-timeout", &timeout])
    }

    fn create(primaries: usize, replicas: usize, extra: &[&str]) -> Self {
        let cluster_args = [
            "--cluster-enabled",
            "yes",
            "--cluster-config-file",
            "nodes.conf",
        ];
        let args = node_args(&[&cluster_args[..], extra].concat());
        let nodes: Vec<RedisServer> = (0..primaries * (1 + replicas))
            .map(|_| RedisServer::spawn(free_cluster_port, temp_path("cluster"), args.clone()))
            .collect();
        let addresses: Vec<String> = nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port))
            .collect();
        let created = Command::new("redis-cli")
            .args(["--cluster", "create"])
            .args(&addresses)
            .args(["--cluster-replicas", &replicas.to_string(), "--cluster-yes"])
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
                        .all(|&i| replicas_online(cluster.nodes[i].port) == replicas)
            },
        );
        cluster
    }

    /// How many keys each node holds.
    pub fn keys_per_node(&self) -> Vec<u64> {
        self.nodes
            .iter()
            .map(|n| redis_cli(n.port, &["dbsize"]).parse().unwrap_or(0))
            .collect()
    }

    pub fn urls(&self) -> Vec<String> {
        self.nodes.iter().map(RedisServer::url).collect()
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
    pub nodes: Vec<RedisServer>,
    pub sentinels: Vec<RedisServer>,
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
        let primary = RedisServer::spawn(free_port, temp_path("node"), node_args(&login));
        let primary_port = primary.port.to_string();
        let mut nodes = vec![primary];
        for _ in 0..replicas {
            nodes.push(RedisServer::spawn(
                free_port,
                temp_path("node"),
                node_args(&["--replicaof", "127.0.0.1", &primary_port]),
            ));
        }
        wait_until("the replicas to sync", Duration::from_secs(20), || {
            replicas_online(nodes[0].port) == replicas
        });
        let sentinels: Vec<RedisServer> = (0..3)
            .map(|_| {
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
                RedisServer::spawn(free_port, dir, args)
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
