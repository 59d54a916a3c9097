//! Job diagrams: a job's tasks as an SVG graph. A node per task labelled with
//! its display name (and its error when failed), solid edges from parent to
//! subtask, dashed edges from a task to what it depends on, filled by state,
//! optional tasks with a dashed border, with a title and a legend, in a
//! light or dark theme. Jobs over [`MAX_TASKS`] tasks are drawn in groups
//! ([`groups`]): a box per task type under one parent, counting its members
//! by state. The layered top-down layout is computed by the layout-rs crate;
//! [`canvas`] keeps what it placed and [`svg`] writes it. Pure: no I/O.

mod canvas;
mod groups;
mod svg;

use std::collections::HashMap;

use layout::core::base::Orientation;
use layout::core::color::Color;
use layout::core::style::{LineStyleKind, StyleAttr};
use layout::std_shapes::render::get_shape_size;
use layout::std_shapes::shapes::{Arrow, Element, LineEndKind, ShapeKind};
use layout::topo::layout::VisualGraph;

pub use svg::Theme;

use crate::model::{Job, Task, TaskState};

/// Jobs with more tasks are drawn in groups; no diagram has more boxes.
pub const MAX_TASKS: usize = 200;

const FONT: usize = 14;
const MAX_LINE_CHARS: usize = 40;
const MAX_LINES: usize = 4;

/// Why a job is not drawn.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Too many task types for a readable diagram, even in groups.
    #[error(
        "job has {0} tasks of more than {MAX_TASKS} task types; diagrams draw at most {MAX_TASKS} boxes: use GET /v1/jobs/{{id}}/tasks instead"
    )]
    TooLarge(usize),
}

/// One box: a task, or a group of tasks.
struct Node {
    /// The attributes that say what it is (`data-task="ID"`, or a group's).
    attrs: String,
    lines: Vec<String>,
    state: TaskState,
    optional: bool,
    /// A group's members by state, in [`TaskState::ALL`] order.
    counts: Option<[u64; 6]>,
}

/// An edge between two boxes (by index): parent to subtask, or dependent
/// to dependency.
struct Link {
    from: usize,
    to: usize,
    dependency: bool,
}

/// The lines of a task's label: its display name (default: its type's
/// name), and its error when it failed.
pub fn label_lines(task: &Task) -> Vec<String> {
    let display = task.status.display.clone().unwrap_or_else(|| task.def.task_type.name.clone());
    let mut lines: Vec<String> = display.lines().take(MAX_LINES).map(shorten).collect();
    if lines.is_empty() {
        lines.push(task.def.task_type.name.clone());
    }
    if failed(task.status.state)
        && let Some(e) = task.errors.last()
    {
        lines.push(shorten(&format!("error: {}", e.message.lines().next().unwrap_or(""))));
    }
    lines
}

/// Whether a task in `state` failed for good (its label shows the error).
fn failed(state: TaskState) -> bool {
    matches!(state, TaskState::Failed | TaskState::FailedOptional)
}

fn shorten(line: &str) -> String {
    if line.chars().count() <= MAX_LINE_CHARS {
        return line.to_owned();
    }
    line.chars().take(MAX_LINE_CHARS - 1).chain(['…']).collect()
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// Draws `job` with its `tasks`: a box per task, or per group of tasks
/// when there are more than [`MAX_TASKS`].
pub fn render(job: &Job, tasks: &[Task], theme: Theme) -> Result<String, Error> {
    let mut title = format!("{} ({})", job.name, job.state().as_str());
    let (nodes, links) = if tasks.len() <= MAX_TASKS {
        each_task(tasks)
    } else {
        let (nodes, links) = groups::grouped(tasks, MAX_TASKS).ok_or(Error::TooLarge(tasks.len()))?;
        title.push_str(&format!(": {} tasks in {} groups", tasks.len(), nodes.len()));
        (nodes, links)
    };
    let placed = place(&nodes, &links);
    Ok(svg::write(&title, &nodes, &placed, &theme.palette()))
}

/// A box per task, and its edges.
fn each_task(tasks: &[Task]) -> (Vec<Node>, Vec<Link>) {
    let index: HashMap<_, _> = tasks.iter().enumerate().map(|(i, t)| (t.key.task, i)).collect();
    let nodes = tasks
        .iter()
        .map(|t| Node {
            attrs: format!(r#"class="task" data-task="{}""#, t.key.task),
            lines: label_lines(t),
            state: t.status.state,
            optional: t.status.optional,
            counts: None,
        })
        .collect();
    let mut links = Vec::new();
    for (to, task) in tasks.iter().enumerate() {
        if let Some(&from) = task.status.parent.as_ref().and_then(|p| index.get(p)) {
            links.push(Link { from, to, dependency: false });
        }
        for &dep in task.def.depends_on.iter().filter_map(|d| index.get(d)) {
            links.push(Link { from: to, to: dep, dependency: true });
        }
    }
    (nodes, links)
}

/// Lays the boxes out with layout-rs.
fn place(nodes: &[Node], links: &[Link]) -> canvas::Canvas {
    let mut graph = VisualGraph::new(Orientation::TopToBottom);
    let mut handles = Vec::with_capacity(nodes.len());
    for (i, node) in nodes.iter().enumerate() {
        // A group's box has room below its label for the bar of its members.
        let room = if node.counts.is_some() { "\n" } else { "" };
        let shape = ShapeKind::new_box(&(node.lines.join("\n") + room));
        let look = StyleAttr::new(Color::fast("black"), 1, Some(Color::fast("white")), 4, FONT);
        let size = get_shape_size(Orientation::TopToBottom, &shape, FONT, false);
        let element =
            Element::create_with_properties(shape, look, Orientation::TopToBottom, size, i.to_string());
        handles.push(graph.add_node(element));
    }
    let edge = |kind: &str, style| {
        let look = StyleAttr::new(Color::fast("black"), 1, None, 0, FONT);
        Arrow::with_properties(LineEndKind::None, LineEndKind::Arrow, style, "", &look, kind, &None, &None)
    };
    for link in links {
        let arrow = if link.dependency {
            edge("dependency", LineStyleKind::Dashed)
        } else {
            edge("subtask", LineStyleKind::Normal)
        };
        graph.add_edge(arrow, handles[link.from], handles[link.to]);
    }
    let mut canvas = canvas::Canvas::default();
    if !nodes.is_empty() {
        graph.do_it(false, false, false, &mut canvas);
    }
    canvas
}
