//! What one attempt records besides its outcome (subtasks, display name,
//! logs, spans, progress), and the one place that checks and bounds it.
//!
//! The in-process sandbox feeds a [`Record`] as the guest calls the host,
//! a remote runner's sandbox does the same on its machine, and the host
//! replays a remote runner's report into a fresh one with the same bounds:
//! so both paths give the same answers. Bounds are in bytes as well as in
//! counts. Text over its bound is truncated; a count over its bound, or the
//! attempt's total bytes over [`Bounds::attempt_bytes`], fails the attempt
//! ([`OverBound`]); an invalid subtask is refused to the guest (a message it
//! gets back from `submit-subtask`).

use std::collections::BTreeMap;

use super::{
    LogEntry, LogLevel, MAX_CACHE_VALUE_BYTES, MAX_TASK_OUTPUT_BYTES, Output, SpanEntry, SubtaskSpec,
    TaskType, now_ms, truncate_display,
};

/// Bounds on what one attempt may record. A bound missing from a serialized
/// set (a runner's config from an older host) takes its default.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct Bounds {
    /// Subtasks one attempt may submit.
    pub subtasks: usize,
    /// Bytes of one subtask's JSON input.
    pub input_bytes: usize,
    /// Dependencies one subtask may name.
    pub dependencies: usize,
    /// Dependencies all subtasks of one attempt may name together.
    pub edges: usize,
    /// Log lines one attempt may record (captured output included).
    pub log_lines: usize,
    /// Spans one attempt may open.
    pub spans: usize,
    /// Fields kept per log line or span; further ones are dropped.
    pub fields: usize,
    /// Bytes of a log message, field value or attribute value; longer ones
    /// are truncated.
    pub text_bytes: usize,
    /// Bytes of a field key, attribute key or span name; longer ones are
    /// truncated.
    pub name_bytes: usize,
    /// Bytes of an attempt's error message; longer ones are truncated.
    pub error_bytes: usize,
    /// Progress labels per attempt, and bytes per label.
    pub progress_labels: usize,
    pub label_bytes: usize,
    /// Everything one attempt records, in bytes: subtask types and inputs,
    /// log lines, spans, display name, progress labels.
    pub attempt_bytes: usize,
    /// Bytes of a computed task's output (at most [`MAX_TASK_OUTPUT_BYTES`]).
    pub task_output_bytes: usize,
    /// Bytes of one job-cache value (at most [`MAX_CACHE_VALUE_BYTES`]).
    pub cache_value_bytes: usize,
    /// Bytes one attempt may write to its job's cache, in all.
    pub cache_attempt_bytes: usize,
}

impl Default for Bounds {
    fn default() -> Self {
        Bounds {
            subtasks: 100_000,
            input_bytes: 1 << 20,
            dependencies: 100_000,
            edges: 1_000_000,
            log_lines: 10_000,
            spans: 10_000,
            fields: 64,
            text_bytes: 16 << 10,
            name_bytes: 256,
            error_bytes: 16 << 10,
            progress_labels: 64,
            label_bytes: 128,
            attempt_bytes: 64 << 20,
            task_output_bytes: 1 << 20,
            cache_value_bytes: 64 << 20,
            cache_attempt_bytes: 1 << 30,
        }
    }
}

/// Keeps at most `max` bytes of `s`, cut at a character boundary.
pub fn truncate_to(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// A count or a size: `1000`, `16KiB`, `64MiB`, `1GiB`.
pub fn parse_amount(text: &str) -> Result<usize, String> {
    let t = text.trim();
    let (digits, unit) = match t.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => t.split_at(i),
        None => (t, ""),
    };
    let scale: usize = match unit.trim() {
        "" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        other => return Err(format!("`{text}`: unknown unit `{other}` (use KiB, MiB or GiB)")),
    };
    let n: usize = digits.parse().map_err(|_| format!("`{text}` is not a number"))?;
    n.checked_mul(scale).filter(|v| *v > 0).ok_or_else(|| format!("`{text}` is out of range"))
}

