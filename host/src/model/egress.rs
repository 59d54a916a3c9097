//! Outbound HTTP grants: which hosts a task may send `wasi:http` requests to.
//! Denied by default. A pattern is an exact host (`api.example.com`), a host
//! and port (`127.0.0.1:8080`), or every subdomain of a domain
//! (`*.example.com`, not the domain itself). A pattern without a port allows
//! the default ports only (80 and 443).

use std::fmt;

/// Longest pattern accepted.
const MAX_PATTERN_LEN: usize = 253 + 7;

/// One allowed destination.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostPattern {
    /// The host, lowercase; for a wildcard, the domain after `*.`.
    host: String,
    wildcard: bool,
    port: Option<u16>,
}

impl HostPattern {
    /// Parses `host`, `host:port` or `*.domain[:port]`.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let bad = |why: &str| format!("allow-list entry {:?}: {why}", raw.escape_debug().to_string());
        if raw.is_empty() || raw.len() > MAX_PATTERN_LEN {
            return Err(bad("must be 1 to 260 characters"));
        }
        let (host, port) = match raw.rsplit_once(':') {
            Some((h, p)) => (h, Some(p.parse::<u16>().map_err(|_| bad("the port is not a number"))?)),
            None => (raw, None),
        };
        let (wildcard, host) = match host.strip_prefix("*.") {
            Some(rest) => (true, rest),
            None => (false, host),
        };
        let valid = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '.';
        if host.is_empty() || !host.chars().all(valid) || host.starts_with('.') || host.ends_with('.') {
            return Err(bad("expected a host name or IPv4 address, `host:port` or `*.domain`"));
        }
        Ok(HostPattern { host: host.to_ascii_lowercase(), wildcard, port })
    }

    /// Whether a request to `host` on `port` matches.
    pub fn allows(&self, host: &str, port: u16) -> bool {
        let port_ok = match self.port {
            Some(p) => p == port,
            None => port == 80 || port == 443,
        };
        let host = host.to_ascii_lowercase();
        let host_ok = if self.wildcard {
            host.strip_suffix(self.host.as_str()).is_some_and(|rest| rest.len() > 1 && rest.ends_with('.'))
        } else {
            host == self.host
        };
        port_ok && host_ok
    }
}

impl fmt::Display for HostPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.wildcard {
            f.write_str("*.")?;
        }
        f.write_str(&self.host)?;
        match self.port {
            Some(p) => write!(f, ":{p}"),
            None => Ok(()),
        }
    }
}

/// Parses a list of patterns.
pub fn parse_allow_list<S: AsRef<str>>(raw: &[S]) -> Result<Vec<HostPattern>, String> {
    raw.iter().map(|s| HostPattern::parse(s.as_ref().trim())).collect()
}

/// Whether `ip` is an address no allow-list entry reaches by name: this
/// machine (loopback, unspecified), its networks (private, shared,
/// link-local: cloud metadata lives there), and other special ranges
/// (multicast, broadcast, documentation, reserved). Only an entry naming the
/// address literally reaches it.
pub fn is_special_address(ip: std::net::IpAddr) -> bool {
    use std::net::IpAddr;
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.is_documentation()
                || a == 0
                || a >= 240
                || (a == 100 && (64..128).contains(&b))
                || (a == 192 && b == 0 && v4.octets()[2] == 0)
                || (a == 198 && (18..20).contains(&b))
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_special_address(IpAddr::V4(v4));
            }
            let first = v6.segments()[0];
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80
                || first == 0x2001 && v6.segments()[1] == 0x0db8
                || first == 0x0064 && v6.segments()[1] == 0xff9b
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn special_addresses_are_this_machine_its_networks_and_reserved_ranges() {
        for special in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "224.0.0.1",
            "192.0.0.8",
            "198.18.0.1",
            "::1",
            "::",
            "fc00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::7f00:1",
        ] {
            assert!(is_special_address(special.parse().unwrap()), "{special}");
        }
        for public in ["93.184.216.34", "1.1.1.1", "2606:4700::1111", "::ffff:8.8.8.8"] {
            assert!(!is_special_address(public.parse().unwrap()), "{public}");
        }
    }

    use super::*;

    fn allows(pattern: &str, host: &str, port: u16) -> bool {
        HostPattern::parse(pattern).unwrap().allows(host, port)
    }

    #[test]
    fn exact_hosts_match_on_default_ports_unless_a_port_is_named() {
        assert!(allows("api.example.com", "API.example.com", 443));
        assert!(allows("api.example.com", "api.example.com", 80));
        assert!(!allows("api.example.com", "api.example.com", 8080));
        assert!(allows("127.0.0.1:8080", "127.0.0.1", 8080));
        assert!(!allows("127.0.0.1:8080", "127.0.0.1", 8081));
        assert!(!allows("example.com", "example.com.evil.net", 443));
        assert!(!allows("example.com", "evilexample.com", 443));
    }

    #[test]
    fn wildcards_match_subdomains_only() {
        assert!(allows("*.example.com", "a.example.com", 443));
        assert!(allows("*.example.com", "a.b.example.com", 443));
        assert!(!allows("*.example.com", "example.com", 443));
        assert!(!allows("*.example.com", "aexample.com", 443));
        assert!(!allows("*.example.com", "a.example.com.evil.net", 443));
    }

    #[test]
    fn malformed_patterns_are_refused() {
        for bad in ["", "*.", "a b", "host:port", "http://x", "a/b", ".example.com", "*.*.x", "x:70000"] {
            assert!(HostPattern::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(HostPattern::parse("*.Example.com:8443").unwrap().to_string(), "*.example.com:8443");
    }
}
