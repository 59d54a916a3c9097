//! The job cache's rules: what a key is, how big a value may be, how much
//! one attempt may write. Every path into the cache (a guest's call, a
//! remote runner's request, the API) checks through these functions.
//!
//! A key is 1 to [`MAX_KEY_BYTES`] bytes of UTF-8 without control
//! characters, made of segments separated by `/` (no empty segment, no `.`
//! or `..` segment). A group is a key prefix: `pages/` is the group of
//! `pages/1` and `pages/2`, and listing a group that ends at a `/` reads only
//! that group.

/// Longest key.
pub const MAX_KEY_BYTES: usize = 1024;
/// Most bytes one read or write call moves; values are streamed in chunks
/// of at most this size.
pub const CACHE_CHUNK_BYTES: usize = 1 << 20;
/// Most keys one listing answers; the next page starts after the last.
pub const MAX_LIST_KEYS: usize = 1000;
/// The most `cache_value_bytes` may be set to.
pub const MAX_CACHE_VALUE_BYTES: usize = 1 << 30;

/// A checked cache key (also a checked group prefix, see [`check_prefix`]).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CacheKey(String);

impl CacheKey {
    /// `key` if it is a valid key, else a message saying why not.
    pub fn parse(key: &str) -> Result<CacheKey, String> {
        if key.is_empty() {
            return Err("a cache key must not be empty".to_owned());
        }
        check_text(key)?;
        if let Some(bad) = key.split('/').find(|s| s.is_empty() || *s == "." || *s == "..") {
            return Err(format!(
                "cache key `{}` has an empty, `.` or `..` segment (`{bad}`); segments are separated by single `/`",
                key.escape_debug()
            ));
        }
        Ok(CacheKey(key.to_owned()))
    }

    /// The key's text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Its segments.
    pub fn segments(&self) -> impl Iterator<Item = &str> {
        self.0.split('/')
    }
}

impl std::fmt::Display for CacheKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Checks a listing prefix: empty (the whole cache), or text a key may
/// start with.
pub fn check_prefix(prefix: &str) -> Result<(), String> {
    check_text(prefix)
}

fn check_text(text: &str) -> Result<(), String> {
    if text.len() > MAX_KEY_BYTES {
        return Err(format!("a cache key has at most {MAX_KEY_BYTES} bytes; this one has {}", text.len()));
    }
    if text.chars().any(char::is_control) {
        return Err(format!("cache key `{}` contains a control character", text.escape_debug()));
    }
    Ok(())
}

/// The size of one value, checked against `max` (the host's
/// `cache_value_bytes`).
pub fn check_value_size(key: &CacheKey, size: u64, max: usize) -> Result<(), String> {
    if size > max as u64 {
        return Err(format!(
            "cache value `{key}` exceeds the limit of {max} bytes per value ({size} bytes or more written)"
        ));
    }
    Ok(())
}

/// What one attempt wrote to the cache, `more` bytes after `written`,
/// checked against `max` (the host's `cache_attempt_bytes`).
pub fn check_attempt_writes(written: u64, more: u64, max: usize) -> Result<u64, String> {
    let total = written.saturating_add(more);
    if total > max as u64 {
        return Err(format!("this attempt would write more than {max} bytes to the job cache"));
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_segments_of_text() {
        for ok in ["a", "pages/1", "movies/The Matrix (1999)", "x.y/z", "%20/#?", "ключ/値"] {
            assert_eq!(CacheKey::parse(ok).unwrap().as_str(), ok);
        }
        for bad in ["", "/a", "a/", "a//b", "./a", "a/../b", "a\nb", "\u{0}"] {
            assert!(CacheKey::parse(bad).is_err(), "{bad:?} was accepted");
        }
        assert!(CacheKey::parse(&"k".repeat(MAX_KEY_BYTES)).is_ok());
        let long = CacheKey::parse(&"k".repeat(MAX_KEY_BYTES + 1)).unwrap_err();
        assert!(long.contains("at most 1024 bytes"), "{long}");
    }

    #[test]
    fn prefixes_may_be_partial() {
        for ok in ["", "pages/", "pag", "a//"] {
            check_prefix(ok).unwrap();
        }
        assert!(check_prefix("a\tb").is_err());
    }

    #[test]
    fn sizes_are_bounded() {
        let key = CacheKey::parse("k").unwrap();
        check_value_size(&key, 10, 10).unwrap();
        assert!(check_value_size(&key, 11, 10).unwrap_err().contains("limit of 10 bytes"));
        assert_eq!(check_attempt_writes(5, 5, 10), Ok(10));
        assert!(check_attempt_writes(5, 6, 10).is_err());
        assert!(check_attempt_writes(u64::MAX, 1, 10).is_err());
    }
}
