//! Triggers across zones and daylight-saving changes, and the firing rules.

use super::*;

/// Unix ms of an RFC 3339 time.
fn ms(t: &str) -> u64 {
    let t: DateTime<Utc> = t.parse().unwrap();
    u64::try_from(t.timestamp_millis()).unwrap()
}

fn next(trigger: &str, after: &str) -> String {
    rfc3339(Trigger::parse(trigger).unwrap().next_after(ms(after)).unwrap())
}

#[test]
fn five_fields_and_shorthands_in_utc() {
    assert_eq!(next("0 12 * * *", "2026-01-01T11:59:58Z"), "2026-01-01T12:00:00Z");
    assert_eq!(next("0 12 * * *", "2026-01-01T12:00:00Z"), "2026-01-02T12:00:00Z", "strictly after");
    assert_eq!(next("0 12 * * *", "2026-01-01T12:00:00.500Z"), "2026-01-02T12:00:00Z");
    assert_eq!(next("@daily", "2026-01-01T11:00:00Z"), "2026-01-02T00:00:00Z");
    assert_eq!(next("@hourly", "2026-01-01T11:00:00Z"), "2026-01-01T12:00:00Z");
    assert_eq!(
        next("*/10 * * * MON-FRI", "2026-01-03T09:00:00Z"),
        "2026-01-05T00:00:00Z",
        "Saturday to Monday"
    );
    assert_eq!(next("0 0 1 JAN *", "2026-06-01T00:00:00Z"), "2027-01-01T00:00:00Z");
}

#[test]
fn a_zone_prefix_evaluates_in_that_zone() {
    // 09:00 in Tokyo (UTC+9, no daylight saving) is 00:00 UTC.
    assert_eq!(next("CRON_TZ=Asia/Tokyo 0 9 * * *", "2026-01-01T01:00:00Z"), "2026-01-02T00:00:00Z");
    // Berlin in winter is UTC+1, in summer UTC+2.
    assert_eq!(next("CRON_TZ=Europe/Berlin 0 9 * * *", "2026-01-10T00:00:00Z"), "2026-01-10T08:00:00Z");
    assert_eq!(next("CRON_TZ=Europe/Berlin 0 9 * * *", "2026-07-10T00:00:00Z"), "2026-07-10T07:00:00Z");
}

#[test]
fn a_time_the_clocks_skip_fires_right_after_the_gap() {
    // 2026-03-29 in Berlin: 02:00 CET becomes 03:00 CEST (01:00 UTC).
    let t = "CRON_TZ=Europe/Berlin 30 2 * * *";
    assert_eq!(
        next(t, "2026-03-28T12:00:00Z"),
        "2026-03-29T01:00:00Z",
        "03:00 CEST, the first time after the gap"
    );
    assert_eq!(next(t, "2026-03-29T01:00:00Z"), "2026-03-30T00:30:00Z", "back to 02:30 CEST the next day");
    // A pattern with steps skips the times that do not exist.
    let every = Trigger::parse("CRON_TZ=Europe/Berlin */30 * * * *").unwrap();
    let after_130 = every.next_after(ms("2026-03-29T00:30:00Z")).unwrap(); // 01:30 CET
    assert_eq!(rfc3339(after_130), "2026-03-29T01:00:00Z", "02:00 and 02:30 do not exist; 03:00 CEST");
}

#[test]
fn a_time_that_happens_twice_fires_once() {
    // 2026-10-25 in Berlin: 03:00 CEST becomes 02:00 CET; 02:30 happens at
    // 00:30 UTC and again at 01:30 UTC.
    let t = Trigger::parse("CRON_TZ=Europe/Berlin 30 2 * * *").unwrap();
    let first = t.next_after(ms("2026-10-24T12:00:00Z")).unwrap();
    assert_eq!(rfc3339(first), "2026-10-25T00:30:00Z");
    assert_eq!(rfc3339(t.next_after(first).unwrap()), "2026-10-26T01:30:00Z", "not again at 01:30 UTC");
}

