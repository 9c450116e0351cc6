//! Monitors files that tests of several crates share (the agent's library
//! tests and the `hawkeye` command's), so that one fixture says what they
//! both check.

/// A monitors file with one monitor, `errors` (a counter, checked every
/// 10 s over 10 s), and one trigger, `warn`: more than 3 in a window mails
/// oncall@example.com, and its resolution too. `trigger_keys` are more
/// keys of the trigger, `key: value` each (`for: 2`, `notifier` is a
/// monitor key: write it with `str::replace` on `"    triggers:"`).
pub fn errors_monitor(trigger_keys: &[&str]) -> String {
    let mut yaml = String::from(
        "version: 1
monitors:
  - id: errors
    metric: errors
    interval: 10s
    triggers:
      - id: warn
        threshold: 3
        send_resolved: true
        to: [oncall@example.com]
",
    );
    for key in trigger_keys {
        yaml.push_str("        ");
        yaml.push_str(key);
        yaml.push('\n');
    }
    yaml
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn more_trigger_keys_go_under_the_trigger() {
        let yaml = errors_monitor(&["for: 2"]);
        assert!(yaml.ends_with("        to: [oncall@example.com]\n        for: 2\n"));
        assert_eq!(errors_monitor(&[]).lines().count(), 10);
    }
}
