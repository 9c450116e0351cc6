//! The cluster helper itself: it forms, and its faults do what they say.

use hawkeye_testkit::RedisCluster;

#[test]
fn forms_fails_over_and_moves_slots() {
    let mut cluster = RedisCluster::start();
    let nodes = cluster.nodes();
    assert_eq!(nodes.iter().filter(|n| n.is_master).count(), 3);
    assert_eq!(nodes.iter().filter(|n| !n.is_master).count(), 3);

    // A key written through its master is found after a slot move.
    let slot = cluster.key_slot("{moved}");
    let owner = cluster.master_of_slot(slot);
    assert_eq!(cluster.cli(owner.port, &["SET", "{moved}", "1"]), "OK");
    let target = nodes
        .iter()
        .find(|n| n.is_master && n.id != owner.id)
        .unwrap()
        .port;
    cluster.migrate_slot(slot, target, 1);
    cluster.wait_healthy();
    assert_eq!(cluster.master_of_slot(slot).port, target);
    assert_eq!(cluster.cli(target, &["GET", "{moved}"]), "1");

    // A graceful failover swaps master and replica.
    let replica = cluster.replica_of(&cluster.master_of_slot(slot).id);
    cluster.failover(replica.port);
    cluster.wait_healthy();
    assert_eq!(cluster.master_of_slot(slot).port, replica.port);

    // A killed master is replaced by its replica.
    let master = cluster.master_of_slot(slot);
    let replica = cluster.replica_of(&master.id);
    cluster.kill(master.port);
    cluster.wait_healthy();
    assert_eq!(cluster.master_of_slot(slot).port, replica.port);
    assert_eq!(cluster.cli(replica.port, &["GET", "{moved}"]), "1");
}
