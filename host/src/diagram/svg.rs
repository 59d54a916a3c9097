//! The SVG of a placed diagram: its palette (light or dark), the edges,
//! the boxes with their labels (a group's with a bar of its members by
//! state), and the legend.

use std::fmt::Write;

use super::{FONT, Node, canvas, escape, failed};
use crate::model::TaskState;

const MARGIN: f64 = 20.0;
const HEADER: f64 = 40.0;
const LEGEND_WIDTH: f64 = 170.0;
/// The height of a group's bar of members by state.
const BAR: f64 = 6.0;

/// Colours.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Theme {
    Light,
    Dark,
}

pub(super) struct Palette {
    background: &'static str,
    text: &'static str,
    border: &'static str,
    edge: &'static str,
    dependency: &'static str,
    fills: [(&'static str, &'static str); 6],
}

impl Theme {
    pub(super) fn palette(self) -> Palette {
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

/// The SVG of `nodes` as `placed`, under `title`.
pub(super) fn write(title: &str, nodes: &[Node], placed: &canvas::Canvas, p: &Palette) -> String {
    let (min_x, min_y) = if placed.nodes.is_empty() { (0.0, 0.0) } else { (placed.min.x, placed.min.y) };
    let graph_w = (placed.max.x - min_x).max(0.0);
    let graph_h = (placed.max.y - min_y).max(0.0);
    let (dx, dy) = (MARGIN - min_x, MARGIN + HEADER - min_y);
    let width = graph_w + 3.0 * MARGIN + LEGEND_WIDTH;
    let height = (graph_h + 2.0 * MARGIN + HEADER).max(HEADER + 200.0);
    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0}" height="{height:.0}" viewBox="0 0 {width:.0} {height:.0}" font-family="sans-serif" font-size="{FONT}"><title>{t}</title><defs><marker id="head" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="8" markerHeight="8" orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" fill="{edge}"/></marker><marker id="dep-head" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="8" markerHeight="8" orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" fill="{dep}"/></marker></defs><rect class="background" width="100%" height="100%" fill="{bg}"/><text class="title" x="{MARGIN}" y="{ty}" font-size="18" font-weight="bold" fill="{fg}">{t}</text>"#,
        t = escape(title),
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
        let Some(node) = nodes.get(n.index) else { continue };
        write_node(&mut svg, node, n, (dx, dy), p);
    }
    svg.push_str("</g>");
    write_legend(&mut svg, graph_w + 2.0 * MARGIN, p);
    svg.push_str("</svg>");
    svg
}

fn write_node(svg: &mut String, node: &Node, n: &canvas::PlacedNode, (dx, dy): (f64, f64), p: &Palette) {
    let (x, y) = (n.xy.x + dx, n.xy.y + dy);
    let lines = &node.lines;
    // A group's box is a line taller (see `place`): its label sits above the bar.
    let bar_room = if node.counts.is_some() { FONT as f64 * 0.6 } else { 0.0 };
    let _ = write!(
        svg,
        r#"<g {attrs} data-state="{state}" data-optional="{optional}"><rect x="{x:.1}" y="{y:.1}" width="{w:.1}" height="{h:.1}" rx="4" fill="{fill}" stroke="{border}"{dash}/><text x="{cx:.1}" y="{ty:.1}" text-anchor="middle" fill="{fg}">"#,
        attrs = node.attrs,
        state = node.state.as_str(),
        optional = node.optional,
        dash = if node.optional { r#" stroke-dasharray="5,3" stroke-width="2""# } else { "" },
        w = n.size.x,
        h = n.size.y,
        fill = p.fill(node.state),
        border = p.border,
        cx = x + n.size.x / 2.0,
        ty = y + n.size.y / 2.0 - (lines.len() as f64 - 1.0) * FONT as f64 * 0.6 + FONT as f64 * 0.35
            - bar_room,
        fg = p.text,
    );
    for (i, line) in lines.iter().enumerate() {
        let dy = if i == 0 { 0.0 } else { 1.2 };
        let class = if line.starts_with("error: ") && failed(node.state) { "error" } else { "label" };
        let _ = write!(
            svg,
            r#"<tspan class="{class}" x="{cx:.1}" dy="{dy}em">{}</tspan>"#,
            escape(line),
            cx = x + n.size.x / 2.0
        );
    }
    svg.push_str("</text>");
    if let Some(counts) = &node.counts {
        write_bar(svg, counts, (x, y + n.size.y - BAR), n.size.x, p);
    }
    svg.push_str("</g>");
}

/// A group's members by state: a bar along the bottom of its box, a
/// segment per state as wide as its share.
fn write_bar(svg: &mut String, counts: &[u64; 6], (x, y): (f64, f64), width: f64, p: &Palette) {
    let total: u64 = counts.iter().sum();
    if total == 0 {
        return;
    }
    let mut left = x;
    for (state, &n) in TaskState::ALL.iter().zip(counts).filter(|(_, n)| **n > 0) {
        let w = width * n as f64 / total as f64;
        let _ = write!(
            svg,
            r#"<rect class="bar" data-state="{s}" data-count="{n}" x="{left:.1}" y="{y:.1}" width="{w:.1}" height="{BAR}" fill="{fill}" stroke="{border}" stroke-width="0.5"/>"#,
            s = state.as_str(),
            fill = p.fill(*state),
            border = p.border,
        );
        left += w;
    }
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
