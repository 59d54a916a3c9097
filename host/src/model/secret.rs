//! Secrets' rules: what a name is, how long a value may be, and redaction,
//! the one function that keeps a secret's value out of what an attempt
//! records (logs, spans, display, error, subtask inputs, output).

use std::borrow::Cow;

use super::{Output, Record};

/// Longest secret value.
pub const MAX_SECRET_BYTES: usize = 64 << 10;
/// Secrets one module may be granted.
pub const MAX_GRANTS: usize = 64;
/// Secrets a host holds.
pub const MAX_SECRETS: usize = 10_000;

/// A secret as listed: never its value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretInfo {
    pub name: String,
    pub created_ms: u64,
    pub updated_ms: u64,
}

/// Checks a secret's name: a letter or `_`, then up to 127 letters,
/// digits or `_` (as environment variables are named).
pub fn check_secret_name(name: &str) -> Result<(), String> {
    let mut chars = name.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    if !first_ok || name.len() > 128 || !chars.all(|c| c.is_ascii_alphanumeric() || c == '_') {
        let shown: String = name.chars().take(64).collect();
        return Err(format!(
            "secret name {shown:?} is invalid: a letter or `_`, then at most 127 letters, digits or `_`"
        ));
    }
    Ok(())
}

/// Checks a secret's value: 1 to [`MAX_SECRET_BYTES`] bytes of UTF-8.
pub fn check_secret_value(value: &[u8]) -> Result<&str, String> {
    if value.is_empty() || value.len() > MAX_SECRET_BYTES {
        return Err(format!(
            "a secret's value has 1 to {MAX_SECRET_BYTES} bytes; this one has {}",
            value.len()
        ));
    }
    std::str::from_utf8(value).map_err(|_| "a secret's value must be UTF-8 text".to_owned())
}

/// `text` with every occurrence of a value of `secrets` (name, value)
/// replaced by `[redacted NAME]`.
pub fn redact<'a>(text: &'a str, secrets: &[(String, String)]) -> Cow<'a, str> {
    let mut out = Cow::Borrowed(text);
    for (name, value) in secrets {
        if !value.is_empty() && out.contains(value.as_str()) {
            out = Cow::Owned(out.replace(value.as_str(), &format!("[redacted {name}]")));
        }
    }
    out
}

/// `bytes` redacted as text (for outputs): bytes that are not UTF-8 are
/// searched as they are.
pub fn redact_bytes(bytes: &[u8], secrets: &[(String, String)]) -> Option<Vec<u8>> {
    let mut out: Option<Vec<u8>> = None;
    for (name, value) in secrets {
        let current = out.as_deref().unwrap_or(bytes);
        let needle = value.as_bytes();
        if needle.is_empty() || !current.windows(needle.len()).any(|w| w == needle) {
            continue;
        }
        let mut replaced = Vec::with_capacity(current.len());
        let mut rest = current;
        while let Some(at) = rest.windows(needle.len()).position(|w| w == needle) {
            replaced.extend_from_slice(&rest[..at]);
            replaced.extend_from_slice(format!("[redacted {name}]").as_bytes());
            rest = &rest[at + needle.len()..];
        }
        replaced.extend_from_slice(rest);
        out = Some(replaced);
    }
    out
}

impl Record {
    /// Replaces every occurrence of a value of `secrets` (name, value) in
    /// what the attempt recorded: log lines, spans, display, subtask
    /// inputs, progress labels, its output.
    pub fn redact(&mut self, secrets: &[(String, String)]) {
        if secrets.is_empty() {
            return;
        }
        let clean = |s: &mut String| {
            if let Cow::Owned(r) = redact(s, secrets) {
                *s = r;
            }
        };
        let clean_pairs = |pairs: &mut Vec<(String, String)>| {
            for (k, v) in pairs {
                clean(k);
                clean(v);
            }
        };
        for log in &mut self.logs {
            clean(&mut log.message);
            clean_pairs(&mut log.fields);
        }
        for span in &mut self.spans {
            clean(&mut span.name);
            clean_pairs(&mut span.attributes);
        }
        self.display.iter_mut().for_each(clean);
        self.subtasks.iter_mut().for_each(|s| clean(&mut s.input));
        let progress = std::mem::take(&mut self.progress);
        self.progress = progress.into_iter().map(|(l, p)| (redact(&l, secrets).into_owned(), p)).collect();
        if let Output::Bytes(bytes) = &mut self.output
            && let Some(r) = redact_bytes(bytes, secrets)
        {
            *bytes = r;
        }
    }
}

/// The forms of `value` to redact: as it is, and as it is written inside a
/// JSON string (where quotes and backslashes are escaped).
pub fn redaction_forms(name: &str, value: &str) -> Vec<(String, String)> {
    let mut forms = vec![(name.to_owned(), value.to_owned())];
    let json = serde_json::to_string(value).unwrap_or_default();
    let escaped = json.get(1..json.len().saturating_sub(1)).unwrap_or_default();
    if escaped != value && !escaped.is_empty() {
        forms.push((name.to_owned(), escaped.to_owned()));
    }
    forms
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_like_environment_variables() {
        for ok in ["API_KEY", "_x", "omdb2", &"A".repeat(128)] {
            check_secret_name(ok).unwrap();
        }
        for bad in ["", "2fa", "a-b", "a b", "ключ", &"A".repeat(129)] {
            assert!(check_secret_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn values_are_bounded_text() {
        assert_eq!(check_secret_value(b"s3cr3t"), Ok("s3cr3t"));
        assert!(check_secret_value(b"").is_err());
        assert!(check_secret_value(&[0xff]).is_err());
        assert!(check_secret_value(&vec![b'x'; MAX_SECRET_BYTES + 1]).is_err());
    }

    #[test]
    fn every_occurrence_is_redacted() {
        let secrets = vec![("KEY".to_owned(), "hunter2".to_owned()), ("B".to_owned(), "xyz".to_owned())];
        assert_eq!(
            redact("key=hunter2, again hunter2; xyz", &secrets),
            "key=[redacted KEY], again [redacted KEY]; [redacted B]"
        );
        assert!(matches!(redact("nothing here", &secrets), Cow::Borrowed(_)));
        assert_eq!(redact_bytes(b"\xffhunter2\xff", &secrets).unwrap(), b"\xff[redacted KEY]\xff");
        assert_eq!(redact_bytes(b"clean", &secrets), None);
    }

    #[test]
    fn a_record_is_redacted_throughout() {
        let mut record = Record::new(std::sync::Arc::default(), 1);
        let secrets = redaction_forms("K", "a\"b");
        record.log(crate::model::LogLevel::Info, "key a\"b", [("f".to_owned(), "a\"b".to_owned())]).unwrap();
        record.set_display("shown a\"b").unwrap();
        record.output = Output::Bytes(br#"{"k":"a\"b"}"#.to_vec());
        record.redact(&secrets);
        assert_eq!(record.logs[0].message, "key [redacted K]");
        assert_eq!(record.logs[0].fields[0].1, "[redacted K]");
        assert_eq!(record.display.as_deref(), Some("shown [redacted K]"));
        assert_eq!(record.output, Output::Bytes(br#"{"k":"[redacted K]"}"#.to_vec()));
    }
}
