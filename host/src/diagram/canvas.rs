//! A layout-rs render backend that keeps what the layout placed (task boxes
//! by index, edges by kind) instead of drawing it, so the diagram can be
//! written with our own classes, colours, legend and theme.

use layout::core::format::{ClipHandle, RenderBackend};
use layout::core::geometry::Point;
use layout::core::style::StyleAttr;

/// A placed task box: its task's index, top-left corner and size.
pub struct PlacedNode {
    pub index: usize,
    pub xy: Point,
    pub size: Point,
}

/// A placed edge: its SVG path and kind (`subtask` or `dependency`).
pub struct PlacedEdge {
    pub path: String,
    pub kind: String,
}

/// What the layout placed, and the bounds of it all.
pub struct Canvas {
    pub nodes: Vec<PlacedNode>,
    pub edges: Vec<PlacedEdge>,
    pub min: Point,
    pub max: Point,
}

impl Default for Canvas {
    fn default() -> Self {
        let far = f64::MAX / 4.0;
        Canvas {
            nodes: Vec::new(),
            edges: Vec::new(),
            min: Point::new(far, far),
            max: Point::new(-far, -far),
        }
    }
}

impl Canvas {
    fn grow(&mut self, p: Point) {
        self.min = Point::new(self.min.x.min(p.x), self.min.y.min(p.y));
        self.max = Point::new(self.max.x.max(p.x), self.max.y.max(p.y));
    }
}

impl RenderBackend for Canvas {
    fn draw_rect(
        &mut self,
        xy: Point,
        size: Point,
        _: &StyleAttr,
        properties: Option<String>,
        _: Option<ClipHandle>,
    ) {
        self.grow(xy);
        self.grow(Point::new(xy.x + size.x, xy.y + size.y));
        if let Some(index) = properties.and_then(|p| p.parse().ok()) {
            self.nodes.push(PlacedNode { index, xy, size });
        }
    }

    fn draw_line(&mut self, start: Point, stop: Point, _: &StyleAttr, _: Option<String>) {
        self.grow(start);
        self.grow(stop);
    }

    fn draw_circle(&mut self, xy: Point, size: Point, _: &StyleAttr, _: Option<String>) {
        self.grow(xy);
        self.grow(Point::new(xy.x + size.x, xy.y + size.y));
    }

    /// Labels are written from the tasks themselves.
    fn draw_text(&mut self, _: Point, _: &str, _: &StyleAttr) {}

    fn draw_arrow(
        &mut self,
        path: &[(Point, Point)],
        _: bool,
        _: (bool, bool),
        _: &StyleAttr,
        properties: Option<String>,
        _: &str,
    ) {
        if path.len() < 2 {
            return;
        }
        for (a, b) in path {
            self.grow(*a);
            self.grow(*b);
        }
        // The first pair is the exit vector, the rest entry vectors: one
        // cubic curve, then smooth continuations.
        let (p0, p1) = (path[0], path[1]);
        let mut d = format!(
            "M {:.1} {:.1} C {:.1} {:.1}, {:.1} {:.1}, {:.1} {:.1}",
            p0.0.x, p0.0.y, p0.1.x, p0.1.y, p1.0.x, p1.0.y, p1.1.x, p1.1.y
        );
        for p in &path[2..] {
            d.push_str(&format!(" S {:.1} {:.1}, {:.1} {:.1}", p.0.x, p.0.y, p.1.x, p.1.y));
        }
        self.edges.push(PlacedEdge { path: d, kind: properties.unwrap_or_default() });
    }

    fn create_clip(&mut self, _: Point, _: Point, _: usize) -> ClipHandle {
        0
    }
}
