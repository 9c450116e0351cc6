//! `CLUSTER NODES` read into what tests need: who is master of which slots,
//! who replicates whom, who has failed.

/// One line of `CLUSTER NODES`, as far as tests need it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeInfo {
    pub id: String,
    pub port: u16,
    pub is_master: bool,
    /// Marked failed (`fail` or `fail?`) by the node asked.
    pub failed: bool,
    /// For a replica, the id of its master.
    pub master_id: Option<String>,
    /// Slot ranges served (masters), inclusive.
    pub slots: Vec<(u16, u16)>,
}

/// Parses `CLUSTER NODES` output.
pub fn parse_cluster_nodes(text: &str) -> Vec<NodeInfo> {
    text.lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            if fields.len() < 8 {
                return None;
            }
            let address = fields[1].split('@').next()?;
            let port = address.rsplit(':').next()?.parse().ok()?;
            let flags: Vec<&str> = fields[2].split(',').collect();
            let slots = fields[8..]
                .iter()
                .filter(|s| !s.starts_with('['))
                .filter_map(|s| match s.split_once('-') {
                    Some((a, b)) => Some((a.parse().ok()?, b.parse().ok()?)),
                    None => s.parse().ok().map(|n| (n, n)),
                })
                .collect();
            Some(NodeInfo {
                id: fields[0].to_string(),
                port,
                is_master: flags.contains(&"master"),
                failed: flags.iter().any(|f| f.starts_with("fail")),
                master_id: (fields[3] != "-").then(|| fields[3].to_string()),
                slots,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_cluster_nodes() {
        let text = "\
07c3 127.0.0.1:30004@31004 slave e7d1 0 1426238317239 4 connected
e7d1 127.0.0.1:30001@31001 myself,master - 0 0 1 connected 0-5460 6000 [5461->-292f]
292f 127.0.0.1:30002@31002 master,fail - 1426238316232 1426238313243 2 disconnected";
        let nodes = parse_cluster_nodes(text);
        assert_eq!(nodes.len(), 3);
        assert_eq!(nodes[0].master_id.as_deref(), Some("e7d1"));
        assert!(!nodes[0].is_master);
        assert_eq!(nodes[1].slots, vec![(0, 5460), (6000, 6000)]);
        assert!(nodes[1].is_master && !nodes[1].failed);
        assert!(nodes[2].failed);
        assert_eq!(nodes[2].port, 30002);
    }
}
