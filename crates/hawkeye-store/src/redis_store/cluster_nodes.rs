//! Where the nodes of a cluster are: read from `CLUSTER NODES`, and turned
//! into URLs like the configured seed, to connect again when the seeds are
//! gone.

/// The `host`, `port` of every node in a `CLUSTER NODES` reply.
pub(crate) fn node_addresses(text: &str) -> impl Iterator<Item = (&str, u16)> {
    text.lines().filter_map(|line| {
        let address = line.split_whitespace().nth(1)?.split(['@', ',']).next()?;
        let (host, port) = address.rsplit_once(':')?;
        let port: u16 = port.parse().ok()?;
        (!host.is_empty() && port != 0).then_some((host, port))
    })
}

/// `url` (scheme, credentials, database, options) pointed at `host:port`.
pub(crate) fn with_address(url: &str, host: &str, port: u16) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    if scheme.contains("unix") {
        return None;
    }
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    let userinfo = authority
        .rsplit_once('@')
        .map(|(u, _)| format!("{u}@"))
        .unwrap_or_default();
    let host = if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_string()
    };
    Some(format!("{scheme}://{userinfo}{host}:{port}{tail}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_urls_keep_scheme_credentials_and_options() {
        assert_eq!(
            with_address("rediss://u:p@seed:7000/0?protocol=3", "10.0.0.2", 7001).as_deref(),
            Some("rediss://u:p@10.0.0.2:7001/0?protocol=3")
        );
        assert_eq!(
            with_address("redis://seed:7000", "::1", 7002).as_deref(),
            Some("redis://[::1]:7002")
        );
        assert_eq!(with_address("redis+unix:///tmp/r.sock", "h", 1), None);
    }

    #[test]
    fn cluster_nodes_addresses() {
        let text = "\
a 127.0.0.1:30001@40001,host1 myself,master - 0 0 1 connected 0-5460
b :0@0 master,noaddr - 0 0 2 disconnected
c 10.1.2.3:6379@16379 slave a 0 0 1 connected";
        let got: Vec<(&str, u16)> = node_addresses(text).collect();
        assert_eq!(got, vec![("127.0.0.1", 30001), ("10.1.2.3", 6379)]);
    }
}
