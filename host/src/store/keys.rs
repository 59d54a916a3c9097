//! Key layout. Every key starts with a one-byte prefix naming its kind; ids are
//! stored as their 16 big-endian bytes so key order is time order.
//!
//! | prefix | key                                   | value              |
//! |--------|---------------------------------------|--------------------|
//! | `M`    | `M` + name                            | store metadata     |
//! | `j`    | `j` + job                             | job record         |
//! | `t`    | `t` + job + task                      | task status (what changes as it runs) |
//! | `d`    | `d` + job + task                      | task definition (type, input, dependencies; never rewritten) |
//! | `e`    | `e` + job + task + seq                | an attempt's error (the last 20 are kept) |
//! | `r`    | `r` + job + task + chunk              | dependents of the task: written by earlier builds, no longer read (the reverse edges are the scheduler's memory), deleted with their job |
//! | `q`    | `q` + cluster + `0x00` + job + task   | live task: empty = ready, `R` = running, `W` = waiting for dependencies |
//! | `i`    | `i` + idempotency key                 | job id             |
//! | `m`    | `m` + sha256                          | module record      |
//! | `b`    | `b` + sha256                          | module bytes (older layouts only: now files, `modules.rs`) |
//! | `y`    | `y` + name + `0x00` + major + minor   | module sha256      |
//! | `l`    | `l` + job + seq (write order)         | log record (with its task) |
//! | `s`    | `s` + job + task + seq                | span record        |
//! | `p`    | `p` + job + parent task               | ids of subtasks written ahead of their parent's commit |
//! | `c`    | `c` + cluster slug                    | cluster record     |
//! | `o`    | `o` + job + task                      | a computed task's output (never rewritten) |
//! | `k`    | `k` + secret name                     | a secret, its value sealed |
//! | `n`    | `n` + job + task                      | ids of the task's subtasks, kept only inside optional subtrees (to skip them) |
//! | `a`    | `a` + automation                      | automation record  |
//! | `f`    | `f` + automation + job                | empty: the automation fired the job |

use crate::model::{AutomationId, Digest, JobId, TaskId, TaskKey, Version};

pub const META: u8 = b'M';
pub const JOB: u8 = b'j';
pub const TASK: u8 = b't';
pub const DEF: u8 = b'd';
pub const ERROR: u8 = b'e';
pub const DEPENDENTS: u8 = b'r';
pub const LIVE: u8 = b'q';
/// The value of a live key whose task is running.
pub const RUNNING_MARK: u8 = b'R';
/// The value of a live key whose task waits for dependencies.
pub const WAITING_MARK: u8 = b'W';
pub const IDEMPOTENCY: u8 = b'i';
pub const MODULE: u8 = b'm';
pub const MODULE_BYTES: u8 = b'b';
pub const REGISTRY: u8 = b'y';
pub const LOG: u8 = b'l';
pub const SPAN: u8 = b's';
pub const STAGED: u8 = b'p';
pub const CLUSTER: u8 = b'c';
pub const OUTPUT: u8 = b'o';
pub const SECRET: u8 = b'k';
pub const CHILDREN: u8 = b'n';
pub const AUTOMATION: u8 = b'a';
pub const FIRED: u8 = b'f';

fn key(prefix: u8, parts: &[&[u8]]) -> Vec<u8> {
    let len = 1 + parts.iter().map(|p| p.len()).sum::<usize>();
    let mut k = Vec::with_capacity(len);
    k.push(prefix);
    for part in parts {
        k.extend_from_slice(part);
    }
    k
}

pub fn meta(name: &str) -> Vec<u8> {
    key(META, &[name.as_bytes()])
}

pub fn job(id: JobId) -> Vec<u8> {
    key(JOB, &[id.as_bytes()])
}

pub fn task(k: TaskKey) -> Vec<u8> {
    key(TASK, &[k.job.as_bytes(), k.task.as_bytes()])
}

pub fn tasks_of(job: JobId) -> Vec<u8> {
    key(TASK, &[job.as_bytes()])
}

pub fn def(k: TaskKey) -> Vec<u8> {
    key(DEF, &[k.job.as_bytes(), k.task.as_bytes()])
}

pub fn defs_of(job: JobId) -> Vec<u8> {
    key(DEF, &[job.as_bytes()])
}

pub fn error(k: TaskKey, seq: u32) -> Vec<u8> {
    key(ERROR, &[k.job.as_bytes(), k.task.as_bytes(), &seq.to_be_bytes()])
}

pub fn errors_of_task(k: TaskKey) -> Vec<u8> {
    key(ERROR, &[k.job.as_bytes(), k.task.as_bytes()])
}

pub fn errors_of(job: JobId) -> Vec<u8> {
    key(ERROR, &[job.as_bytes()])
}

pub fn dependents_of_task(k: TaskKey) -> Vec<u8> {
    key(DEPENDENTS, &[k.job.as_bytes(), k.task.as_bytes()])
}

pub fn dependents_of(job: JobId) -> Vec<u8> {
    key(DEPENDENTS, &[job.as_bytes()])
}

