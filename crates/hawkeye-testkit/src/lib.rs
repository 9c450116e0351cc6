//! Real processes for tests. Each helper starts the real program on a
//! temporary path, waits for the line the program prints when it is ready
//! (no sleeps), and stops it when dropped.

pub mod cluster_nodes;
pub mod monitors;
pub mod proc_cpu;
pub mod progress;
pub mod prometheus;
pub mod ready_line;
pub mod redis_cluster;
pub mod redis_server;
pub mod signal;
pub mod smtp_server;

pub use progress::{eventually, Progress};
pub use prometheus::{http_get, Prometheus};
pub use ready_line::wait_for_line;
pub use redis_cluster::{ClusterOptions, RedisCluster};
pub use redis_server::RedisServer;
pub use signal::send_signal;