impl Bounds {
    /// The names [`Bounds::set`] takes.
    pub fn names() -> Vec<String> {
        match serde_json::to_value(Bounds::default()) {
            Ok(serde_json::Value::Object(map)) => map.keys().cloned().collect(),
            _ => Vec::new(),
        }
    }

    /// Sets the bound `name` (a field's name, e.g. `attempt_bytes`) from
    /// `value` (see [`parse_amount`]).
    pub fn set(&mut self, name: &str, value: &str) -> Result<(), String> {
        let amount = parse_amount(value)?;
        let mut fields = serde_json::to_value(&*self).map_err(|e| e.to_string())?;
        let Some(field) = fields.get_mut(name) else {
            return Err(format!("unknown limit `{name}`; the limits are {}", Bounds::names().join(", ")));
        };
        if name == "task_output_bytes" && amount > MAX_TASK_OUTPUT_BYTES {
            return Err(format!("task_output_bytes may be at most {MAX_TASK_OUTPUT_BYTES}"));
        }
        if name == "cache_value_bytes" && amount > MAX_CACHE_VALUE_BYTES {
            return Err(format!("cache_value_bytes may be at most {MAX_CACHE_VALUE_BYTES}"));
        }
        *field = serde_json::Value::from(amount);
        *self = serde_json::from_value(fields).map_err(|e| e.to_string())?;
        Ok(())
    }

    /// `s` as kept in a message or value.
    pub fn text(&self, s: &str) -> String {
        truncate_to(s, self.text_bytes).to_owned()
    }

    /// `s` as kept in a key or name.
    pub fn name(&self, s: &str) -> String {
        truncate_to(s, self.name_bytes).to_owned()
    }

    /// An attempt's error message as kept: truncated, saying so.
    pub fn error(&self, message: &str) -> String {
        if message.len() <= self.error_bytes {
            return message.to_owned();
        }
        format!("{} … ({} bytes in all)", truncate_to(message, self.error_bytes), message.len())
    }
}

/// A bound the attempt went past; it fails with this message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct OverBound(pub String);

/// A subtask as the guest submitted it, before it is checked.
#[derive(Debug)]
pub struct SubtaskRequest<'a> {
    pub name: &'a str,
    pub version: &'a str,
    pub input: &'a str,
    pub depends_on: Vec<u32>,
    pub max_retries: u32,
    pub cluster: Option<&'a str>,
    pub optional: bool,
    pub backoff: Option<super::Backoff>,
}

/// Whether a subtask of this type (on this cluster, if given) may be
/// submitted; `Err` is the message the guest receives.
pub type Admit<'a> = &'a dyn Fn(&TaskType, Option<&str>) -> Result<(), String>;

fn too_large_output(len: usize, limit: usize) -> String {
    format!(
        "the task's output of {len} bytes exceeds the limit of {limit} bytes (`--limit task_output_bytes`)"
    )
}

/// What one attempt has recorded so far, within its bounds.
#[derive(Debug)]
pub struct Record {
    bounds: std::sync::Arc<Bounds>,
    attempt: u32,
    bytes: usize,
    edges: usize,
    pub subtasks: Vec<SubtaskSpec>,
    pub display: Option<String>,
    pub logs: Vec<LogEntry>,
    pub spans: Vec<SpanEntry>,
    open_spans: Vec<usize>,
    /// Progress added, by label: (total, done).
    pub progress: BTreeMap<String, (u64, u64)>,
    /// What the attempt returned, once checked ([`Record::set_output`]).
    pub output: Output,
    /// The task said its failure is permanent: a failed attempt is not
    /// retried.
    pub permanent: bool,
}

impl Record {
    /// An empty record of attempt `attempt`.
    pub fn new(bounds: std::sync::Arc<Bounds>, attempt: u32) -> Self {
        Record {
            bounds,
            attempt,
            bytes: 0,
            edges: 0,
            subtasks: Vec::new(),
            display: None,
            logs: Vec::new(),
            spans: Vec::new(),
            open_spans: Vec::new(),
            progress: BTreeMap::new(),
            output: Output::None,
            permanent: false,
        }
    }

