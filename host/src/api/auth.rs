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

/// One configured token: its role and, for a runner token, the clusters
/// it may claim tasks of (`None`: any).
#[derive(Clone)]
struct Grant {
    role: Role,
    token: Vec<u8>,
    clusters: Scope,
}

/// The clusters a request may claim tasks of: all of them, unless its
/// runner token was limited (`clusters=` in the token file).
#[derive(Clone, Debug, Default)]
pub struct Scope(Option<Arc<Vec<String>>>);

impl Scope {
    /// Refuses (403 `cluster_not_allowed`) a claim on `cluster` outside it.
    pub fn check(&self, cluster: &str) -> Result<(), ApiError> {
        match &self.0 {
            Some(allowed) if !allowed.iter().any(|c| c == cluster) => Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "cluster_not_allowed",
                format!("this runner token may claim tasks of {} only, not of {cluster}", allowed.join(", ")),
            )),
            _ => Ok(()),
        }
    }
}

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Scope {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _: &S,
    ) -> Result<Self, Self::Rejection> {
        Ok(parts.extensions.get::<Scope>().cloned().unwrap_or_default())
    }
}

/// The configured tokens.
#[derive(Clone, Default)]
pub struct Tokens {
    tokens: Vec<Grant>,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Tokens({} configured)", self.tokens.len())
    }
}

impl Tokens {
    /// Parses a token file: one `admin TOKEN`, `runner TOKEN` or `runner
    /// TOKEN clusters=a,b` per line; blank lines and lines starting with `#`
    /// are skipped.
    pub fn parse(text: &str) -> Result<Self, TokenFileError> {
        let mut tokens = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            tokens.push(grant(line).map_err(|reason| TokenFileError { line: i + 1, reason })?);
        }
        Ok(Tokens { tokens })
    }

    /// Whether no token is configured (the API is open).
    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }

    /// The grant of `presented`, comparing it with every configured token
    /// in constant time.
    fn grant_of(&self, presented: &[u8]) -> Option<&Grant> {
        let mut found = None;
        for grant in &self.tokens {
            if bool::from(grant.token.as_slice().ct_eq(presented)) {
                found = Some(grant);
            }
        }
        found
    }

    #[cfg(test)]
    fn role_of(&self, presented: &[u8]) -> Option<Role> {
        self.grant_of(presented).map(|g| g.role)
    }
}

/// One line of a token file (never naming the token in an error).
fn grant(line: &str) -> Result<Grant, String> {
    let mut words = line.split_whitespace();
    let role = match words.next() {
        Some("admin") => Role::Admin,
        Some("runner") => Role::Runner,
        _ => return Err("the role must be `admin` or `runner`".into()),
    };
    let token = words.next().ok_or("expected `ROLE TOKEN`")?;
    if token.len() < MIN_TOKEN_LEN {
        return Err(format!("a token is one word of at least {MIN_TOKEN_LEN} characters"));
    }
    let clusters = match words.next() {
        None => Scope::default(),
        Some(option) if role == Role::Runner => {
            let list = option
                .strip_prefix("clusters=")
                .ok_or("after a runner token only `clusters=a,b` may follow")?;
            let list: Vec<String> = list.split(',').filter(|c| !c.is_empty()).map(str::to_owned).collect();
            if list.is_empty() {
                return Err("`clusters=` names no cluster".into());
            }
            Scope(Some(Arc::new(list)))
        }
        Some(_) => return Err("an admin token takes no options".into()),
    };
    if words.next().is_some() {
        return Err("too many words".into());
    }
    Ok(Grant { role, token: token.as_bytes().to_vec(), clusters })
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
pub async fn require(State(guard): State<Guard>, mut request: Request, next: Next) -> Response {
    if guard.tokens.is_empty() {
        return match cross_site(request.headers()) {
            Some(refusal) => ApiError::new(StatusCode::FORBIDDEN, "cross_site", refusal).into_response(),
            None => next.run(request).await,
        };
    }
    let presented = request.headers().get(AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(bearer);
    match presented.and_then(|t| guard.tokens.grant_of(t.as_bytes())) {
        Some(grant) if grant.role == guard.role => {
            let scope = grant.clusters.clone();
            request.extensions_mut().insert(scope);
            next.run(request).await
        }
        Some(Grant { role, .. }) => ApiError::new(
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
    fn runner_tokens_may_be_limited_to_clusters() {
        let t = Tokens::parse("runner bbbbbbbbbbbbbbbb clusters=gpu,cpu\nrunner cccccccccccccccc\n").unwrap();
        let limited = &t.grant_of(b"bbbbbbbbbbbbbbbb").unwrap().clusters;
        assert!(limited.check("gpu").is_ok());
        assert!(limited.check("default").is_err());
        assert!(t.grant_of(b"cccccccccccccccc").unwrap().clusters.check("default").is_ok());
        assert!(Tokens::parse("admin aaaaaaaaaaaaaaaa clusters=gpu").is_err());
        assert!(Tokens::parse("runner aaaaaaaaaaaaaaaa clusters=").is_err());
        assert!(Tokens::parse("runner aaaaaaaaaaaaaaaa gpu").is_err());
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
