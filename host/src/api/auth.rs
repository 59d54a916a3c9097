//! Bearer-token authentication. A token file names admin tokens (the whole
//! API) and runner tokens (only the runner protocol). Every route but
//! `/healthz` needs a token of its kind; comparisons are constant-time and
//! tokens are never logged. With no tokens configured the API is open, which
//! the server allows only on a loopback address.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::header::{AUTHORIZATION, WWW_AUTHENTICATE};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use subtle::ConstantTimeEq;

use super::ApiError;

/// Shortest token accepted in a token file.
pub const MIN_TOKEN_LEN: usize = 16;

/// Who a token belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Users and tools: every route but the runner protocol.
    Admin,
    /// Runner processes: only the runner protocol.
    Runner,
}

impl Role {
    fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Runner => "runner",
        }
    }
}

/// A malformed token file.
#[derive(Debug, thiserror::Error)]
#[error("token file line {line}: {reason}")]
pub struct TokenFileError {
    /// The 1-based line number.
    pub line: usize,
    /// What is wrong with it (never the token itself).
    pub reason: String,
}

/// The configured tokens.
#[derive(Clone, Default)]
pub struct Tokens {
    tokens: Vec<(Role, Vec<u8>)>,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Tokens({} configured)", self.tokens.len())
    }
}

impl Tokens {
    /// Parses a token file: one `admin <token>` or `runner <token>` per line;
    /// blank lines and lines starting with `#` are skipped.
    pub fn parse(text: &str) -> Result<Self, TokenFileError> {
        let mut tokens = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let bad = |reason: &str| TokenFileError { line: i + 1, reason: reason.to_owned() };
            let (role, token) =
                line.split_once(char::is_whitespace).ok_or_else(|| bad("expected `ROLE TOKEN`"))?;
            let role = match role {
                "admin" => Role::Admin,
                "runner" => Role::Runner,
                _ => return Err(bad("the role must be `admin` or `runner`")),
            };
            let token = token.trim();
            if token.len() < MIN_TOKEN_LEN || token.contains(char::is_whitespace) {
                return Err(bad(&format!("a token is one word of at least {MIN_TOKEN_LEN} characters")));
            }
            tokens.push((role, token.as_bytes().to_vec()));
        }
        Ok(Tokens { tokens })
    }

    /// Whether no token is configured (the API is open).
    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }

    /// The role of `presented`, comparing it with every configured token in
    /// constant time.
    fn role_of(&self, presented: &[u8]) -> Option<Role> {
        let mut found = None;
        for (role, token) in &self.tokens {
            if bool::from(token.as_slice().ct_eq(presented)) {
                found = Some(*role);
            }
        }
        found
    }
}

/// Middleware state: the tokens and the role a route group needs.
#[derive(Clone)]
pub struct Guard {
    /// The configured tokens.
    pub tokens: Arc<Tokens>,
    /// The role the guarded routes need.
    pub role: Role,
}

/// Lets the request through only with a bearer token of the guard's role;
/// without tokens, only if no web page of another site could have sent it
/// ([`cross_site`]).
pub async fn require(State(guard): State<Guard>, request: Request, next: Next) -> Response {
    if guard.tokens.is_empty() {
        return match cross_site(request.headers()) {
            Some(refusal) => ApiError::new(StatusCode::FORBIDDEN, "cross_site", refusal).into_response(),
            None => next.run(request).await,
        };
    }
    let presented = request.headers().get(AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(bearer);
    match presented.and_then(|t| guard.tokens.role_of(t.as_bytes())) {
        Some(role) if role == guard.role => next.run(request).await,
        Some(role) => ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!("this route needs a {} token; a {} token was given", guard.role.as_str(), role.as_str()),
        )
        .into_response(),
        None => {
            let mut response =
                ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", "a valid bearer token is required")
                    .into_response();
            response.headers_mut().insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            response
        }
    }
}