pub fn staged_of(job: JobId) -> Vec<u8> {
    key(STAGED, &[job.as_bytes()])
}

pub fn live(cluster: &str, k: TaskKey) -> Vec<u8> {
    key(LIVE, &[cluster.as_bytes(), &[0], k.job.as_bytes(), k.task.as_bytes()])
}

pub fn idempotency(client_key: &str) -> Vec<u8> {
    key(IDEMPOTENCY, &[client_key.as_bytes()])
}

pub fn module(d: &Digest) -> Vec<u8> {
    key(MODULE, &[&d.0])
}

pub fn module_bytes(d: &Digest) -> Vec<u8> {
    key(MODULE_BYTES, &[&d.0])
}

pub fn registry(name: &str, v: Version) -> Vec<u8> {
    key(REGISTRY, &[name.as_bytes(), &[0], &v.major.to_be_bytes(), &v.minor.to_be_bytes()])
}

pub fn log(job: JobId, seq: u64) -> Vec<u8> {
    key(LOG, &[job.as_bytes(), &seq.to_be_bytes()])
}

pub fn logs_of(job: JobId) -> Vec<u8> {
    key(LOG, &[job.as_bytes()])
}

pub fn output(k: TaskKey) -> Vec<u8> {
    key(OUTPUT, &[k.job.as_bytes(), k.task.as_bytes()])
}

pub fn children(k: TaskKey) -> Vec<u8> {
    key(CHILDREN, &[k.job.as_bytes(), k.task.as_bytes()])
}

pub fn children_of(job: JobId) -> Vec<u8> {
    key(CHILDREN, &[job.as_bytes()])
}

pub fn outputs_of(job: JobId) -> Vec<u8> {
    key(OUTPUT, &[job.as_bytes()])
}

pub fn spans_of(job: JobId) -> Vec<u8> {
    key(SPAN, &[job.as_bytes()])
}

pub fn spans_of_task(k: TaskKey) -> Vec<u8> {
    key(SPAN, &[k.job.as_bytes(), k.task.as_bytes()])
}

pub fn span(k: TaskKey, seq: u64) -> Vec<u8> {
    key(SPAN, &[k.job.as_bytes(), k.task.as_bytes(), &seq.to_be_bytes()])
}

pub fn secret(name: &str) -> Vec<u8> {
    key(SECRET, &[name.as_bytes()])
}

pub fn automation(id: AutomationId) -> Vec<u8> {
    key(AUTOMATION, &[id.as_bytes()])
}

pub fn fired(automation: AutomationId, job: JobId) -> Vec<u8> {
    key(FIRED, &[automation.as_bytes(), job.as_bytes()])
}

pub fn fired_by(automation: AutomationId) -> Vec<u8> {
    key(FIRED, &[automation.as_bytes()])
}

pub fn cluster(slug: &str) -> Vec<u8> {
    key(CLUSTER, &[slug.as_bytes()])
}

/// The first live key of `cluster`'s tasks.
pub fn live_of(cluster: &str) -> Vec<u8> {
    key(LIVE, &[cluster.as_bytes(), &[0]])
}

pub fn staged(parent: TaskKey) -> Vec<u8> {
    key(STAGED, &[parent.job.as_bytes(), parent.task.as_bytes()])
}

/// Splits `job + task` (32 bytes) at `offset` in `k`.
pub fn task_key_at(k: &[u8], offset: usize) -> Option<TaskKey> {
    let job: [u8; 16] = k.get(offset..offset + 16)?.try_into().ok()?;
    let task: [u8; 16] = k.get(offset + 16..offset + 32)?.try_into().ok()?;
    Some(TaskKey { job: JobId::from_bytes(job), task: TaskId::from_bytes(task) })
}

/// Splits a live-task key into its cluster and task.
pub fn parse_live(k: &[u8]) -> Option<(String, TaskKey)> {
    let body = k.get(1..)?;
    let nul = body.iter().position(|&b| b == 0)?;
    let cluster = std::str::from_utf8(&body[..nul]).ok()?.to_owned();
    Some((cluster, task_key_at(body, nul + 1)?))
}

/// Splits a registry key into the task name and version.
pub fn parse_registry(k: &[u8]) -> Option<(String, Version)> {
    let body = k.get(1..)?;
    let nul = body.iter().position(|&b| b == 0)?;
    let name = std::str::from_utf8(&body[..nul]).ok()?.to_owned();
    let major = u32::from_be_bytes(body.get(nul + 1..nul + 5)?.try_into().ok()?);
    let minor = u32::from_be_bytes(body.get(nul + 5..nul + 9)?.try_into().ok()?);
    Some((name, Version { major, minor }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_and_registry_keys_round_trip() {
        let k = TaskKey { job: JobId::new(), task: TaskId::new() };
        assert_eq!(parse_live(&live("gpu-1", k)), Some(("gpu-1".to_owned(), k)));
        let v = Version { major: 1, minor: 7 };
        assert_eq!(parse_registry(&registry("Leaf", v)), Some(("Leaf".to_owned(), v)));
        assert_eq!(task_key_at(&task(k), 1), Some(k));
    }
}
