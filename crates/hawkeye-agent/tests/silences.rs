//! Silences from the command line to the engine: the `hawkeye silence`
//! commands against a real redis-server, and silences that start or end
//! in the middle of an episode.

mod common;

use std::process::Output;

use common::processes::{clean_command, cli_binary};
use hawkeye_testkit::RedisServer;

fn silence(redis: &RedisServer, args: &[&str]) -> Output {
    clean_command(&cli_binary())
        .arg("silence")
        .args(args)
        .env("REDIS_URL", redis.url())
        .output()
        .expect("run hawkeye")
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A silence that would end after the year 9999 cannot be shown as a
/// date: `add` refuses it, and one already stored (by hand, or by an older
/// CLI) is listed with the last date there is instead of crashing `list`.
#[test]
fn a_silence_past_the_year_9999_is_refused_and_never_breaks_list() {
    let redis = RedisServer::start();
    let out = silence(
        &redis,
        &[
            "add",
            "--metric",
            "x",
            "--for",
            "10000000d",
            "--reason",
            "r",
        ],
    );
    assert!(!out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("--for"), "{}", text(&out));

    let stored = r#"{"id":"00000000000000ff","metric":"x","reason":"forever","starts_at":0,"ends_at":864000000000000000}"#;
    redis.cli(&[
        "HSET",
        "hawkeye:{alerts}:silences",
        "00000000000000ff",
        stored,
    ]);
    redis.cli(&[
        "ZADD",
        "hawkeye:{alerts}:silences:ends",
        "864000000000000000",
        "00000000000000ff",
    ]);
    let out = silence(&redis, &["list"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("9999-12-31T23:59:59Z") && text(&out).contains("forever"),
        "{}",
        text(&out)
    );
}
