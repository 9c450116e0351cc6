//! Alert states are read through the state index (`P:{alerts}:states`), on
//! a real redis-server: a tick with no alert in progress reads no state
//! key, states written are found, expired ones are pruned from the index,
//! and the prune never drops a key that exists (docs/alerts.md, "Where
//! states live").

use std::time::Duration;

use hawkeye_store::{AlertCommit, AlertRead, RedisConfig, RedisStore, Store};
use hawkeye_testkit::RedisServer;

const INDEX: &str = "hk:{alerts}:states";

fn store(server: &RedisServer) -> RedisStore {
    RedisStore::new(RedisConfig::new(
        server.url(),
        "hk",
        Duration::from_secs(3600),
    ))
    .unwrap()
}

fn read_of(keys: &[String]) -> AlertRead {
    AlertRead {
        keys: keys.to_vec(),
        marker: "m".into(),
        marker_ttl: Duration::from_secs(60),
        now_ms: 0,
    }
}

async fn write_state(store: &RedisStore, key: &str, state: &str) {
    let commit = AlertCommit {
        key: key.into(),
        expected: None,
        new: Some(state.into()),
        ttl: Duration::from_secs(600),
        outbox: Vec::new(),
    };
    assert!(
        store.commit_alert(&commit).await.unwrap(),
        "commit of {key}"
    );
}

fn index_members(server: &RedisServer) -> Vec<String> {
    let mut members: Vec<String> = server
        .cli(&["SMEMBERS", INDEX])
        .lines()
        .map(str::to_string)
        .filter(|l| !l.is_empty())
        .collect();
    members.sort();
    members
}

#[tokio::test]
async fn a_read_with_no_alert_in_progress_reads_no_state_key() {
    let server = RedisServer::start();
    let store = store(&server);
    let keys: Vec<String> = (0..10_000)
        .map(|i| format!("v2|svc|prod|m=m{i}|#1"))
        .collect();

    let snapshot = store.read_alerts(&read_of(&keys)).await.unwrap();

    assert_eq!(snapshot.states.len(), keys.len());
    assert!(snapshot.states.iter().all(Option::is_none));
    assert_eq!(
        server.command_calls("mget"),
        0,
        "absent states were read one by one"
    );
    // The marker script's own GET is the only one.
    assert_eq!(server.command_calls("get"), 1);
}

#[tokio::test]
async fn states_are_found_through_the_index_and_expired_ones_pruned() {
    let server = RedisServer::start();
    let store = store(&server);
    let keys: Vec<String> = (0..1_000).map(|i| format!("k{i}")).collect();
    write_state(&store, "k7", "seven").await;
    write_state(&store, "k500", "five hundred").await;
    write_state(&store, "k999", "last").await;
    write_state(&store, "not-mine", "another agent's").await;

    let snapshot = store.read_alerts(&read_of(&keys)).await.unwrap();
    let found: Vec<(usize, &str)> = snapshot
        .states
        .iter()
        .enumerate()
        .filter_map(|(i, s)| s.as_deref().map(|s| (i, s)))
        .collect();
    assert_eq!(
        found,
        vec![(7, "seven"), (500, "five hundred"), (999, "last")]
    );

    // k500's state expires (DEL does what expiry does: the key goes, its
    // index entry stays).
    server.cli(&["DEL", "hk:{alerts}:state:k500"]);
    assert_eq!(index_members(&server).len(), 4);
    let snapshot = store.read_alerts(&read_of(&keys)).await.unwrap();
    assert_eq!(snapshot.states[500], None);
    assert_eq!(snapshot.states[7].as_deref(), Some("seven"));
    assert_eq!(
        index_members(&server),
        vec![
            "hk:{alerts}:state:k7".to_string(),
            "hk:{alerts}:state:k999".to_string(),
            "hk:{alerts}:state:not-mine".to_string(),
        ],
        "the expired state's key was not pruned from the index"
    );

    // The listing (`hawkeye alerts`) reads the same index.
    let listed = store.alert_states("k").await.unwrap();
    assert_eq!(
        listed,
        vec![
            ("k7".to_string(), "seven".to_string()),
            ("k999".to_string(), "last".to_string()),
        ]
    );
}

#[tokio::test]
async fn the_prune_keeps_a_key_written_again_after_it_was_found_missing() {
    let server = RedisServer::start();
    let script = include_str!("../src/redis_store/scripts/alerts/prune_index.lua");
    let (gone, back) = ("hk:{alerts}:state:gone", "hk:{alerts}:state:back");
    server.cli(&["SADD", INDEX, gone, back]);
    // `back` was found missing by a read, then an agent wrote it again
    // before the read's prune ran.
    server.cli(&["SET", back, "firing"]);

    let removed = server.cli(&["EVAL", script, "3", INDEX, gone, back]);

    assert_eq!(removed.trim(), "1");
    assert_eq!(index_members(&server), vec![back.to_string()]);
}
