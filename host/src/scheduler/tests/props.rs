//! Random job graphs built the way guests build them: every task is a node
//! of a generated program that fails its first attempts, then submits its
//! children, each depending on earlier siblings. A random sequence of runner
//! and user actions (claims, reports, hand-backs, cancels, retries) drives
//! the scheduler; after every step the job's state must follow the
//! semantics, no task may have started before its dependencies' subtrees
//! were complete, and in the end every node computed exactly once. Some
//! nodes are optional: a node inside an optional subtree that runs out of
//! retries ends `failed_optional` instead (a job retry leaves it), what is
//! queued in the innermost such subtree is skipped and never starts, and
//! the job still completes.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use proptest::prelude::*;
use serde_json::json;

use super::sim::{Sim, spec};
use crate::model::{JobId, JobState, SubtaskSpec, Task, TaskId, TaskState};
use crate::scheduler::{Assignment, Error, Settings};

/// One task of a generated program.
#[derive(Debug, Clone)]
struct Node {
    /// Attempts that fail before one succeeds.
    fail_first: u32,
    max_retries: u32,
    optional: bool,
    /// Subtasks, in submission order, each with the earlier ones it needs.
    children: Vec<(Vec<u32>, Node)>,
}

impl Node {
    fn at(&self, path: &[u32]) -> &Node {
        path.iter().fold(self, |n, &i| &n.children[i as usize].1)
    }

    fn size(&self) -> usize {
        1 + self.children.iter().map(|(_, c)| c.size()).sum::<usize>()
    }

    /// What this node submits when it runs at `path`.
    fn specs(&self, path: &[u32]) -> Vec<SubtaskSpec> {
        let child = |i: usize, (deps, c): &(Vec<u32>, Node)| {
            let mut p = path.to_vec();
            p.push(i as u32);
            SubtaskSpec { max_retries: c.max_retries, optional: c.optional, ..spec(json!(p), deps.clone()) }
        };
        self.children.iter().enumerate().map(|(i, c)| child(i, c)).collect()
    }
}

fn node() -> impl Strategy<Value = Node> {
    let optional = || prop::bool::weighted(0.25);
    let leaf = (0..3u32, 0..2u32, optional()).prop_map(|(fail_first, max_retries, optional)| Node {
        fail_first,
        max_retries,
        optional,
        children: Vec::new(),
    });
    leaf.prop_recursive(3, 40, 5, move |inner| {
        let children = prop::collection::vec((prop::collection::vec(any::<u32>(), 0..4), inner), 0..5);
        (0..3u32, 0..2u32, optional(), children).prop_map(|(fail_first, max_retries, optional, raw)| {
            let children = raw
                .into_iter()
                .enumerate()
                .map(|(i, (deps, c))| {
                    let deps = if i == 0 { Vec::new() } else { deps.iter().map(|d| d % i as u32).collect() };
                    (deps, c)
                })
                .collect();
            Node { fail_first, max_retries, optional, children }
        })
    })
}

/// The job's state as the semantics derive it from its tasks.
fn derived(canceled: bool, tasks: &[Task]) -> JobState {
    let any = |s: TaskState| tasks.iter().any(|t| t.status.state == s);
    if canceled {
        JobState::Canceled
    } else if any(TaskState::Failed) {
        JobState::Failed
    } else if tasks.iter().all(|t| t.status.state.is_settled()) {
        JobState::Completed
    } else if any(TaskState::Running) {
        JobState::Running
    } else if tasks.iter().any(|t| t.status.state.is_settled()) {
        JobState::Started
    } else {
        JobState::Submitted
    }
}

/// Whether the subtree of `id` is complete: it and every descendant
/// settled (computed, failed-optional or skipped).
fn complete(id: TaskId, tasks: &HashMap<TaskId, &Task>, children: &HashMap<TaskId, Vec<TaskId>>) -> bool {
    tasks[&id].status.state.is_settled()
        && children.get(&id).is_none_or(|c| c.iter().all(|c| complete(*c, tasks, children)))
}

struct Run {
    sim: Sim,
    job: JobId,
    program: Node,
    running: Vec<Assignment>,
    /// Handed-back starts, whose late reports must be refused.
    released: Vec<Assignment>,
    computed: HashMap<TaskId, u32>,
    /// Tasks seen skipped: none may start afterwards.
    skipped: HashSet<TaskId>,
}

impl Run {
    fn check_state(&mut self) {
        let job = self.sim.job(self.job);
        let tasks = self.sim.tasks(self.job);
        for t in &tasks {
            if t.status.state == TaskState::Skipped {
                self.skipped.insert(t.key.task);
            } else {
                assert!(!self.skipped.contains(&t.key.task), "a skipped task left that state");
            }
        }
        assert_eq!(job.state(), derived(job.canceled, &tasks), "{:?}", job.counts);
        assert_eq!(job.counts.total(), tasks.len() as u64);
    }

