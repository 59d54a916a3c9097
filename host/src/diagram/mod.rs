//! Job diagrams: a job's tasks as an SVG graph. A node per task labelled with
//! its display name (and its error when failed), solid edges from parent to
//! subtask, dashed edges from a task to what it depends on, filled by state,
//! optional tasks with a dashed border, with a title and a legend, in a
//! light or dark theme. The layered top-down
//! layout is computed by the layout-rs crate; [`canvas`] keeps what it placed
//! and this module writes the SVG. Pure: no I/O.

mod canvas;

use std::collections::HashMap;
use std::fmt::Write;

use layout::core::base::Orientation;
use layout::core::color::Color;
use layout::core::style::{LineStyleKind, StyleAttr};
use layout::std_shapes::render::get_shape_size;
use layout::std_shapes::shapes::{Arrow, Element, LineEndKind, ShapeKind};
use layout::topo::layout::VisualGraph;

use crate::model::{Job, Task, TaskState};

/// Jobs with more tasks are not drawn.
pub const MAX_TASKS: usize = 200;

const FONT: usize = 14;
const MAX_LINE_CHARS: usize = 40;
const MAX_LINES: usize = 4;
const MARGIN: f64 = 20.0;
const HEADER: f64 = 40.0;
const LEGEND_WIDTH: f64 = 170.0;

/// Why a job is not drawn.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Too many tasks for a readable diagram.
    #[error(
        "job has {0} tasks; diagrams are drawn for at most {MAX_TASKS}: use GET /v1/jobs/{{id}}/tasks instead"
    )]
    TooLarge(usize),
}

/// Colours.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Theme {
    Light,
    Dark,
}

struct Palette {
    background: &'static str,
    text: &'static str,
    border: &'static str,
    edge: &'static str,
    dependency: &'static str,
    fills: [(&'static str, &'static str); 6],
}

impl Theme {
    fn palette(self) -> Palette {
        match self {
            Theme::Light => Palette {
                background: "#FFFFFF",
                text: "#1A1A1A",
                border: "#555555",
                edge: "#444444",
                dependency: "#9B1A47",
                fills: [
                    ("queued", "#FFF0F5"),
                    ("running", "#AFEEEE"),
                    ("computed", "#F0FFF0"),
                    ("failed", "#FA8072"),
                    ("failed_optional", "#F5C6A5"),
                    ("skipped", "#fcf3ae"),
                ],
            },
            Theme::Dark => Palette {
                background: "#1E1E1E",
                text: "#E8E8E8",
                border: "#9A9A9A",
                edge: "#BBBBBB",
                dependency: "#E0709A",
                fills: [
                    ("queued", "#4A3B44"),
                    ("running", "#2F5F5F"),
                    ("computed", "#2F4F2F"),
                    ("failed", "#8B3A32"),
                    ("failed_optional", "#7A5530"),
                    ("skipped", "#5C5826"),
                ],
            },
        }
    }
}

impl Palette {
    fn fill(&self, state: TaskState) -> &'static str {
        self.fills.iter().find(|(s, _)| *s == state.as_str()).map_or("#FFFFFF", |(_, f)| f)
    }
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

/// Draws `job` with its `tasks`.
pub fn render(job: &Job, tasks: &[Task], theme: Theme) -> Result<String, Error> {
    if tasks.len() > MAX_TASKS {
        return Err(Error::TooLarge(tasks.len()));
    }
    let palette = theme.palette();
    let placed = place(tasks);
    Ok(write_svg(job, tasks, &placed, &palette))
}

