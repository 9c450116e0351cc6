//! A real Redis Cluster for tests: six `redis-server --cluster-enabled yes`
//! on free loopback ports, joined by `redis-cli --cluster create
//! --cluster-replicas 1` into three masters with one replica each, plus the
//! faults tests inflict on it: `kill -9`, SIGSTOP/SIGCONT, `CLUSTER
//! FAILOVER` and moving a slot to another master.
//!
//! Each node runs under a small shell that kills it when the test process
//! goes away (the shell waits on a pipe from this process), so a cluster kept
//! in a `static` or left behind by a panic does not outlive the test binary.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use tempfile::TempDir;

pub use crate::cluster_nodes::{parse_cluster_nodes, NodeInfo};
use crate::signal::send_signal as signal;

/// How long a node may take to start, and the cluster to form or heal.
const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// Settings of a test cluster.
#[derive(Debug, Clone)]
pub struct ClusterOptions {
    /// `cluster-node-timeout`: how long a silent master has before its
    /// replica takes over. Short, so failover tests stay short.
    pub node_timeout: Duration,
    /// More `redis-server` arguments for every node, e.g.
    /// `["--min-replicas-to-write", "1"]`.
    pub extra_args: Vec<String>,
}

impl Default for ClusterOptions {
    fn default() -> Self {
        ClusterOptions {
            node_timeout: Duration::from_millis(2000),
            extra_args: Vec::new(),
        }
    }
}

/// One node: its client port, and the process while it runs.
struct Node {
    port: u16,
    /// The shell that owns the redis-server.
    guard: Option<Child>,
    /// The redis-server's own pid (for signals).
    pid: Option<u32>,
    /// Stopped with SIGSTOP.
    paused: bool,
}

pub struct RedisCluster {
    dir: TempDir,
    nodes: Vec<Node>,
    options: ClusterOptions,
}

impl RedisCluster {
    /// Starts three masters and three replicas and waits until every node
    /// reports `cluster_state:ok`; panics with the reason if it cannot.
    pub fn start() -> RedisCluster {
        RedisCluster::start_with(ClusterOptions::default())
    }

