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

/// Lets the request through only with a bearer token of the guard's role.
pub async fn require(State(guard): State<Guard>, request: Request, next: Next) -> Response {
    if guard.tokens.is_empty() {
        return next.run(request).await;
    }
    let presented = request
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
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
    fn bad_token_files_name_the_line_not_the_token() {
        let e = Tokens::parse("admin aaaaaaaaaaaaaaaa\nroot cccccccccccccccc").unwrap_err();
        assert_eq!(e.line, 2);
        let e = Tokens::parse("admin short").unwrap_err();
        assert!(!e.to_string().contains("short"), "{e}");
        assert!(Tokens::parse("admin").is_err());
    }
}
