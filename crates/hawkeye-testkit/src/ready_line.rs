//! Waiting for a process to say it is ready, by reading its output.

use std::io::{BufRead, BufReader, Read};
use std::sync::mpsc;
use std::time::Duration;

/// Reads `output` line by line on a thread until `ready` returns a value for
/// a line, and returns that value; `None` if the output ends first or
/// `timeout` passes. The thread keeps draining the output afterwards, so the
/// process never blocks on a full pipe.
pub fn wait_for_line<R, T, F>(output: R, timeout: Duration, ready: F) -> Option<T>
where
    R: Read + Send + 'static,
    T: Send + 'static,
    F: Fn(&str) -> Option<T> + Send + 'static,
{
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut tx = Some(tx);
        for line in BufReader::new(output).lines().map_while(Result::ok) {
            if tx.is_some() {
                if let Some(value) = ready(&line) {
                    if let Some(tx) = tx.take() {
                        let _ = tx.send(value);
                    }
                }
            }
        }
    });
    rx.recv_timeout(timeout).ok()
}