/// Lays the tasks out with layout-rs.
fn place(tasks: &[Task]) -> canvas::Canvas {
    let mut graph = VisualGraph::new(Orientation::TopToBottom);
    let mut handles = HashMap::new();
    for (i, task) in tasks.iter().enumerate() {
        let shape = ShapeKind::new_box(&label_lines(task).join("\n"));
        let look = StyleAttr::new(Color::fast("black"), 1, Some(Color::fast("white")), 4, FONT);
        let size = get_shape_size(Orientation::TopToBottom, &shape, FONT, false);
        let element =
            Element::create_with_properties(shape, look, Orientation::TopToBottom, size, i.to_string());
        handles.insert(task.key.task, graph.add_node(element));
    }
    let edge = |kind: &str, style, color: &str| {
        let look = StyleAttr::new(Color::fast(color), 1, None, 0, FONT);
        Arrow::with_properties(LineEndKind::None, LineEndKind::Arrow, style, "", &look, kind, &None, &None)
    };
    for task in tasks {
        let Some(&to) = handles.get(&task.key.task) else { continue };
        if let Some(&from) = task.status.parent.as_ref().and_then(|p| handles.get(p)) {
            graph.add_edge(edge("subtask", LineStyleKind::Normal, "black"), from, to);
        }
        for dep in task.def.depends_on.iter().filter_map(|d| handles.get(d)) {
            graph.add_edge(edge("dependency", LineStyleKind::Dashed, "black"), to, *dep);
        }
    }
    let mut canvas = canvas::Canvas::default();
    if !tasks.is_empty() {
        graph.do_it(false, false, false, &mut canvas);
    }
    canvas
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

fn write_svg(job: &Job, tasks: &[Task], placed: &canvas::Canvas, p: &Palette) -> String {
    let (min_x, min_y) = if placed.nodes.is_empty() { (0.0, 0.0) } else { (placed.min.x, placed.min.y) };
    let graph_w = (placed.max.x - min_x).max(0.0);
    let graph_h = (placed.max.y - min_y).max(0.0);
    let (dx, dy) = (MARGIN - min_x, MARGIN + HEADER - min_y);
    let width = graph_w + 3.0 * MARGIN + LEGEND_WIDTH;
    let height = (graph_h + 2.0 * MARGIN + HEADER).max(HEADER + 200.0);
    let title = format!("{} ({})", job.name, job.state().as_str());
    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0}" height="{height:.0}" viewBox="0 0 {width:.0} {height:.0}" font-family="sans-serif" font-size="{FONT}"><title>{t}</title><defs><marker id="head" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="8" markerHeight="8" orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" fill="{edge}"/></marker><marker id="dep-head" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="8" markerHeight="8" orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" fill="{dep}"/></marker></defs><rect class="background" width="100%" height="100%" fill="{bg}"/><text class="title" x="{MARGIN}" y="{ty}" font-size="18" font-weight="bold" fill="{fg}">{t}</text>"#,
        t = escape(&title),
        edge = p.edge,
        dep = p.dependency,
        bg = p.background,
        fg = p.text,
        ty = MARGIN + 8.0,
    );
    svg.push_str(r#"<g class="edges">"#);
    for e in &placed.edges {
        let (color, dash, head) = if e.kind == "dependency" {
            (p.dependency, r#" stroke-dasharray="6,4""#, "dep-head")
        } else {
            (p.edge, "", "head")
        };
        let _ = write!(
            svg,
            r#"<path class="edge {kind}" transform="translate({dx:.1},{dy:.1})" d="{d}" fill="none" stroke="{color}" stroke-width="1.5"{dash} marker-end="url(#{head})"/>"#,
            kind = escape(&e.kind),
            d = e.path,
        );
    }
    svg.push_str(r#"</g><g class="tasks">"#);
    for n in &placed.nodes {
        let Some(task) = tasks.get(n.index) else { continue };
        write_node(&mut svg, task, n, (dx, dy), p);
    }
    svg.push_str("</g>");
    write_legend(&mut svg, graph_w + 2.0 * MARGIN, p);
    svg.push_str("</svg>");
    svg
}

fn write_node(svg: &mut String, task: &Task, n: &canvas::PlacedNode, (dx, dy): (f64, f64), p: &Palette) {
    let (x, y) = (n.xy.x + dx, n.xy.y + dy);
    let lines = label_lines(task);
    let _ = write!(
        svg,
        r#"<g class="task" data-task="{id}" data-state="{state}" data-optional="{optional}"><rect x="{x:.1}" y="{y:.1}" width="{w:.1}" height="{h:.1}" rx="4" fill="{fill}" stroke="{border}"{dash}/><text x="{cx:.1}" y="{ty:.1}" text-anchor="middle" fill="{fg}">"#,
        id = task.key.task,
        state = task.status.state.as_str(),
        optional = task.status.optional,
        dash = if task.status.optional { r#" stroke-dasharray="5,3" stroke-width="2""# } else { "" },
        w = n.size.x,
        h = n.size.y,
        fill = p.fill(task.status.state),
        border = p.border,
        cx = x + n.size.x / 2.0,
        ty = y + n.size.y / 2.0 - (lines.len() as f64 - 1.0) * FONT as f64 * 0.6 + FONT as f64 * 0.35,
        fg = p.text,
    );
    for (i, line) in lines.iter().enumerate() {
        let dy = if i == 0 { 0.0 } else { 1.2 };
        let class = if line.starts_with("error: ") && failed(task.status.state) { "error" } else { "label" };
        let _ = write!(
            svg,
            r#"<tspan class="{class}" x="{cx:.1}" dy="{dy}em">{}</tspan>"#,
            escape(line),
            cx = x + n.size.x / 2.0
        );
    }
    svg.push_str("</text></g>");
}

fn write_legend(svg: &mut String, x: f64, p: &Palette) {
    let _ = write!(svg, r#"<g class="legend" transform="translate({x:.1},{y:.1})">"#, y = MARGIN + HEADER);
    for (i, (state, fill)) in p.fills.iter().enumerate() {
        let y = i as f64 * 24.0;
        let _ = write!(
            svg,
            r#"<rect x="0" y="{y}" width="18" height="16" rx="3" fill="{fill}" stroke="{b}"/><text x="26" y="{ty}" fill="{fg}">{state}</text>"#,
            b = p.border,
            ty = y + 13.0,
            fg = p.text,
        );
    }
    let y = p.fills.len() as f64 * 24.0;
    let _ = write!(
        svg,
        r#"<rect x="0" y="{y}" width="18" height="16" rx="3" fill="none" stroke="{b}" stroke-dasharray="5,3" stroke-width="2"/><text x="26" y="{ty}" fill="{fg}">optional</text>"#,
        b = p.border,
        ty = y + 13.0,
        fg = p.text,
    );
    let y = y + 34.0;
    let _ = write!(
        svg,
        r#"<line x1="0" y1="{y}" x2="30" y2="{y}" stroke="{e}" stroke-width="1.5"/><text x="38" y="{t1}" fill="{fg}">subtask</text><line x1="0" y1="{y2}" x2="30" y2="{y2}" stroke="{d}" stroke-width="1.5" stroke-dasharray="6,4"/><text x="38" y="{t2}" fill="{fg}">depends on</text></g>"#,
        e = p.edge,
        d = p.dependency,
        fg = p.text,
        t1 = y + 4.0,
        y2 = y + 24.0,
        t2 = y + 28.0,
    );
}
