//! Automations: schedules that submit jobs. An automation is a job
//! prototype (task type, input, cluster, retries) and up to
//! [`MAX_TRIGGERS`] cron triggers; each firing submits a job whose root
//! task's input is the prototype's with [`TRIGGER_TIME_FIELD`] set to the
//! firing's time. Times are Unix ms given by the caller; nothing here reads
//! a clock.
//!
//! A trigger is a standard five-field cron expression (`30 2 * * 1-5`,
//! names such as `MON` and `JAN`, `@daily`-style shorthands), evaluated in
//! UTC or in the zone of a `CRON_TZ=Zone` prefix. Across daylight-saving
//! changes: a wall-clock time that happens twice fires once (its first
//! occurrence); a fixed time that does not happen (the hour clocks skip)
//! fires at the first minute after the gap; patterns with wildcards or
//! steps skip the times that do not exist.

use std::str::FromStr;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use croner::Cron;
use croner::parser::{CronParser, Seconds, Year};

use super::{AutomationId, TaskType};

/// Most triggers per automation.
pub const MAX_TRIGGERS: usize = 32;
/// Longest trigger, in bytes.
pub const MAX_TRIGGER_BYTES: usize = 256;
/// The input field that receives the firing's time (RFC 3339, UTC).
pub const TRIGGER_TIME_FIELD: &str = "trigger_time";

/// One parsed cron trigger.
#[derive(Debug, Clone)]
pub struct Trigger {
    cron: Cron,
    zone: Tz,
}

impl Trigger {
    /// Reads `text`: `[CRON_TZ=Zone ]minute hour day-of-month month day-of-week`,
    /// or a shorthand (`@yearly`, `@monthly`, `@weekly`, `@daily`, `@hourly`).
    pub fn parse(text: &str) -> Result<Trigger, String> {
        if text.len() > MAX_TRIGGER_BYTES {
            return Err(format!("a trigger is at most {MAX_TRIGGER_BYTES} bytes"));
        }
        let text = text.trim();
        let (zone, pattern) = match text.strip_prefix("CRON_TZ=") {
            Some(rest) => {
                let (name, pattern) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
                let zone = Tz::from_str(name).map_err(|_| format!("unknown time zone `{name}`"))?;
                (zone, pattern.trim())
            }
            None => (Tz::UTC, text),
        };
        let parser = CronParser::builder().seconds(Seconds::Disallowed).year(Year::Disallowed).build();
        let cron = parser.parse(pattern).map_err(|e| format!("`{text}` is not a cron expression: {e}"))?;
        Ok(Trigger { cron, zone })
    }

    /// The first firing strictly after `after_ms`, if it ever fires.
    pub fn next_after(&self, after_ms: u64) -> Option<u64> {
        let from = self.at(after_ms)?;
        self.cron.find_next_occurrence(&from, false).ok().and_then(|t| to_ms(&t.with_timezone(&Utc)))
    }

    /// The last firing at or before `at_ms`, if any.
    pub fn last_until(&self, at_ms: u64) -> Option<u64> {
        let from = self.at(at_ms)?;
        self.cron.find_previous_occurrence(&from, true).ok().and_then(|t| to_ms(&t.with_timezone(&Utc)))
    }

    /// `ms` (down to the second) in the trigger's zone.
    fn at(&self, ms: u64) -> Option<DateTime<Tz>> {
        let secs = i64::try_from(ms / 1000).ok()?;
        Some(DateTime::from_timestamp(secs, 0)?.with_timezone(&self.zone))
    }
}

fn to_ms(t: &DateTime<Utc>) -> Option<u64> {
    u64::try_from(t.timestamp()).ok()?.checked_mul(1000)
}

/// An automation's triggers, parsed.
#[derive(Debug, Clone)]
pub struct Schedule(Vec<Trigger>);

