//! A whole hawkeye for end-to-end tests: a real redis-server, the
//! `hawkeye-server` binary, a real SMTP server (aiosmtpd), and agents
//! started as `hawkeye-agent` processes against them. Tests wait on what
//! the programs print (each agent logs every tick it evaluates) and on
//! mails arriving, never on fixed sleeps.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::time::Duration;

use hawkeye_testkit::smtp_server::{ReceivedMail, SmtpServer};
use hawkeye_testkit::RedisServer;

use super::processes::{agent_binary, clean_command, cli_binary, server_binary, Proc};

pub const DEADLINE: Duration = Duration::from_secs(60);

/// What an agent prints each time it evaluates monitors.
pub const TICK: &str = "hawkeye_agent::scheduler: tick";

pub struct Stack {
    pub redis: RedisServer,
    pub smtp: SmtpServer,
    pub dir: tempfile::TempDir,
    pub socket: PathBuf,
    pub monitors: PathBuf,
    pub server: Proc,
}

/// Who the agents are: their mail's sender, subjects and Message-IDs.
const WHO: [(&str, &str); 3] = [
    ("MAIL_FROM", "hawkeye@example.com"),
    ("SERVICE_NAME", "shop"),
    ("ENVIRONMENT", "e2e"),
];

impl Stack {
    /// Redis, SMTP and the server, with `monitors` written for agents.
    pub fn start(monitors: &str) -> Stack {
        let redis = RedisServer::start();
        let smtp = SmtpServer::start();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("monitors.yaml");
        std::fs::write(&path, monitors).unwrap();
        let socket = dir.path().join("hawkeye.sock");
        let mut cmd = clean_command(&server_binary());
        cmd.env("HAWKEYE_SOCKET", &socket)
            .env("REDIS_URL", redis.url())
            .env("HAWKEYE_FLUSH_INTERVAL", "100ms")
            .env("RUST_LOG", "info")
            .current_dir(dir.path());
        let server = Proc::spawn("server", cmd);
        assert!(
            server.wait_for_line("listening", DEADLINE),
            "hawkeye-server did not start"
        );
        Stack {
            redis,
            smtp,
            dir,
            socket,
            monitors: path,
            server,
        }
    }

    /// An agent mailing through `smtp_port`, with `env` on top; waits
    /// until it has started.
    pub fn agent_on(&self, name: &str, smtp_port: u16, env: &[(&str, &str)]) -> Proc {
        let mut cmd = clean_command(&agent_binary());
        cmd.env("MONITOR_CONFIG_FILE", &self.monitors)
            .env("REDIS_URL", self.redis.url())
            .env("HAWKEYE_FLUSH_INTERVAL", "100ms")
            .env("MAILER", "smtp")
            .env("SMTP_HOST", "127.0.0.1")
            .env("SMTP_PORT", smtp_port.to_string())
            .env("SMTP_TLS", "none")
            .envs(WHO)
            .env("RUST_LOG", "info,hawkeye_agent::scheduler=debug")
            .current_dir(self.dir.path());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let agent = Proc::spawn(name, cmd);
        assert!(
            agent.wait_for_line("agent started", DEADLINE),
            "{name} did not start"
        );
        agent
    }

    /// An agent mailing through this stack's SMTP server.
    pub fn agent(&self, name: &str) -> Proc {
        self.agent_on(name, self.smtp.port(), &[])
    }

    /// Sends metric lines to the server; all must be accepted.
    pub fn send(&self, lines: &[&str]) {
        send_lines(&self.socket, lines);
    }

    /// Runs the `hawkeye` command line against this stack's store, with
    /// the agents' settings (a backtest must evaluate as they do).
    pub fn cli(&self, args: &[&str]) -> std::process::Output {
        clean_command(&cli_binary())
            .args(args)
            .env("REDIS_URL", self.redis.url())
            .env("HAWKEYE_FLUSH_INTERVAL", "100ms")
            .envs(WHO)
            .current_dir(self.dir.path())
            .output()
            .expect("run hawkeye")
    }

    /// Waits for at least `n` mails.
    pub fn mails(&self, n: usize) -> Vec<ReceivedMail> {
        self.smtp.wait_for(n, DEADLINE)
    }
}

/// Sends metric lines to the server on `socket`; all must be accepted.
pub fn send_lines(socket: &std::path::Path, lines: &[&str]) {
    let mut stream = UnixStream::connect(socket).expect("connect to hawkeye-server");
    let request =
        serde_json::json!({"jsonrpc": "2.0", "method": "metric.send", "params": lines, "id": 1});
    writeln!(stream, "{request}").unwrap();
    let mut response = String::new();
    BufReader::new(&stream).read_line(&mut response).unwrap();
    let v: serde_json::Value = serde_json::from_str(&response).expect("a JSON-RPC answer");
    assert_eq!(v["result"]["accepted"], lines.len(), "{v}");
}

/// Waits until `agent` has evaluated `more` further ticks than it has now.
pub fn ticks(agent: &Proc, more: usize) {
    let now = agent.count_lines(TICK);
    assert!(
        agent.wait_for_lines(TICK, now + more, DEADLINE),
        "the agent stopped evaluating"
    );
}

pub fn subjects(mails: &[ReceivedMail]) -> Vec<String> {
    mails.iter().map(|m| m.subject()).collect()
}
