//! Two `hawkeye-agent` processes on a real Redis Cluster (three masters,
//! three replicas) mail each alert once through a `CLUSTER FAILOVER` of the
//! master that holds the alert data (`{alerts}`): one alert fires and
//! resolves, another fires while the cluster fails over, and the real SMTP
//! server (aiosmtpd) receives each of the three mails exactly once. The
//! metric events go through a `hawkeye-server` binary on the same cluster.
//!
//! Nothing waits on a fixed sleep: the test waits for log lines, ticks and
//! mails, each with a deadline.

mod common;

use std::path::Path;

use common::processes::{agent_binary, clean_command, server_binary, Proc};
use common::stack::{send_lines, subjects, ticks, DEADLINE};
use hawkeye_testkit::smtp_server::SmtpServer;
use hawkeye_testkit::RedisCluster;

/// One second checks of a two-second window: a burst breaches two checks,
/// then resolves.
const MONITORS: &str = "\
version: 1
monitors:
  - metric: first
    type: c
    interval: 1s
    window: 2s
    subject: first {{ level }}
    triggers:
      - threshold: 1
        run_every: 1h
        send_resolved: true
        to: [oncall@example.com]
  - metric: second
    type: c
    interval: 1s
    window: 1h
    subject: second {{ level }}
    triggers:
      - threshold: 1
        run_every: 1h
        to: [oncall@example.com]
";

fn common_env(cmd: &mut std::process::Command, cluster: &RedisCluster, dir: &Path) {
    cmd.env("REDIS_URL", cluster.url_list())
        .env("REDIS_TIMEOUT", "1s")
        .env("HAWKEYE_FLUSH_INTERVAL", "100ms")
        .current_dir(dir);
}

fn agent(name: &str, cluster: &RedisCluster, smtp: &SmtpServer, dir: &Path) -> Proc {
    let mut cmd = clean_command(&agent_binary());
    common_env(&mut cmd, cluster, dir);
    cmd.env("MONITOR_CONFIG_FILE", dir.join("monitors.yaml"))
        .env("MAILER", "smtp")
        .env("SMTP_HOST", "127.0.0.1")
        .env("SMTP_PORT", smtp.port().to_string())
        .env("SMTP_TLS", "none")
        .env("MAIL_FROM", "hawkeye@example.com")
        .env("RUST_LOG", "info,hawkeye_agent::scheduler=debug");
    let agent = Proc::spawn(name, cmd);
    assert!(
        agent.wait_for_line("agent started", DEADLINE),
        "{name} did not start"
    );
    agent
}

#[test]
fn two_agents_through_a_failover_mail_each_alert_once() {
    let cluster = RedisCluster::start();
    let smtp = SmtpServer::start();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("monitors.yaml"), MONITORS).unwrap();
    let socket = dir.path().join("hawkeye.sock");
    let mut cmd = clean_command(&server_binary());
    common_env(&mut cmd, &cluster, dir.path());
    cmd.env("HAWKEYE_SOCKET", &socket).env("RUST_LOG", "info");
    let server = Proc::spawn("server", cmd);
    assert!(server.wait_for_line("listening", DEADLINE));
    let agents = [
        agent("agent-a", &cluster, &smtp, dir.path()),
        agent("agent-b", &cluster, &smtp, dir.path()),
    ];

    // One alert fires and resolves before the failover.
    send_lines(&socket, &["first:5|c"]);
    assert_eq!(smtp.wait_for(2, DEADLINE).len(), 2);

    // The other fires while the master of the alert data hands over.
    let master = cluster.master_of_slot(cluster.key_slot("{alerts}"));
    let replica = cluster.replica_of(&master.id);
    send_lines(&socket, &["second:5|c"]);
    cluster.failover(replica.port);
    cluster.wait_healthy();
    let mails = smtp.wait_for(3, DEADLINE);
    // Both agents have checked since: a duplicate would have been sent.
    for agent in &agents {
        ticks(agent, 3);
    }
    let mut all = subjects(&smtp.messages());
    assert_eq!(all.len(), 3, "{all:?}");
    all.sort();
    assert!(
        all[0].starts_with("[RESOLVED]") && all[0].contains("first"),
        "{all:?}"
    );
    assert!(all[1].starts_with("first"), "{all:?}");
    assert!(all[2].starts_with("second"), "{all:?}");
    assert!(mails.iter().all(|m| m.rcpt_to() == ["oncall@example.com"]));
}