impl Schedule {
    /// Reads 1 to [`MAX_TRIGGERS`] triggers; each must fire at some time
    /// after `now_ms`. The error names the trigger.
    pub fn parse(texts: &[String], now_ms: u64) -> Result<Schedule, String> {
        if texts.is_empty() || texts.len() > MAX_TRIGGERS {
            return Err(format!("an automation has 1 to {MAX_TRIGGERS} triggers, got {}", texts.len()));
        }
        let mut triggers = Vec::with_capacity(texts.len());
        for (i, text) in texts.iter().enumerate() {
            let trigger = Trigger::parse(text).map_err(|e| format!("trigger {i}: {e}"))?;
            if trigger.next_after(now_ms).is_none() {
                return Err(format!("trigger {i}: `{text}` never fires"));
            }
            triggers.push(trigger);
        }
        Ok(Schedule(triggers))
    }

    /// Reads triggers that were checked when they were stored.
    pub fn parse_stored(texts: &[String]) -> Schedule {
        Schedule(texts.iter().filter_map(|t| Trigger::parse(t).ok()).collect())
    }

    /// The first firing of any trigger strictly after `after_ms`.
    pub fn next_after(&self, after_ms: u64) -> Option<u64> {
        self.0.iter().filter_map(|t| t.next_after(after_ms)).min()
    }

    /// The last firing of any trigger at or before `at_ms`.
    pub fn last_until(&self, at_ms: u64) -> Option<u64> {
        self.0.iter().filter_map(|t| t.last_until(at_ms)).max()
    }
}

/// An automation, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Automation {
    /// Its id.
    pub id: AutomationId,
    /// Its name; also the name of the jobs it submits (and bounded as one).
    pub name: String,
    /// The root task's type.
    pub task_type: TaskType,
    /// The root task's input: a JSON object, without [`TRIGGER_TIME_FIELD`].
    pub input: String,
    /// The root task's cluster.
    pub cluster: String,
    /// Retries of the root task.
    pub max_retries: u32,
    /// Its cron triggers, as given.
    pub triggers: Vec<String>,
    /// Whether firing is paused.
    pub paused: bool,
    /// When it was created (Unix ms).
    pub created_ms: u64,
    /// Every firing up to this time is done: the next is the first after it.
    pub fired_until_ms: u64,
    /// How many jobs it has submitted.
    pub fired: u64,
    /// When it last fired, if it has.
    pub last_fired_ms: Option<u64>,
}

impl Automation {
    /// Its next firing (none while paused).
    pub fn next_at(&self, schedule: &Schedule) -> Option<u64> {
        if self.paused { None } else { schedule.next_after(self.fired_until_ms) }
    }

    /// The firing due at `now_ms`, if one is: the last one at or before it
    /// (firings missed while the host was down fire once, as the latest).
    pub fn due(&self, schedule: &Schedule, now_ms: u64) -> Option<u64> {
        let next = self.next_at(schedule)?;
        (next <= now_ms).then(|| schedule.last_until(now_ms).unwrap_or(next).max(next))
    }

    /// Records a firing at `at_ms`.
    pub fn fire(&mut self, at_ms: u64) {
        self.fired_until_ms = self.fired_until_ms.max(at_ms);
        self.fired += 1;
        self.last_fired_ms = Some(at_ms);
    }

    /// The root task's input for the firing at `at_ms`.
    pub fn input_at(&self, at_ms: u64) -> String {
        let mut input: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(&self.input).unwrap_or_default();
        input.insert(TRIGGER_TIME_FIELD.into(), rfc3339(at_ms).into());
        serde_json::Value::Object(input).to_string()
    }
}

/// Checks an automation's input: a JSON object without
/// [`TRIGGER_TIME_FIELD`] (each firing sets it).
pub fn check_automation_input(input: &serde_json::Value) -> Result<(), String> {
    let Some(fields) = input.as_object() else {
        return Err(format!(
            "input must be a JSON object: its root task receives `{TRIGGER_TIME_FIELD}` in it"
        ));
    };
    if fields.contains_key(TRIGGER_TIME_FIELD) {
        return Err(format!("input must not set `{TRIGGER_TIME_FIELD}`: each firing sets it"));
    }
    Ok(())
}

/// `ms` as RFC 3339 in UTC, whole seconds (`2026-01-01T12:00:00Z`).
pub fn rfc3339(ms: u64) -> String {
    let secs = i64::try_from(ms / 1000).unwrap_or(i64::MAX);
    DateTime::from_timestamp(secs, 0).unwrap_or_default().format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

#[cfg(test)]
mod tests;