    /// The output to report: the kept one when the attempt `computed` its
    /// task, none when it failed.
    pub fn take_output(&mut self, computed: bool) -> Output {
        if computed { std::mem::take(&mut self.output) } else { Output::None }
    }

    /// Keeps what the attempt returned; `Err` (which fails the attempt) for
    /// bytes over [`Bounds::task_output_bytes`] or a handle of no subtask it
    /// submitted.
    pub fn set_output(&mut self, output: Output) -> Result<(), String> {
        let limit = self.bounds.task_output_bytes;
        match output {
            Output::Bytes(ref b) if b.len() > limit => Err(too_large_output(b.len(), limit)),
            Output::TooLarge(len) => Err(too_large_output(len, limit)),
            Output::OfSubtask(h) if h as usize >= self.subtasks.len() => Err(format!(
                "the task's output is that of subtask handle {h}, but it submitted {} subtasks",
                self.subtasks.len()
            )),
            output => {
                self.output = output;
                Ok(())
            }
        }
    }

    /// The bounds it checks.
    pub fn bounds(&self) -> &std::sync::Arc<Bounds> {
        &self.bounds
    }

    /// Bytes recorded so far.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Counts `n` more bytes against the attempt's budget.
    fn charge(&mut self, n: usize) -> Result<(), OverBound> {
        self.bytes = self.bytes.saturating_add(n);
        if self.bytes > self.bounds.attempt_bytes {
            return Err(OverBound(format!(
                "the attempt recorded more than {} bytes (subtask inputs, logs, spans, display, progress), the limit per attempt",
                self.bounds.attempt_bytes
            )));
        }
        Ok(())
    }

    /// Refuses (for the guest) a subtask with `n` dependencies before they
    /// are copied, when `n` is over the bound.
    pub fn check_dependency_count(&self, n: usize) -> Result<(), String> {
        if n > self.bounds.dependencies {
            return Err(format!(
                "{n} dependencies exceed the limit of {} per subtask",
                self.bounds.dependencies
            ));
        }
        Ok(())
    }

    /// Records a subtask; answers its handle, or why the guest's submission
    /// is refused.
    pub fn submit(
        &mut self,
        s: SubtaskRequest<'_>,
        admit: Admit<'_>,
    ) -> Result<Result<u32, String>, OverBound> {
        if self.subtasks.len() >= self.bounds.subtasks {
            return Err(OverBound(format!("subtask limit of {} per attempt exceeded", self.bounds.subtasks)));
        }
        let spec = match self.check_subtask(s, admit) {
            Ok(spec) => spec,
            Err(refused) => return Ok(Err(refused)),
        };
        self.charge(
            spec.task_type.name.len() + spec.input.len() + spec.cluster.as_ref().map_or(0, String::len),
        )?;
        self.edges += spec.depends_on.len();
        self.subtasks.push(spec);
        Ok(Ok((self.subtasks.len() - 1) as u32))
    }

    fn check_subtask(&self, s: SubtaskRequest<'_>, admit: Admit<'_>) -> Result<SubtaskSpec, String> {
        let task_type = TaskType::new(s.name, s.version).map_err(|e| e.to_string())?;
        let limit = self.bounds.input_bytes;
        if s.input.len() > limit {
            return Err(format!("input of {} bytes exceeds the limit of {limit} bytes", s.input.len()));
        }
        serde_json::from_str::<serde::de::IgnoredAny>(s.input)
            .map_err(|e| format!("input is not valid JSON: {e}"))?;
        self.check_dependencies(&s.depends_on)?;
        if let Some(b) = &s.backoff {
            b.check()?;
        }
        admit(&task_type, s.cluster)?;
        Ok(SubtaskSpec {
            task_type,
            input: s.input.to_owned(),
            depends_on: s.depends_on,
            max_retries: s.max_retries,
            cluster: s.cluster.map(str::to_owned),
            optional: s.optional,
            backoff: s.backoff,
        })
    }

