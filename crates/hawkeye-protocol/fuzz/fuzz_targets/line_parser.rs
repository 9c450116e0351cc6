//! The metric line parser on any input: it never panics, what it accepts
//! keeps within the limits it was given, and means what was written.

#![no_main]

use hawkeye_protocol::series::SeriesKey;
use hawkeye_protocol::{parse_payload_with, GaugeMode, Limits, Value};
use libfuzzer_sys::fuzz_target;

const LIMITS: Limits = Limits {
    max_tags: 16,
    max_key_bytes: 256,
    gauge_mode: GaugeMode::Statsd,
};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    for (_, parsed) in parse_payload_with(text, LIMITS) {
        let Ok(line) = parsed else {
            continue;
        };
        assert!(!line.values.is_empty());
        assert!(line.tags.len() <= LIMITS.max_tags);
        let key = SeriesKey::new(line.kind, line.name, &line.tags);
        assert!(key.name.len() + key.tags.len() <= LIMITS.max_key_bytes);
        // The stored form of the tags reads back as the same tags.
        let mut back: Vec<(&str, &str)> = key.tag_pairs().collect();
        let mut tags = line.tags.clone();
        back.sort_unstable();
        tags.sort_unstable();
        assert_eq!(back, tags);
        assert!(line.sample_rate > 0.0 && line.sample_rate <= 1.0);
        for value in &line.values {
            match value {
                Value::Number(n) | Value::Delta(n) => assert!(n.is_finite()),
                Value::Member(m) => assert!(!m.is_empty() && m.len() <= LIMITS.max_key_bytes),
            }
        }
        if let Some(t) = line.timestamp {
            assert!(t > 0);
        }
    }
});