#[test]
fn bad_triggers_are_refused_with_their_reason() {
    let err = |texts: &[&str]| {
        let texts: Vec<String> = texts.iter().map(|t| t.to_string()).collect();
        Schedule::parse(&texts, ms("2026-01-01T00:00:00Z")).unwrap_err()
    };
    assert!(
        err(&["0 12 * *"]).starts_with("trigger 0: `0 12 * *` is not a cron expression"),
        "{}",
        err(&["0 12 * *"])
    );
    assert!(err(&["* * * * *", "61 * * * *"]).starts_with("trigger 1:"));
    assert!(err(&["0 0 0 * * *"]).contains("is not a cron expression"), "seconds are not standard cron");
    assert_eq!(err(&["CRON_TZ=Mars/Olympus 0 9 * * *"]), "trigger 0: unknown time zone `Mars/Olympus`");
    assert_eq!(err(&[]), "an automation has 1 to 32 triggers, got 0");
    assert_eq!(err(&["@daily"; 33]), "an automation has 1 to 32 triggers, got 33");
    let started = std::time::Instant::now();
    assert_eq!(err(&["0 0 31 2 *"]), "trigger 0: `0 0 31 2 *` never fires");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(2),
        "a search that never matches ends quickly"
    );
    assert!(err(&[&"*".repeat(300)]).contains("at most 256 bytes"));
}

#[test]
fn missed_firings_fire_once_as_the_latest() {
    let texts = vec!["*/10 * * * *".to_string()];
    let schedule = Schedule::parse(&texts, 0).unwrap();
    let mut a = automation(texts, ms("2026-01-01T10:00:00Z"));
    assert_eq!(a.due(&schedule, ms("2026-01-01T10:09:59Z")), None);
    assert_eq!(a.next_at(&schedule).map(rfc3339).as_deref(), Some("2026-01-01T10:10:00Z"));
    // Down from 10:05 to 11:03: six firings missed, one is due, the latest.
    let due = a.due(&schedule, ms("2026-01-01T11:03:00Z")).unwrap();
    assert_eq!(rfc3339(due), "2026-01-01T11:00:00Z");
    a.fire(due);
    assert_eq!(a.due(&schedule, ms("2026-01-01T11:03:00Z")), None);
    assert_eq!(a.next_at(&schedule).map(rfc3339).as_deref(), Some("2026-01-01T11:10:00Z"));
    assert_eq!((a.fired, a.last_fired_ms), (1, Some(due)));
    a.paused = true;
    assert_eq!(a.next_at(&schedule), None);
    assert_eq!(a.due(&schedule, ms("2026-01-02T00:00:00Z")), None, "a paused automation never fires");
}

#[test]
fn the_input_gets_the_trigger_time_and_is_checked() {
    let mut a = automation(vec!["@daily".into()], 0);
    a.input = r#"{"region":"eu"}"#.into();
    let input: serde_json::Value = serde_json::from_str(&a.input_at(ms("2026-01-02T00:00:00Z"))).unwrap();
    assert_eq!(input, serde_json::json!({"region": "eu", "trigger_time": "2026-01-02T00:00:00Z"}));
    assert!(check_automation_input(&serde_json::json!({})).is_ok());
    let err = check_automation_input(&serde_json::json!([1])).unwrap_err();
    assert!(err.starts_with("input must be a JSON object"));
    let err = check_automation_input(&serde_json::json!({"trigger_time": 1})).unwrap_err();
    assert!(err.contains("must not set `trigger_time`"));
}

fn automation(triggers: Vec<String>, created_ms: u64) -> Automation {
    Automation {
        id: AutomationId::new(),
        name: "nightly".into(),
        task_type: TaskType::parse("Noop").unwrap(),
        input: "{}".into(),
        cluster: "default".into(),
        max_retries: 0,
        triggers,
        paused: false,
        created_ms,
        fired_until_ms: created_ms,
        fired: 0,
        last_fired_ms: None,
    }
}