    /// Dependencies name earlier subtasks only, within the bounds.
    fn check_dependencies(&self, depends_on: &[u32]) -> Result<(), String> {
        let issued = self.subtasks.len();
        if let Some(bad) = depends_on.iter().find(|&&h| h as usize >= issued) {
            return Err(format!("depends on subtask handle {bad}, but only {issued} were issued before it"));
        }
        self.check_dependency_count(depends_on.len())?;
        if self.edges + depends_on.len() > self.bounds.edges {
            return Err(format!(
                "the attempt's subtasks would name {} dependencies in all, over the limit of {} per attempt",
                self.edges + depends_on.len(),
                self.bounds.edges
            ));
        }
        Ok(())
    }

    /// Sets the display name (truncated to its bound).
    pub fn set_display(&mut self, name: &str) -> Result<(), OverBound> {
        let kept = truncate_display(name);
        self.charge(kept.len())?;
        self.display = Some(kept);
        Ok(())
    }

    /// Records a log line, now; `fields` beyond the bound are dropped, text
    /// is truncated.
    pub fn log(
        &mut self,
        level: LogLevel,
        message: &str,
        fields: impl IntoIterator<Item = (String, String)>,
    ) -> Result<(), OverBound> {
        self.log_at(now_ms(), level, message, fields)
    }

    /// Records a log line written at `time_ms` (a remote runner's).
    pub fn log_at(
        &mut self,
        time_ms: u64,
        level: LogLevel,
        message: &str,
        fields: impl IntoIterator<Item = (String, String)>,
    ) -> Result<(), OverBound> {
        if self.logs.len() >= self.bounds.log_lines {
            return Err(OverBound(format!(
                "log limit of {} lines per attempt exceeded",
                self.bounds.log_lines
            )));
        }
        let (message, fields) = (self.bounds.text(message), self.fields(fields));
        self.charge(message.len() + fields.iter().map(|(k, v)| k.len() + v.len()).sum::<usize>())?;
        self.logs.push(LogEntry { time_ms, attempt: self.attempt, level, message, fields });
        Ok(())
    }

    fn fields(&self, fields: impl IntoIterator<Item = (String, String)>) -> Vec<(String, String)> {
        let b = &self.bounds;
        fields.into_iter().take(b.fields).map(|(k, v)| (b.name(&k), b.text(&v))).collect()
    }

    /// Opens a span nested in the innermost open one; answers its id.
    pub fn span_enter(
        &mut self,
        name: &str,
        attributes: impl IntoIterator<Item = (String, String)>,
    ) -> Result<u64, OverBound> {
        let now = now_ms();
        let parent = self.open_spans.last().map(|&i| self.spans[i].id);
        let id = self.spans.len() as u64 + 1;
        let span = SpanEntry {
            id,
            parent,
            attempt: self.attempt,
            name: self.bounds.name(name),
            attributes: self.fields(attributes),
            start_ms: now,
            end_ms: now,
        };
        self.push_span(span)?;
        self.open_spans.push(self.spans.len() - 1);
        Ok(id)
    }

    /// Closes a span opened by [`Record::span_enter`]; unknown ids are ignored.
    pub fn span_exit(&mut self, id: u64) {
        if let Some(pos) = self.open_spans.iter().rposition(|&i| self.spans[i].id == id) {
            let index = self.open_spans.remove(pos);
            self.spans[index].end_ms = now_ms();
        }
    }

    /// Gives attributes to an open span (what was learned after it opened),
    /// bounded as [`Record::span_enter`] bounds those given at opening: a
    /// key it has gets the new value, at most `fields` keys in all, every
    /// byte charged to the attempt. Unknown or closed ids are ignored.
    pub fn span_set(
        &mut self,
        id: u64,
        attributes: impl IntoIterator<Item = (String, String)>,
    ) -> Result<(), OverBound> {
        let Some(&index) = self.open_spans.iter().find(|&&i| self.spans[i].id == id) else {
            return Ok(());
        };
        let added = self.fields(attributes);
        self.charge(added.iter().map(|(k, v)| k.len() + v.len()).sum())?;
        let max = self.bounds.fields;
        let span = &mut self.spans[index];
        for (key, value) in added {
            if let Some(slot) = span.attributes.iter_mut().find(|(k, _)| *k == key) {
                slot.1 = value;
            } else if span.attributes.len() < max {
                span.attributes.push((key, value));
            }
        }
        Ok(())
    }

