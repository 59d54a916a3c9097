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

#[cfg(test)]
mod tests {
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