    /// Checks that `a` was eligible: its job not halted, every dependency's
    /// subtree complete.
    fn check_eligible(&self, a: &Assignment, halted: bool) {
        assert!(!halted, "a task of a halted job started");
        let tasks = self.sim.tasks(self.job);
        let by_id: HashMap<TaskId, &Task> = tasks.iter().map(|t| (t.key.task, t)).collect();
        let mut children: HashMap<TaskId, Vec<TaskId>> = HashMap::new();
        for t in &tasks {
            if let Some(p) = t.status.parent {
                children.entry(p).or_default().push(t.key.task);
            }
        }
        for dep in &by_id[&a.key.task].def.depends_on {
            assert!(
                complete(*dep, &by_id, &children),
                "a task started before a dependency's subtree completed"
            );
        }
    }

    async fn claim(&mut self, max: usize) -> usize {
        let halted = self.sim.job(self.job).state().is_halted();
        let batch = self.sim.claim(max).await;
        for a in &batch {
            self.check_eligible(a, halted);
            assert!(!self.skipped.contains(&a.key.task), "a skipped task started");
        }
        let n = batch.len();
        self.running.extend(batch);
        n
    }

    /// Reports `running[i]` as its program says: fail while the attempt is
    /// at most `fail_first`, else succeed with the node's children.
    async fn report(&mut self, i: usize) {
        let a = self.running.swap_remove(i);
        let path: Vec<u32> = serde_json::from_str(&a.input).unwrap();
        let node = self.program.at(&path);
        if a.attempt <= node.fail_first {
            self.sim.fail(&a, "planned failure").await.unwrap();
        } else {
            self.sim.succeed(&a, node.specs(&path)).await.unwrap();
            *self.computed.entry(a.key.task).or_default() += 1;
        }
    }

    async fn step(&mut self, choice: u8) {
        match choice % 8 {
            0 | 1 => {
                self.claim(usize::from(choice / 8 % 4) + 1).await;
            }
            2..=4 if !self.running.is_empty() => self.report(usize::from(choice) % self.running.len()).await,
            5 if !self.running.is_empty() => {
                let a = self.running.swap_remove(usize::from(choice) % self.running.len());
                self.sim.scheduler.release(vec![(a.key, a.lease)]).await.unwrap();
                self.released.push(a);
            }
            6 => match self.sim.scheduler.cancel(self.job).await {
                Ok(()) | Err(Error::Conflict(_)) => {}
                Err(e) => panic!("cancel: {e}"),
            },
            7 => match self.sim.scheduler.retry(self.job).await {
                Ok(_) | Err(Error::Conflict(_)) => {}
                Err(e) => panic!("retry: {e}"),
            },
            _ => {}
        }
        self.check_state();
    }

    /// Runs everything to completion, retrying the job whenever it halts.
    async fn drain(&mut self) {
        for _ in 0..10_000 {
            while !self.running.is_empty() {
                self.report(0).await;
                self.check_state();
            }
            if self.claim(64).await > 0 {
                continue;
            }
            match self.sim.job(self.job).state() {
                JobState::Completed => return,
                s if s.is_halted() => {
                    self.sim.scheduler.retry(self.job).await.unwrap();
                }
                s => panic!("stuck in state {s:?} with nothing ready"),
            }
        }
        panic!("the job did not complete");
    }
}

async fn run(program: Node, actions: Vec<u8>) {
    let settings = Settings {
        lease_ttl: Duration::from_secs(3600),
        max_lost_attempts: 10,
        finished: None,
        ..Settings::default()
    };
    let sim = Sim::start(settings).await;
    let job = sim.submit(json!([]), program.max_retries).await;
    let mut run = Run {
        sim,
        job,
        program,
        running: Vec::new(),
        released: Vec::new(),
        computed: HashMap::new(),
        skipped: HashSet::new(),
    };
    for choice in actions {
        run.step(choice).await;
    }
    run.drain().await;
    for a in std::mem::take(&mut run.released) {
        let late = run.sim.succeed(&a, Vec::new()).await;
        assert!(matches!(late, Err(Error::StaleAttempt { .. })), "a handed-back start's report: {late:?}");
    }
    let tasks = run.sim.tasks(run.job);
    check_outcome(&run, &tasks);
}

/// In the end: every task settled, none computed twice; outside optional
/// subtrees every node computed; a task is failed-optional or skipped only
/// inside an optional subtree.
fn check_outcome(run: &Run, tasks: &[Task]) {
    let by_id: HashMap<TaskId, &Task> = tasks.iter().map(|t| (t.key.task, t)).collect();
    let guarded = |t: &Task| {
        let mut node = Some(t);
        while let Some(n) = node {
            if n.status.optional {
                return true;
            }
            node = n.status.parent.map(|p| by_id[&p]);
        }
        false
    };
    assert!(tasks.iter().all(|t| t.status.state.is_settled()), "every task settled");
    assert!(run.computed.values().all(|n| *n == 1), "a task computed twice");
    for t in tasks {
        if t.status.state != TaskState::Computed {
            assert!(guarded(t), "{:?} outside any optional subtree", t.status.state);
        }
    }
    if !tasks.iter().any(|t| t.status.optional) {
        assert_eq!(tasks.len(), run.program.size(), "one task per node of the program");
        assert_eq!(run.computed.len(), tasks.len());
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn random_graphs_follow_the_semantics(program in node(), actions in prop::collection::vec(any::<u8>(), 0..300)) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(run(program, actions));
    }
}
