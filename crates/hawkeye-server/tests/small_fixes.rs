//! Three smaller holes: a total past the largest double (refused at the
//! increment instead of reading back as no data), spaces around tags (one
//! series, as in DogStatsD), and an id no client could read back (-32600).

mod common;

use common::process::ServerProcess;
use common::steady::Steady;
use common::{error_code, Client};
use hawkeye_protocol::jsonrpc::code;
use hawkeye_testkit::RedisServer;
use serde_json::json;

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn totals_tags_and_ids() {
    let redis = RedisServer::start();
    let server = ServerProcess::start(&redis, &[]);
    let steady = Steady::start(server.socket(), "steady.small");
    let mut c = Client::connect(&server.socket()).await;

    // Large increments in two seconds add up to a number...
    let t = now() - 30;
    let r = c
        .call(
            "metric.send",
            json!([
                format!("big:1e200|c|T{t}"),
                format!("big:1e200|c|T{}", t + 1)
            ]),
        )
        .await;
    assert_eq!(r["result"]["accepted"], json!(2), "{r}");
    // ...and one that could take a window total past the largest double is
    // refused, so the total still reads back.
    let r = c
        .call("metric.send", json!([format!("big:1e308|c|T{}", t + 2)]))
        .await;
    assert_eq!(error_code(&r), code::INVALID_PARAMS, "{r}");
    assert!(
        r["error"]["message"]
            .as_str()
            .unwrap()
            .contains("out of range"),
        "{r}"
    );
    assert_eq!(
        c.query(json!({"metric": "big", "window": "5m"})).await,
        json!(2e200)
    );

    // Spaces around tags are not part of them.
    let r = c
        .call(
            "metric.send",
            json!([
                "trim:1|c|#env:prod ",
                "trim:1|c|#env:prod",
                "trim:1|c|#route:/a, env:prod"
            ]),
        )
        .await;
    assert_eq!(r["result"], json!({"accepted": 3, "rejected": []}), "{r}");
    let q = |tags| json!({"metric": "trim", "window": "5m", "tags": tags});
    assert_eq!(c.query(q(json!({"env": "prod"}))).await, json!(3.0));
    assert_eq!(
        c.query(q(json!({"env": "prod", "route": "/a"}))).await,
        json!(1.0)
    );

    // An id out of a double's range is not echoed: -32600, id null.
    for id in ["1e6666666", "-1e400"] {
        let line = format!("{{\"jsonrpc\":\"2.0\",\"method\":\"server.ping\",\"id\":{id}}}\n");
        c.send_raw(line.as_bytes()).await;
        let r = c.read().await.unwrap();
        assert_eq!(error_code(&r), code::INVALID_REQUEST, "{r}");
        assert_eq!(r["id"], json!(null));
    }
    c.ping().await;
    steady.finish_exact(&server.socket()).await;
}
