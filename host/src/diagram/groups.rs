//! Big jobs drawn in groups: the tasks of one type under one parent become
//! one box that counts its members by state, and the edges between tasks
//! become edges between their groups (each pair once). A job whose groups
//! by parent are still too many is grouped by task type alone.

use std::collections::{HashMap, HashSet};

use super::{Link, Node, shorten};
use crate::model::{Task, TaskId, TaskState};

/// Tasks of one type (under one parent, when grouped by parent).
struct Group {
    task_type: String,
    parent: Option<TaskId>,
    counts: [u64; 6],
    optional: bool,
}

/// The groups of `tasks` and, for each task, the index of its group.
struct Grouping {
    groups: Vec<Group>,
    of_task: Vec<usize>,
}

fn group(tasks: &[Task], by_parent: bool) -> Grouping {
    let mut index: HashMap<(Option<TaskId>, &str), usize> = HashMap::new();
    let mut groups: Vec<Group> = Vec::new();
    let mut of_task = Vec::with_capacity(tasks.len());
    for task in tasks {
        let parent = if by_parent { task.status.parent } else { None };
        let name = task.def.task_type.name.as_str();
        let g = *index.entry((parent, name)).or_insert_with(|| {
            groups.push(Group { task_type: name.to_owned(), parent, counts: [0; 6], optional: true });
            groups.len() - 1
        });
        groups[g].counts[state_index(task.status.state)] += 1;
        groups[g].optional &= task.status.optional;
        of_task.push(g);
    }
    Grouping { groups, of_task }
}

/// The position of `state` in [`TaskState::ALL`].
pub fn state_index(state: TaskState) -> usize {
    TaskState::ALL.iter().position(|s| *s == state).unwrap_or(0)
}

/// The state a group is drawn in: failed if any member failed, else
/// running if any runs, else queued if any waits; computed once all are.
fn summary(counts: &[u64; 6]) -> TaskState {
    use TaskState::*;
    [Failed, Running, Queued, FailedOptional, Skipped, Computed]
        .into_iter()
        .find(|s| counts[state_index(*s)] > 0)
        .unwrap_or(Computed)
}

/// The boxes and edges of `tasks` in groups of at most `max` boxes:
/// by parent and type, else by type; `None` when even that is too many.
pub fn grouped(tasks: &[Task], max: usize) -> Option<(Vec<Node>, Vec<Link>)> {
    let by_id: HashMap<TaskId, usize> = tasks.iter().enumerate().map(|(i, t)| (t.key.task, i)).collect();
    for by_parent in [true, false] {
        let grouping = group(tasks, by_parent);
        if grouping.groups.len() <= max {
            let nodes = grouping.groups.iter().enumerate().map(|(i, g)| node(i, g, tasks, &by_id)).collect();
            return Some((nodes, links(tasks, &grouping, &by_id)));
        }
    }
    None
}

