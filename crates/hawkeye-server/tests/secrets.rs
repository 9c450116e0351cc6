//! Secrets never reach the logs: a Redis password given as `?pass=` on a
//! `redis+unix://` URL (here one holding a raw `@`), which the server
//! logged in clear at every start, is shown as `***`, and the server still
//! uses it.

mod common;

use common::process::ServerProcess;
use common::steady::Steady;
use hawkeye_testkit::RedisServer;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_password_in_the_url_is_never_logged() {
    let redis = RedisServer::start();
    assert_eq!(
        redis.cli(&["CONFIG", "SET", "requirepass", "p@ss:w0rd-xyzzy"]),
        "OK"
    );
    let url = format!("{}?pass=p%40ss%3Aw0rd-xyzzy", redis.url());
    let server = ServerProcess::start_with_url(&url, &[("RUST_LOG", "debug")]);
    let steady = Steady::start(server.socket(), "steady.secret");
    // The password works: what the steady client sends is written.
    steady.finish_exact(&server.socket()).await;
    let log = server.log.text();
    assert!(log.contains("opening the store"), "{log}");
    assert!(log.contains("pass=***"), "{log}");
    for secret in ["w0rd", "xyzzy", "p%40ss", "p@ss"] {
        assert!(!log.contains(secret), "the log shows {secret:?}:\n{log}");
    }
}