/// The token of an `Authorization: Bearer TOKEN` value (the scheme is
/// case-insensitive).
fn bearer(value: &str) -> Option<&str> {
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// Why a token-less host refuses a request a browser may have sent for a
/// page of another site: the open API is reachable from any page the user
/// opens, so a request must name a loopback host (`Host`; a page that
/// rebinds its own name to 127.0.0.1 sends its name) and come from no page,
/// or from a page of this host (`Origin`).
fn cross_site(headers: &axum::http::HeaderMap) -> Option<String> {
    let host = headers.get(axum::http::header::HOST).and_then(|v| v.to_str().ok());
    if let Some(host) = host
        && !is_loopback_authority(host)
    {
        return Some(format!("without API tokens only loopback names are served, not `{host}`"));
    }
    let origin = headers.get(axum::http::header::ORIGIN)?;
    let origin = origin.to_str().unwrap_or("");
    let same = origin.split_once("://").is_some_and(|(_, authority)| Some(authority) == host);
    (!same).then(|| {
        format!("without API tokens requests from web pages of other sites (`{origin}`) are refused")
    })
}

/// Whether `authority` (`host[:port]`) names this machine's loopback.
fn is_loopback_authority(authority: &str) -> bool {
    let host = match authority.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or(""),
        None => authority.rsplit_once(':').map_or(authority, |(h, _)| h),
    };
    host.eq_ignore_ascii_case("localhost")
        || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_files_name_roles() {
        let t = Tokens::parse("# comment\n\nadmin aaaaaaaaaaaaaaaa\nrunner bbbbbbbbbbbbbbbb\n").unwrap();
        assert_eq!(t.role_of(b"aaaaaaaaaaaaaaaa"), Some(Role::Admin));
        assert_eq!(t.role_of(b"bbbbbbbbbbbbbbbb"), Some(Role::Runner));
        assert_eq!(t.role_of(b"aaaaaaaaaaaaaaa"), None);
        assert_eq!(t.role_of(b""), None);
    }

    #[test]
    fn the_bearer_scheme_is_case_insensitive() {
        assert_eq!(bearer("Bearer abc"), Some("abc"));
        assert_eq!(bearer("bearer  abc "), Some("abc"));
        assert_eq!(bearer("Basic abc"), None);
        assert_eq!(bearer("Bearer"), None);
    }

    #[test]
    fn token_less_hosts_refuse_what_other_sites_send() {
        let headers = |pairs: &[(&'static str, &'static str)]| {
            let mut h = axum::http::HeaderMap::new();
            for (k, v) in pairs {
                h.insert(*k, HeaderValue::from_static(v));
            }
            h
        };
        assert_eq!(cross_site(&headers(&[("host", "127.0.0.1:7700")])), None);
        assert_eq!(cross_site(&headers(&[("host", "localhost:7700")])), None);
        assert_eq!(cross_site(&headers(&[("host", "[::1]:7700")])), None);
        assert_eq!(cross_site(&headers(&[])), None);
        let same = [("host", "127.0.0.1:7700"), ("origin", "http://127.0.0.1:7700")];
        assert_eq!(cross_site(&headers(&same)), None);
        let other = [("host", "127.0.0.1:7700"), ("origin", "https://evil.example")];
        assert!(cross_site(&headers(&other)).unwrap().contains("`https://evil.example`"));
        assert!(cross_site(&headers(&[("host", "127.0.0.1:7700"), ("origin", "null")])).is_some());
        assert!(cross_site(&headers(&[("host", "evil.example:7700")])).unwrap().contains("evil.example"));
        assert!(cross_site(&headers(&[("host", "127.0.0.1.evil.example")])).is_some());
    }

    #[test]
    fn bad_token_files_name_the_line_not_the_token() {
        let e = Tokens::parse("admin aaaaaaaaaaaaaaaa\nroot cccccccccccccccc").unwrap_err();
        assert_eq!(e.line, 2);
        let e = Tokens::parse("admin short").unwrap_err();
        assert!(!e.to_string().contains("short"), "{e}");
        assert!(Tokens::parse("admin").is_err());
    }
}