    /// Records a finished span (a remote runner's report), bounded as
    /// [`Record::span_enter`] bounds a new one.
    pub fn push_span(&mut self, mut span: SpanEntry) -> Result<(), OverBound> {
        if self.spans.len() >= self.bounds.spans {
            return Err(OverBound(format!("span limit of {} per attempt exceeded", self.bounds.spans)));
        }
        span.name = self.bounds.name(&span.name);
        span.attributes = self.fields(std::mem::take(&mut span.attributes));
        span.attempt = self.attempt;
        span.end_ms = span.end_ms.max(span.start_ms);
        self.charge(span.name.len() + span.attributes.iter().map(|(k, v)| k.len() + v.len()).sum::<usize>())?;
        self.spans.push(span);
        Ok(())
    }

    /// Closes the spans left open, at `end_ms`.
    pub fn close_open_spans(&mut self, end_ms: u64) {
        for i in self.open_spans.drain(..) {
            self.spans[i].end_ms = end_ms;
        }
    }

    /// Adds to the progress counter `label`.
    pub fn progress(&mut self, label: &str, total: u64, done: u64) -> Result<(), OverBound> {
        let label = truncate_to(label, self.bounds.label_bytes);
        if !self.progress.contains_key(label) {
            if self.progress.len() >= self.bounds.progress_labels {
                return Err(OverBound(format!(
                    "progress limit of {} labels per attempt exceeded",
                    self.bounds.progress_labels
                )));
            }
            self.charge(label.len())?;
        }
        let counter = self.progress.entry(label.to_owned()).or_default();
        counter.0 = counter.0.saturating_add(total);
        counter.1 = counter.1.saturating_add(done);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    fn record(bounds: Bounds) -> Record {
        Record::new(Arc::new(bounds), 1)
    }

    fn request<'a>(input: &'a str, depends_on: Vec<u32>) -> SubtaskRequest<'a> {
        SubtaskRequest {
            name: "Leaf",
            version: "v0.0",
            input,
            depends_on,
            max_retries: 0,
            cluster: None,
            optional: false,
            backoff: None,
        }
    }

    fn any(_: &TaskType, _: Option<&str>) -> Result<(), String> {
        Ok(())
    }

    #[test]
    fn outputs_are_bounded_and_name_only_submitted_subtasks() {
        let mut r = record(Bounds { task_output_bytes: 4, ..Bounds::default() });
        assert_eq!(r.set_output(Output::Bytes(b"12345".to_vec())).unwrap_err(), too_large_output(5, 4));
        assert_eq!(r.set_output(Output::TooLarge(1 << 30)).unwrap_err(), too_large_output(1 << 30, 4));
        assert!(r.set_output(Output::OfSubtask(0)).unwrap_err().contains("it submitted 0 subtasks"));
        r.submit(request("{}", vec![]), &any).unwrap().unwrap();
        assert_eq!(r.set_output(Output::OfSubtask(0)), Ok(()));
        assert_eq!(r.set_output(Output::Bytes(b"1234".to_vec())), Ok(()));
        assert_eq!(r.output, Output::Bytes(b"1234".to_vec()));
        let mut bounds = Bounds::default();
        assert!(bounds.set("task_output_bytes", "65MiB").is_err(), "over the ceiling");
        assert_eq!(bounds.set("task_output_bytes", "64MiB"), Ok(()));
    }

    #[test]
    fn subtasks_are_checked_and_refused_for_the_guest() {
        let mut r = record(Bounds { input_bytes: 10, dependencies: 1, edges: 2, ..Bounds::default() });
        assert_eq!(r.submit(request("{}", vec![]), &any), Ok(Ok(0)));
        let refused = |r: &mut Record, req| r.submit(req, &any).unwrap().unwrap_err();
        assert_eq!(
            refused(&mut r, request("[1,2,3,4,5]", vec![])),
            "input of 11 bytes exceeds the limit of 10 bytes"
        );
        assert!(refused(&mut r, request("{x", vec![])).starts_with("input is not valid JSON"));
        assert_eq!(
            refused(&mut r, request("1", vec![1])),
            "depends on subtask handle 1, but only 1 were issued before it"
        );
        assert_eq!(r.submit(request("1", vec![0]), &any), Ok(Ok(1)));
        assert_eq!(
            refused(&mut r, request("1", vec![0, 1])),
            "2 dependencies exceed the limit of 1 per subtask"
        );
        assert_eq!(r.submit(request("1", vec![1]), &any), Ok(Ok(2)));
        assert_eq!(
            refused(&mut r, request("1", vec![2])),
            "the attempt's subtasks would name 3 dependencies in all, over the limit of 2 per attempt"
        );
        let unknown = |_: &TaskType, _: Option<&str>| Err("unknown task type Leaf".to_owned());
        assert_eq!(r.submit(request("1", vec![]), &unknown), Ok(Err("unknown task type Leaf".into())));
    }

    #[test]
    fn text_is_truncated_and_the_attempt_bytes_are_bounded() {
        let mut r = record(Bounds {
            text_bytes: 4,
            name_bytes: 2,
            fields: 1,
            attempt_bytes: 20,
            ..Bounds::default()
        });
        let fields = vec![("kkkk".to_owned(), "vvvvvv".to_owned()), ("x".into(), "y".into())];
        r.log(LogLevel::Info, "héllo", fields).unwrap();
        assert_eq!(
            (r.logs[0].message.as_str(), &r.logs[0].fields),
            ("hél", &vec![("kk".to_owned(), "vvvv".to_owned())])
        );
        assert_eq!(r.bytes(), 4 + 2 + 4);
        assert_eq!(r.log(LogLevel::Info, "abcd", Vec::new()), Ok(()));
        let over = r.log(LogLevel::Info, "abcd", [("ab".to_owned(), "cd".to_owned())]).unwrap_err();
        assert!(over.0.starts_with("the attempt recorded more than 20 bytes"), "{over}");
    }

    #[test]
    fn bounds_are_set_by_name_with_sizes() {
        let mut b = Bounds::default();
        b.set("attempt_bytes", "32MiB").unwrap();
        b.set("log_lines", "500").unwrap();
        assert_eq!((b.attempt_bytes, b.log_lines), (32 << 20, 500));
        assert!(b.set("log_lines", "0").is_err());
        assert!(b.set("loglines", "5").unwrap_err().starts_with("unknown limit `loglines`; the limits are "));
        assert_eq!(parse_amount("16KiB"), Ok(16384));
        assert!(parse_amount("16kb").is_err());
    }

    #[test]
    fn errors_are_truncated_saying_how_long_they_were() {
        let b = Bounds { error_bytes: 5, ..Bounds::default() };
        assert_eq!(b.error("short"), "short");
        assert_eq!(b.error("longer text"), "longe … (11 bytes in all)");
    }

    #[test]
    fn attributes_set_after_opening_replace_a_key_and_stay_within_the_bounds() {
        let mut r = record(Bounds { fields: 2, attempt_bytes: 64, ..Bounds::default() });
        let pair = |k: &str, v: &str| (k.to_owned(), v.to_owned());
        let id = r.span_enter("fetch", [pair("a", "1")]).unwrap();
        r.span_set(id, [pair("a", "2"), pair("b", "3"), pair("c", "4")]).unwrap();
        assert_eq!(
            r.spans[0].attributes,
            [pair("a", "2"), pair("b", "3")],
            "a replaced, c over the 2 fields"
        );
        r.span_set(99, [pair("d", "5")]).unwrap();
        r.span_exit(id);
        r.span_set(id, [pair("a", "closed")]).unwrap();
        assert_eq!(r.spans[0].attributes[0], pair("a", "2"), "a closed span keeps what it had");
        let id = r.span_enter("more", []).unwrap();
        let refused = r.span_set(id, [pair("k", &"x".repeat(100))]).unwrap_err();
        assert!(refused.0.contains("more than 64 bytes"), "{refused:?}");
    }
}