    pub fn start_with(options: ClusterOptions) -> RedisCluster {
        let dir = tempfile::Builder::new()
            .prefix("hawkeye-cluster")
            .tempdir()
            .expect("create a temporary directory for the cluster");
        let mut cluster = RedisCluster {
            dir,
            nodes: Vec::new(),
            options,
        };
        for _ in 0..6 {
            let node = cluster.spawn_node();
            cluster.nodes.push(node);
        }
        let addresses: Vec<String> = cluster
            .nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port))
            .collect();
        let mut args: Vec<&str> = vec!["create"];
        args.extend(addresses.iter().map(String::as_str));
        args.extend(["--cluster-replicas", "1", "--cluster-yes"]);
        cluster_admin(&args);
        cluster.wait_healthy();
        cluster.wait_until("every master to have a replica", || {
            let nodes = cluster.nodes();
            let masters: Vec<&NodeInfo> = nodes.iter().filter(|n| n.is_master).collect();
            masters.len() == 3
                && masters.iter().all(|m| {
                    nodes
                        .iter()
                        .any(|r| r.master_id.as_deref() == Some(m.id.as_str()))
                })
        });
        cluster
    }

    /// Every node's client port, in start order.
    pub fn ports(&self) -> Vec<u16> {
        self.nodes.iter().map(|n| n.port).collect()
    }

    /// `redis://127.0.0.1:<port>` of the first node: one seed.
    pub fn seed_url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.nodes[0].port)
    }

    /// Every node as a comma list (`REDIS_URL`).
    pub fn url_list(&self) -> String {
        self.ports()
            .iter()
            .map(|p| format!("redis://127.0.0.1:{p}"))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The ports of the nodes running (neither killed nor paused).
    pub fn live_ports(&self) -> Vec<u16> {
        self.nodes
            .iter()
            .filter(|n| n.guard.is_some() && !n.paused)
            .map(|n| n.port)
            .collect()
    }

    /// Runs `redis-cli` against the node on `port` and returns its output.
    /// A stopped node makes this wait (up to 10 s, then an empty answer).
    pub fn cli(&self, port: u16, args: &[&str]) -> String {
        let out = Command::new("timeout")
            .arg("10")
            .arg("redis-cli")
            .args(["-h", "127.0.0.1", "-p", &port.to_string()])
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("run redis-cli (apt-get install redis-tools)");
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// A field of `INFO` on one node (for example `total_net_input_bytes`).
    pub fn info_field(&self, port: u16, field: &str) -> Option<String> {
        let info = self.cli(port, &["INFO", "all"]);
        info.lines().find_map(|l| {
            l.strip_prefix(&format!("{field}:"))
                .map(|v| v.trim().to_string())
        })
    }

    /// `CLUSTER NODES` as one live node sees it.
    pub fn nodes(&self) -> Vec<NodeInfo> {
        let port = self.live_ports()[0];
        parse_cluster_nodes(&self.cli(port, &["CLUSTER", "NODES"]))
    }

    /// The slot of `key` (hash tag rules apply).
    pub fn key_slot(&self, key: &str) -> u16 {
        let port = self.live_ports()[0];
        self.cli(port, &["CLUSTER", "KEYSLOT", key])
            .parse()
            .expect("CLUSTER KEYSLOT answers a number")
    }

    /// The master serving `slot`, as a live node sees it.
    pub fn master_of_slot(&self, slot: u16) -> NodeInfo {
        self.nodes()
            .into_iter()
            .find(|n| {
                n.is_master && !n.failed && n.slots.iter().any(|(a, b)| (*a..=*b).contains(&slot))
            })
            .unwrap_or_else(|| panic!("no master serves slot {slot}"))
    }

    /// A master other than the one with `id` (a target to move slots to).
    pub fn other_master(&self, id: &str) -> NodeInfo {
        self.nodes()
            .into_iter()
            .find(|n| n.is_master && !n.failed && n.id != id)
            .unwrap_or_else(|| panic!("no master besides {id}"))
    }

    /// A replica of the master with `master_id` (waits for the cluster to
    /// show one, as after a failover the old master rejoins as replica).
    pub fn replica_of(&self, master_id: &str) -> NodeInfo {
        let mut found = None;
        self.wait_until("a replica of the master", || {
            found = self
                .nodes()
                .into_iter()
                .find(|n| !n.is_master && !n.failed && n.master_id.as_deref() == Some(master_id));
            found.is_some()
        });
        found.expect("found above")
    }

    /// `kill -9` of the node on `port`; it stays down.
    pub fn kill(&mut self, port: u16) {
        let node = self.node_mut(port);
        if let Some(pid) = node.pid.take() {
            signal(pid, "KILL");
        }
        if let Some(mut guard) = node.guard.take() {
            let _ = guard.kill();
            let _ = guard.wait();
        }
    }

    /// Starts a new node and makes it a replica of the master on
    /// `master_port` (as an operator replaces a lost replica); returns its
    /// port once it is in sync.
    pub fn add_replica(&mut self, master_port: u16) -> u16 {
        let master_id = self
            .nodes()
            .into_iter()
            .find(|n| n.port == master_port && n.is_master)
            .unwrap_or_else(|| panic!("no master on port {master_port}"))
            .id;
        let node = self.spawn_node();
        let port = node.port;
        self.nodes.push(node);
        let (new, master) = (
            format!("127.0.0.1:{port}"),
            format!("127.0.0.1:{master_port}"),
        );
        cluster_admin(&[
            "add-node",
            &new,
            &master,
            "--cluster-slave",
            "--cluster-master-id",
            &master_id,
        ]);
        self.wait_until("the new node to replicate the master", || {
            self.nodes().iter().any(|n| {
                n.port == port && !n.failed && n.master_id.as_deref() == Some(master_id.as_str())
            })
        });
        self.wait_healthy();
        port
    }

    /// SIGSTOP: the node hangs, its sockets stay open.
    pub fn pause(&mut self, port: u16) {
        signal(self.pid(port), "STOP");
        self.node_mut(port).paused = true;
    }

    /// SIGCONT after [`RedisCluster::pause`].
    pub fn resume(&mut self, port: u16) {
        signal(self.pid(port), "CONT");
        self.node_mut(port).paused = false;
    }

    /// `CLUSTER FAILOVER` on the replica on `replica_port`: a graceful
    /// switch with its master. Returns once the replica says it is master.
    pub fn failover(&self, replica_port: u16) {
        let reply = self.cli(replica_port, &["CLUSTER", "FAILOVER"]);
        assert_eq!(reply, "OK", "CLUSTER FAILOVER on {replica_port}");
        self.wait_until("the replica to become master", || {
            self.cli(replica_port, &["ROLE"]).starts_with("master")
        });
    }

    /// Waits until the node on `port` (a master that was paused or failed
    /// over) serves as a replica again, in sync with its new master.
    pub fn wait_rejoined_as_replica(&self, port: u16) {
        self.wait_until("the old master to rejoin as replica", || {
            self.nodes()
                .iter()
                .any(|n| n.port == port && !n.is_master && !n.failed)
        });
        self.wait_healthy();
    }

    /// Starts moving `slot` to the master on `to_port` (`IMPORTING` on the
    /// target, `MIGRATING` on the owner). Keys then move with
    /// [`RedisCluster::migrate_keys`]; [`RedisCluster::finish_migration`]
    /// hands the slot over.
    pub fn begin_migration(&self, slot: u16, to_port: u16) {
        let from = self.master_of_slot(slot);
        let to_id = self.cli(to_port, &["CLUSTER", "MYID"]);
        let slot = slot.to_string();
        let ok = |reply: String, what: &str| assert_eq!(reply, "OK", "{what}");
        ok(
            self.cli(
                to_port,
                &["CLUSTER", "SETSLOT", &slot, "IMPORTING", &from.id],
            ),
            "SETSLOT IMPORTING",
        );
        ok(
            self.cli(
                from.port,
                &["CLUSTER", "SETSLOT", &slot, "MIGRATING", &to_id],
            ),
            "SETSLOT MIGRATING",
        );
    }

    /// Moves up to `count` keys of `slot` from the node on `from_port` to
    /// the one on `to_port` (`MIGRATE`); returns how many it moved.
    pub fn migrate_keys(&self, slot: u16, from_port: u16, to_port: u16, count: usize) -> usize {
        let listed = self.cli(
            from_port,
            &[
                "CLUSTER",
                "GETKEYSINSLOT",
                &slot.to_string(),
                &count.to_string(),
            ],
        );
        let keys: Vec<&str> = listed.lines().filter(|k| !k.is_empty()).collect();
        if keys.is_empty() {
            return 0;
        }
        let port = to_port.to_string();
        let mut args = vec!["MIGRATE", "127.0.0.1", &port, "", "0", "5000", "KEYS"];
        args.extend(keys.iter().copied());
        let reply = self.cli(from_port, &args);
        assert!(reply == "OK" || reply == "NOKEY", "MIGRATE: {reply}");
        keys.len()
    }

    /// Gives `slot` to the master on `to_port` on every master.
    pub fn finish_migration(&self, slot: u16, to_port: u16) {
        let to_id = self.cli(to_port, &["CLUSTER", "MYID"]);
        let slot = slot.to_string();
        let masters: Vec<u16> = self
            .nodes()
            .into_iter()
            .filter(|n| n.is_master && !n.failed)
            .map(|n| n.port)
            .collect();
        // The target first, so the slot is never without an owner.
        for port in std::iter::once(to_port).chain(masters.into_iter().filter(|p| *p != to_port)) {
            let reply = self.cli(port, &["CLUSTER", "SETSLOT", &slot, "NODE", &to_id]);
            assert_eq!(reply, "OK", "SETSLOT NODE on {port}");
        }
    }

    /// Moves the whole of `slot` to the master on `to_port`, `batch` keys at a time.
    pub fn migrate_slot(&self, slot: u16, to_port: u16, batch: usize) {
        let from = self.master_of_slot(slot).port;
        self.begin_migration(slot, to_port);
        while self.migrate_keys(slot, from, to_port, batch) > 0 {}
        self.finish_migration(slot, to_port);
    }

    /// Waits until every running, unpaused node reports `cluster_state:ok`
    /// with every slot served by a running, unpaused master, they agree on
    /// who serves what (after a kill or pause: once a replica took over), and
    /// every replica is in sync with its master.
    pub fn wait_healthy(&self) {
        self.wait_until("the cluster to be healthy", || self.is_healthy());
    }

    fn is_healthy(&self) -> bool {
        let live = self.live_ports();
        let mut views = Vec::new();
        for port in &live {
            let info = self.cli(*port, &["CLUSTER", "INFO"]);
            if !info.contains("cluster_state:ok") || !info.contains("cluster_slots_ok:16384") {
                return false;
            }
            // A replica that has not finished its first sync would take
            // over with nothing.
            let replication = self.cli(*port, &["INFO", "replication"]);
            if replication.contains("role:slave") && !replication.contains("master_link_status:up")
            {
                return false;
            }
            let mut owners: Vec<(u16, Vec<(u16, u16)>)> =
                parse_cluster_nodes(&self.cli(*port, &["CLUSTER", "NODES"]))
                    .into_iter()
                    .filter(|n| n.is_master && !n.slots.is_empty())
                    .map(|n| (n.port, n.slots))
                    .collect();
            owners.sort();
            // A killed or paused master still serving slots is not healed yet.
            if owners.iter().any(|(p, _)| !live.contains(p)) {
                return false;
            }
            views.push(owners);
        }
        views.windows(2).all(|w| w[0] == w[1])
    }

    /// Polls `done` until it holds; panics after 60 s.
    pub fn wait_until(&self, what: &str, done: impl FnMut() -> bool) {
        crate::progress::eventually(what, READY_TIMEOUT, done);
    }

    fn node_mut(&mut self, port: u16) -> &mut Node {
        self.nodes
            .iter_mut()
            .find(|n| n.port == port)
            .unwrap_or_else(|| panic!("no node on port {port}"))
    }

    fn pid(&self, port: u16) -> u32 {
        self.nodes
            .iter()
            .find(|n| n.port == port)
            .and_then(|n| n.pid)
            .unwrap_or_else(|| panic!("no running node on port {port}"))
    }

    fn spawn_node(&self) -> Node {
        // A port picked free can be taken before the node binds it: try again.
        for _ in 0..5 {
            let (port, bus_port) = (free_port(), free_port());
            if port.abs_diff(bus_port) == 0 {
                continue;
            }
            if let Some(node) = self.try_spawn(port, bus_port) {
                return node;
            }
        }
        panic!("could not start a cluster node on a free port");
    }

    fn try_spawn(&self, port: u16, bus_port: u16) -> Option<Node> {
        let dir: PathBuf = self.dir.path().join(port.to_string());
        std::fs::create_dir_all(&dir).expect("create the node's directory");
        let node_timeout = self.options.node_timeout.as_millis().to_string();
        let port_s = port.to_string();
        let bus_s = bus_port.to_string();
        let mut args: Vec<&str> = vec![
            "--port",
            &port_s,
            "--cluster-port",
            &bus_s,
            "--bind",
            "127.0.0.1",
            "--cluster-enabled",
            "yes",
            "--cluster-config-file",
            "nodes.conf",
            "--cluster-node-timeout",
            &node_timeout,
            "--cluster-replica-validity-factor",
            "0",
            "--save",
            "",
            "--appendonly",
            "no",
        ];
        args.extend(self.options.extra_args.iter().map(String::as_str));
        let mut guard = Command::new("sh")
            .arg("-c")
            // The node dies when our end of stdin closes (this process exited).
            .arg("redis-server \"$@\" & cat >/dev/null; kill -9 $! 2>/dev/null")
            .arg("sh")
            .args(&args)
            .current_dir(&dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start redis-server (apt-get install redis-server)");
        let stdout = guard.stdout.take().expect("node stdout");
        let ready = crate::ready_line::wait_for_line(stdout, READY_TIMEOUT, |line| {
            let l = line.to_ascii_lowercase();
            if l.contains("ready to accept connections") {
                Some(true)
            } else if l.contains("address already in use") || l.contains("could not create") {
                Some(false)
            } else {
                None
            }
        });
        if ready != Some(true) {
            let _ = guard.kill();
            let _ = guard.wait();
            return None;
        }
        let mut node = Node {
            port,
            guard: Some(guard),
            pid: None,
            paused: false,
        };
        let info = self.cli(port, &["INFO", "server"]);
        node.pid = info
            .lines()
            .find_map(|l| l.strip_prefix("process_id:"))
            .and_then(|p| p.trim().parse().ok());
        assert!(node.pid.is_some(), "node on {port} has no process_id");
        Some(node)
    }
}

/// `redis-cli --cluster <args>`; panics with its output if it fails.
fn cluster_admin(args: &[&str]) {
    let out = Command::new("redis-cli")
        .arg("--cluster")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run redis-cli --cluster (apt-get install redis-tools)");
    assert!(
        out.status.success(),
        "redis-cli --cluster {} failed: {}{}",
        args[0],
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Drop for RedisCluster {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            if let Some(pid) = node.pid.take() {
                signal(pid, "KILL");
            }
            if let Some(mut guard) = node.guard.take() {
                let _ = guard.kill();
                let _ = guard.wait();
            }
        }
    }
}

/// A loopback port nothing listens on right now.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind a free local port")
}
