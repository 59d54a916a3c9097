//! The recorder against tasks that use every host call: what a unit test of
//! a task sees is what the host would record.

use serde::{Deserialize, Serialize};

use crate::testing::{Run, run};
use crate::{Context, Error, SubtaskHandle, Task, TaskType};

#[derive(Serialize, Deserialize, TaskType)]
#[task(name = "sum", version = "v2.1")]
struct Sum {
    parts: Vec<SubtaskHandle>,
}

impl Task for Sum {
    type Output = u64;

    fn execute(&self, ctx: &Context) -> Result<u64, Error> {
        let parts: Vec<u64> = self.parts.iter().map(|h| ctx.output_of(*h)).collect::<Result<_, _>>()?;
        let key = ctx.secret("KEY")?;
        ctx.cache().put_json("sums/total", &parts.iter().sum::<u64>())?;
        ctx.progress("parts").add(parts.len() as u64).done(parts.len() as u64);
        let span = ctx.span("sum").attr("key.len", key.len()).enter();
        span.set("parts", parts.len()).set("key.len", 0);
        ctx.warn("summed").field("parts", parts.len());
        Ok(parts.iter().sum())
    }
}

#[derive(Serialize, Deserialize, TaskType)]
struct Plan {
    how: String,
}

impl Task for Plan {
    type Output = ();

    fn execute(&self, ctx: &Context) -> Result<(), Error> {
        match self.how.as_str() {
            "err" => Err("the plan failed".into()),
            "never" => Err(Error::permanent("no retry fixes this")),
            "optional" => {
                let backoff = crate::Backoff::exponential(std::time::Duration::from_millis(250))
                    .max(std::time::Duration::from_secs(4))
                    .jitter();
                ctx.subtask(&Sum { parts: vec![] })
                    .optional()
                    .max_retries(3)
                    .backoff(backoff)
                    .submit()
                    .map(drop)
            }
            "panic" => panic!("the plan panicked"),
            "early" => ctx
                .subtask(&Plan { how: "x".into() })
                .depends_on(&[SubtaskHandle::from_raw(0)])
                .submit()
                .map(drop),
            _ => {
                let a = ctx.subtask(&Sum { parts: vec![] }).max_retries(2).cluster("gpu").submit()?;
                let b = ctx.subtask(&Sum { parts: vec![a] }).depends_on(&[a]).submit()?;
                ctx.output_from(b);
                Ok(())
            }
        }
    }
}

#[test]
fn optional_subtasks_backoffs_and_permanent_errors_are_recorded() {
    let done = run(&Plan { how: "optional".into() });
    let s = &done.subtasks[0];
    assert_eq!((s.optional, s.max_retries, s.backoff), (true, 3, Some((250, 2.0, 4000, true))));
    let failed = run(&Plan { how: "never".into() });
    assert_eq!((failed.error.as_deref(), failed.permanent), (Some("no retry fixes this"), true));
    let plain = run(&Plan { how: "err".into() });
    assert!(!plain.permanent, "an error is retried unless made permanent");
}

#[test]
fn outputs_secrets_cache_progress_spans_and_logs_are_recorded() {
    let (a, b) = (SubtaskHandle::from_raw(0), SubtaskHandle::from_raw(1));
    let done =
        Run::new().output(a, &40).output(b, &2).secret("KEY", "abc").execute(&Sum { parts: vec![a, b] });
    assert_eq!(done.error, None);
    assert_eq!(done.output, Some(serde_json::json!(42)));
    assert_eq!(done.cache["sums/total"], b"42");
    assert_eq!(done.progress["parts"], (2, 2));
    let attributes = vec![("key.len".to_owned(), "0".to_owned()), ("parts".to_owned(), "2".to_owned())];
    assert_eq!(done.spans, [("sum".to_owned(), attributes)], "set after opening: one added, one replaced");
    assert_eq!((done.logs[0].level, done.logs[0].message.as_str()), ("warn", "summed"));
}

#[test]
fn refusals_are_the_tasks_errors() {
    let a = SubtaskHandle::from_raw(0);
    let no_secret = Run::new().output(a, &1).execute(&Sum { parts: vec![a] });
    assert_eq!(no_secret.error.as_deref(), Some("secret `KEY` is not granted to this task"));
    let no_dependency = run(&Sum { parts: vec![a] });
    assert_eq!(no_dependency.error.as_deref(), Some("handle 0 is not one of this task's dependencies"));
    let early = run(&Plan { how: "early".into() });
    assert_eq!(early.error.as_deref(), Some("subtask 0 depends on handle 0, which was not issued yet"));
}

#[test]
fn errors_and_panics_fail_the_execution() {
    assert_eq!(run(&Plan { how: "err".into() }).error.as_deref(), Some("the plan failed"));
    assert_eq!(run(&Plan { how: "panic".into() }).error.as_deref(), Some("panicked: the plan panicked"));
}

#[test]
fn subtasks_keep_their_type_dependencies_retries_and_cluster() {
    let done = run(&Plan { how: "fan".into() });
    assert_eq!(done.error, None);
    assert_eq!(done.output_of_subtask, Some(SubtaskHandle::from_raw(1)));
    let [first, second] = &done.subtasks[..] else { panic!("{:?}", done.subtasks) };
    assert_eq!((first.name.as_str(), first.version.as_str()), ("sum", "v2.1"));
    assert_eq!((first.max_retries, first.cluster.as_deref()), (2, Some("gpu")));
    assert_eq!(second.depends_on, [SubtaskHandle::from_raw(0)]);
    assert_eq!(second.task::<Sum>().map(|s| s.parts), Some(vec![SubtaskHandle::from_raw(0)]));
    assert!(second.task::<Plan>().is_none());
}