fn node(index: usize, g: &Group, tasks: &[Task], by_id: &HashMap<TaskId, usize>) -> Node {
    let members: u64 = g.counts.iter().sum();
    let mut lines = vec![shorten(&format!("{} × {members}", g.task_type))];
    if let Some(parent) = g.parent.and_then(|p| by_id.get(&p)).and_then(|&i| tasks.get(i)) {
        lines.push(shorten(&format!("under {}", parent.display_name())));
    }
    let counted: Vec<String> = TaskState::ALL
        .iter()
        .zip(g.counts)
        .filter(|(_, n)| *n > 0)
        .map(|(s, n)| format!("{n} {}", s.as_str()))
        .collect();
    lines.push(shorten(&counted.join(" · ")));
    let parent = g.parent.map(|p| format!(r#" data-parent="{p}""#)).unwrap_or_default();
    Node {
        attrs: format!(
            r#"class="group" data-group="{index}" data-task-type="{}"{parent} data-members="{members}""#,
            super::escape(&g.task_type)
        ),
        lines,
        state: summary(&g.counts),
        optional: g.optional,
        counts: Some(g.counts),
    }
}

/// Edges between groups: parent to subtask, dependent to dependency, each
/// pair once, none from a group to itself.
fn links(tasks: &[Task], grouping: &Grouping, by_id: &HashMap<TaskId, usize>) -> Vec<Link> {
    let group_of = |id: &TaskId| by_id.get(id).map(|&i| grouping.of_task[i]);
    let mut seen = HashSet::new();
    let mut links = Vec::new();
    for (i, task) in tasks.iter().enumerate() {
        let g = grouping.of_task[i];
        let parent = task.status.parent.as_ref().and_then(group_of).map(|p| (p, g, false));
        let deps = task.def.depends_on.iter().filter_map(group_of).map(|d| (g, d, true));
        for (from, to, dependency) in parent.into_iter().chain(deps) {
            if from != to && seen.insert((from, to, dependency)) {
                links.push(Link { from, to, dependency });
            }
        }
    }
    links
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{JobId, TaskDef, TaskKey, TaskStatus, TaskType};

    fn task(
        job: JobId,
        name: &str,
        parent: Option<TaskId>,
        depends_on: Vec<TaskId>,
        state: TaskState,
    ) -> Task {
        let mut status = TaskStatus::queued(parent, "default".into(), 0);
        status.state = state;
        let def = TaskDef {
            task_type: TaskType::new(name, "v1.0").unwrap(),
            input: "{}".into(),
            depends_on,
            handles: Vec::new(),
        };
        Task { key: TaskKey { job, task: TaskId::new() }, def, status, errors: Vec::new() }
    }

    /// A map-reduce: a root, `mappers` mappers of `leaves` leaves each (one
    /// leaf of the first mapper failed), and a reducer on every mapper.
    fn map_reduce(mappers: usize, leaves: usize) -> Vec<Task> {
        let job = JobId::new();
        let root = task(job, "Root", None, Vec::new(), TaskState::Computed);
        let mut tasks = vec![];
        let mut mapper_ids = vec![];
        for m in 0..mappers {
            let mapper = task(job, "Mapper", Some(root.key.task), Vec::new(), TaskState::Computed);
            for l in 0..leaves {
                let state = if m == 0 && l == 0 { TaskState::Failed } else { TaskState::Computed };
                tasks.push(task(job, "Leaf", Some(mapper.key.task), Vec::new(), state));
            }
            mapper_ids.push(mapper.key.task);
            tasks.push(mapper);
        }
        tasks.push(task(job, "Reduce", Some(root.key.task), mapper_ids, TaskState::Queued));
        tasks.insert(0, root);
        tasks
    }

    #[test]
    fn tasks_of_one_type_under_one_parent_are_one_box_counted_by_state() {
        let tasks = map_reduce(3, 100);
        let (nodes, links) = grouped(&tasks, 200).unwrap();
        // Root, Mapper, three Leaf groups (one per mapper), Reduce.
        assert_eq!(nodes.len(), 6);
        let leaves: Vec<&Node> = nodes.iter().filter(|n| n.lines[0] == "Leaf × 100").collect();
        assert_eq!(leaves.len(), 3);
        assert!(leaves.iter().all(|n| n.lines[1] == "under Mapper"));
        let failed = leaves.iter().find(|n| n.state == TaskState::Failed).unwrap();
        assert_eq!(failed.counts.unwrap()[state_index(TaskState::Computed)], 99);
        assert_eq!(failed.lines[2], "99 computed · 1 failed");
        let reduce = nodes.iter().position(|n| n.lines[0] == "Reduce × 1").unwrap();
        assert_eq!(nodes[reduce].state, TaskState::Queued);
        // Root → Mapper, Root → Reduce, Mapper → each Leaf group; Reduce depends on Mapper once.
        assert_eq!(links.iter().filter(|l| !l.dependency).count(), 5);
        let deps: Vec<&Link> = links.iter().filter(|l| l.dependency).collect();
        assert_eq!(deps.len(), 1);
        assert_eq!(deps[0].from, reduce);
    }

    #[test]
    fn too_many_parents_group_by_type_alone_and_too_many_types_are_refused() {
        let tasks = map_reduce(300, 2);
        let (nodes, links) = grouped(&tasks, 200).unwrap();
        let names: Vec<&str> = nodes.iter().map(|n| n.lines[0].as_str()).collect();
        assert_eq!(names, ["Root × 1", "Leaf × 600", "Mapper × 300", "Reduce × 1"]);
        assert!(links.iter().all(|l| l.from != l.to));
        let job = JobId::new();
        let many: Vec<Task> =
            (0..201).map(|i| task(job, &format!("T{i}"), None, Vec::new(), TaskState::Queued)).collect();
        assert!(grouped(&many, 200).is_none());
    }
}
