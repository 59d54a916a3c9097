//! W3C trace context for jobs, and the trace and span ids of everything a job
//! records. Ids are derived from job and task ids, so the host stores only
//! the `traceparent` a client passed (if any) and every export of the same
//! attempt names the same span.

use std::fmt;
use std::str::FromStr;

use super::{JobId, TaskId};

/// A W3C `traceparent`: `00-<trace id>-<parent span id>-<flags>`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TraceParent {
    /// The trace, 16 bytes, not all zero.
    pub trace_id: [u8; 16],
    /// The span this one is a child of, 8 bytes, not all zero.
    pub parent_id: [u8; 8],
    /// The trace flags; bit 0 is "sampled".
    pub flags: u8,
}

/// Why a `traceparent` was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error(
    "invalid traceparent `{0}`: expected 00-<32 hex digits>-<16 hex digits>-<2 hex digits>, ids not all zero"
)]
pub struct ParseTraceParentError(pub String);

impl FromStr for TraceParent {
    type Err = ParseTraceParentError;

    /// Parses version 00, and the first four fields of a later version as
    /// the specification asks (version `ff` is invalid).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || ParseTraceParentError(s.chars().take(80).collect());
        let head = s.get(..55).ok_or_else(bad)?;
        let rest = &s[55..];
        let mut parts = head.split('-');
        let (Some(version), Some(trace), Some(parent), Some(flags), None) =
            (parts.next(), parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(bad());
        };
        let version = lower_hex::<1>(version).ok_or_else(bad)?[0];
        if version == 0xff
            || (version == 0 && !rest.is_empty())
            || (version > 0 && !rest.starts_with('-') && !rest.is_empty())
        {
            return Err(bad());
        }
        let trace_id = lower_hex::<16>(trace).filter(|t| *t != [0; 16]).ok_or_else(bad)?;
        let parent_id = lower_hex::<8>(parent).filter(|p| *p != [0; 8]).ok_or_else(bad)?;
        let flags = lower_hex::<1>(flags).ok_or_else(bad)?[0];
        Ok(TraceParent { trace_id, parent_id, flags })
    }
}

impl fmt::Display for TraceParent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "00-{}-{}-{:02x}", hex::encode(self.trace_id), hex::encode(self.parent_id), self.flags)
    }
}

/// `N` bytes from exactly `2 * N` lowercase hex digits.
fn lower_hex<const N: usize>(s: &str) -> Option<[u8; N]> {
    if s.len() != 2 * N || !s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
        return None;
    }
    let mut out = [0u8; N];
    hex::decode_to_slice(s, &mut out).ok()?;
    Some(out)
}

/// Where a job sits in a trace: its trace id, its own span id, the span of
/// the client that submitted it (if the client passed a `traceparent`), and
/// the flags to propagate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct JobTrace {
    /// The trace every span of the job belongs to.
    pub trace_id: [u8; 16],
    /// The job's span.
    pub span_id: [u8; 8],
    /// The submitting client's span, the parent of the job's.
    pub parent_id: Option<[u8; 8]>,
    /// Trace flags.
    pub flags: u8,
}

impl JobTrace {
    /// The trace of `job`: continuing the client's when it passed one, else
    /// a trace of its own whose id is the job id's bytes (sampled).
    pub fn new(job: JobId, given: Option<&TraceParent>) -> Self {
        let span_id = derive(&[b"J", job.as_bytes()]);
        match given {
            Some(p) => {
                JobTrace { trace_id: p.trace_id, span_id, parent_id: Some(p.parent_id), flags: p.flags }
            }
            None => JobTrace { trace_id: *job.as_bytes(), span_id, parent_id: None, flags: 1 },
        }
    }

    /// The `traceparent` naming the job's span, for whatever it calls.
    pub fn traceparent(&self) -> TraceParent {
        TraceParent { trace_id: self.trace_id, parent_id: self.span_id, flags: self.flags }
    }

    /// Whether the trace is sampled (flag bit 0).
    pub fn sampled(&self) -> bool {
        self.flags & 1 == 1
    }
}

/// The span of attempt `attempt` of `task`.
pub fn attempt_span_id(task: TaskId, attempt: u32) -> [u8; 8] {
    derive(&[b"A", task.as_bytes(), &attempt.to_be_bytes()])
}

/// The span a guest opened with id `id` during attempt `attempt` of `task`;
/// id 0 is the attempt's own span.
pub fn guest_span_id(task: TaskId, attempt: u32, id: u64) -> [u8; 8] {
    if id == 0 {
        return attempt_span_id(task, attempt);
    }
    derive(&[b"G", task.as_bytes(), &attempt.to_be_bytes(), &id.to_be_bytes()])
}

/// A non-zero 8-byte id from `parts` (FNV-1a, then a 64-bit finalizer so
/// nearby inputs give unrelated ids). Stable across releases: exported ids
/// must not change when the host is upgraded.
fn derive(parts: &[&[u8]]) -> [u8; 8] {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for b in *part {
            h = (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^= h >> 33;
    h.max(1).to_be_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn parses_and_prints_version_00() {
        let p: TraceParent = GOOD.parse().unwrap();
        assert_eq!(p.trace_id[0], 0x4b);
        assert_eq!(p.parent_id, [0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7]);
        assert_eq!(p.flags, 1);
        assert_eq!(p.to_string(), GOOD);
    }

    #[test]
    fn refuses_what_the_specification_refuses() {
        for bad in [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "0x-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00_4bf92f3577b34da6a3ce929d0e0e4736_00f067aa0ba902b7_01",
            "00-4bf92f3577b34da6a3ce929d0e0e473é-00f067aa0ba902b7-01",
        ] {
            assert!(bad.parse::<TraceParent>().is_err(), "{bad}");
        }
    }

    #[test]
    fn accepts_a_later_version_with_more_fields() {
        let later = "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00-what-comes-next";
        let p: TraceParent = later.parse().unwrap();
        assert_eq!(p.flags, 0);
    }

    #[test]
    fn a_job_continues_the_clients_trace_or_starts_its_own() {
        let job = JobId::new();
        let given: TraceParent = GOOD.parse().unwrap();
        let t = JobTrace::new(job, Some(&given));
        assert_eq!((t.trace_id, t.parent_id, t.flags), (given.trace_id, Some(given.parent_id), 1));
        let own = JobTrace::new(job, None);
        assert_eq!((own.trace_id, own.parent_id), (*job.as_bytes(), None));
        assert_eq!(own.span_id, t.span_id, "the job's span does not depend on the client");
        assert_eq!(own.traceparent().parent_id, own.span_id);
    }

    #[test]
    fn span_ids_are_stable_and_distinct() {
        let task = TaskId::from_bytes([7; 16]);
        assert_eq!(guest_span_id(task, 1, 0), attempt_span_id(task, 1));
        let ids = [
            attempt_span_id(task, 1),
            attempt_span_id(task, 2),
            guest_span_id(task, 1, 1),
            guest_span_id(task, 2, 1),
        ];
        for (i, a) in ids.iter().enumerate() {
            assert_ne!(*a, [0; 8]);
            assert!(ids[i + 1..].iter().all(|b| a != b));
        }
        assert_eq!(attempt_span_id(task, 1), attempt_span_id(TaskId::from_bytes([7; 16]), 1));
    }
}
