//! A benchmark's result as data (CSV and JSON) and as a picture (SVG, drawn with plotters):
//! one or more panels one above the other, each with lines of points, under one title that says what
//! is shown and the machine it was measured on.

use crate::load::machine::Machine;
use anyhow::{Context, Result};
use plotters::coord::combinators::IntoLogRange;
use plotters::coord::ranged1d::{AsRangedCoord, ValueFormatter};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// One line of a panel.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Series {
    pub name: String,
    pub points: Vec<(f64, f64)>,
}

impl Series {
    pub fn new(name: impl Into<String>) -> Series {
        Series {
            name: name.into(),
            points: Vec::new(),
        }
    }

    pub fn push(&mut self, x: f64, y: f64) {
        self.points.push((x, y));
    }
}

/// One chart: its axes and its lines.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Panel {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    pub log_x: bool,
    pub log_y: bool,
    pub series: Vec<Series>,
}

/// A whole graph: what it shows, where it was measured, its panels, and what to read in it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Figure {
    /// The chapter it belongs to: `05_backpressure` gives `05_backpressure.svg`.
    pub slug: String,
    pub title: String,
    pub panels: Vec<Panel>,
    /// Facts a reader should know (settings, and checks such as "no event lost").
    pub notes: Vec<String>,
    pub machine: Machine,
}

/// The palette: distinct, and readable on white.
const COLOURS: [RGBColor; 6] = [
    RGBColor(0xd6, 0x27, 0x28),
    RGBColor(0x1f, 0x77, 0xb4),
    RGBColor(0x2c, 0xa0, 0x2c),
    RGBColor(0xff, 0x7f, 0x0e),
    RGBColor(0x94, 0x67, 0xbd),
    RGBColor(0x8c, 0x56, 0x4b),
];

impl Figure {
    /// Writes `DIR/SLUG.svg`, `DIR/SLUG.csv` and `DIR/SLUG.json`; returns the SVG's path.
    pub fn write(&self, dir: &Path) -> Result<PathBuf> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let svg = dir.join(format!("{}.svg", self.slug));
        self.draw(&svg)?;
        std::fs::write(dir.join(format!("{}.csv", self.slug)), self.csv())?;
        std::fs::write(
            dir.join(format!("{}.json", self.slug)),
            serde_json::to_string_pretty(self)? + "\n",
        )?;
        Ok(svg)
    }

    /// Every point as one CSV row: `panel,series,x,y`, with the axes named in the header.
    pub fn csv(&self) -> String {
        let mut out = String::from("panel,series,x,y,x_label,y_label\n");
        for panel in &self.panels {
            for s in &panel.series {
                for (x, y) in &s.points {
                    out.push_str(&format!(
                        "{},{},{x},{y},{},{}\n",
                        csv_field(&panel.title),
                        csv_field(&s.name),
                        csv_field(&panel.x_label),
                        csv_field(&panel.y_label)
                    ));
                }
            }
        }
        out
    }

    /// Draws the SVG at the width the book shows it (its content column, about 750 px), so
    /// that its text is as large on the page as it is in the file: panels one above the other,
    /// long titles and notes wrapped, text of 14 px and more.
    pub fn draw(&self, path: &Path) -> Result<()> {
        let title = wrap(&self.title, TITLE_CHARS);
        let machine = format!("measured on {}", self.machine.describe());
        let footer: Vec<String> = std::iter::once(&machine)
            .chain(&self.notes)
            .flat_map(|n| wrap(n, NOTE_CHARS))
            .collect();
        let panels = self.panels.len().max(1) as u32;
        let head = 16 + TITLE_LINE * title.len() as u32;
        let foot = 12 + NOTE_LINE * footer.len() as u32;
        let height = head + PANEL_HEIGHT * panels + foot;
        let root = SVGBackend::new(path, (WIDTH, height)).into_drawing_area();
        root.fill(&WHITE).map_err(plot_error)?;
        let centred = |size: u32, alpha: f64| {
            ("sans-serif", size)
                .into_font()
                .color(&BLACK.mix(alpha))
                .pos(Pos::new(HPos::Center, VPos::Top))
        };
        for (i, line) in title.iter().enumerate() {
            root.draw_text(
                line,
                &centred(TITLE_SIZE, 1.0),
                ((WIDTH / 2) as i32, 8 + (TITLE_LINE * i as u32) as i32),
            )
            .map_err(plot_error)?;
        }
        let (_, rest) = root.split_vertically(head);
        let (body, notes) = rest.split_vertically(PANEL_HEIGHT * panels);
        for (i, line) in footer.iter().enumerate() {
            notes
                .draw_text(
                    line,
                    &("sans-serif", NOTE_SIZE)
                        .into_font()
                        .color(&BLACK.mix(0.75)),
                    (16, 6 + (NOTE_LINE * i as u32) as i32),
                )
                .map_err(plot_error)?;
        }
        let areas = body.split_evenly((self.panels.len().max(1), 1));
        for (panel, area) in self.panels.iter().zip(&areas) {
            draw_panel(panel, area)?;
        }
        root.present().map_err(plot_error)?;
        Ok(())
    }
}

/// The SVG's width: the book's content column, so that it is shown at its own size.
const WIDTH: u32 = 760;
const PANEL_HEIGHT: u32 = 400;
/// Font sizes as plotters takes them: it writes 0.8 of each into the SVG, so 18 gives 14.5 px.
const TITLE_SIZE: u32 = 24;
const CAPTION_SIZE: u32 = 21;
const AXIS_SIZE: u32 = 19;
const TICK_SIZE: u32 = 18;
const NOTE_SIZE: u32 = 18;
const TITLE_LINE: u32 = 26;
const NOTE_LINE: u32 = 19;
/// How many characters fit on a line of the title, and of a note, at those sizes.
const TITLE_CHARS: usize = 62;
const NOTE_CHARS: usize = 92;

/// `text` in lines of at most `width` characters, broken between words.
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    for word in text.split_whitespace() {
        match lines.last_mut() {
            Some(line) if line.chars().count() + 1 + word.chars().count() <= width => {
                line.push(' ');
                line.push_str(word);
            }
            _ => lines.push(word.to_string()),
        }
    }
    lines
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

fn plot_error<E: std::fmt::Debug>(e: E) -> anyhow::Error {
    anyhow::anyhow!("drawing the graph: {e:?}")
}

/// The range an axis needs for `values`, with a margin; a log axis starts above zero.
fn range(values: impl Iterator<Item = f64>, log: bool) -> (f64, f64) {
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for v in values.filter(|v| v.is_finite() && (!log || *v > 0.0)) {
        lo = lo.min(v);
        hi = hi.max(v);
    }
    if !lo.is_finite() {
        return if log { (1.0, 10.0) } else { (0.0, 1.0) };
    }
    if log {
        (lo / 1.5, hi * 1.5)
    } else {
        let lo = if lo >= 0.0 { 0.0 } else { lo * 1.1 };
        let hi = if hi <= lo { lo + 1.0 } else { hi * 1.1 };
        (lo, hi)
    }
}

/// The y axis's range, with room above the data for the legend: the top quarter of the panel
/// holds no point, so that the legend hides none.
fn y_range(panel: &Panel) -> (f64, f64) {
    let points = panel.series.iter().flat_map(|s| s.points.iter());
    let (lo, hi) = range(points.map(|p| p.1), panel.log_y);
    if panel.log_y {
        (lo, hi * (hi / lo).powf(0.35))
    } else {
        (lo, hi + (hi - lo) * 0.35)
    }
}

type Area<'a> = DrawingArea<SVGBackend<'a>, plotters::coord::Shift>;

fn draw_panel(panel: &Panel, area: &Area) -> Result<()> {
    let points = || panel.series.iter().flat_map(|s| s.points.iter());
    let (x0, x1) = range(points().map(|p| p.0), panel.log_x);
    let (y0, y1) = y_range(panel);
    match (panel.log_x, panel.log_y) {
        (false, false) => draw_on(panel, area, x0..x1, y0..y1),
        (true, false) => draw_on(panel, area, (x0..x1).log_scale(), y0..y1),
        (false, true) => draw_on(panel, area, x0..x1, (y0..y1).log_scale()),
        (true, true) => draw_on(panel, area, (x0..x1).log_scale(), (y0..y1).log_scale()),
    }
}

fn draw_on<X, Y>(panel: &Panel, area: &Area, x: X, y: Y) -> Result<()>
where
    X: AsRangedCoord<Value = f64>,
    Y: AsRangedCoord<Value = f64>,
    X::CoordDescType: ValueFormatter<f64>,
    Y::CoordDescType: ValueFormatter<f64>,
{
    let mut chart = ChartBuilder::on(area)
        .caption(&panel.title, ("sans-serif", CAPTION_SIZE))
        .margin(14)
        .x_label_area_size(56)
        .y_label_area_size(84)
        .build_cartesian_2d(x, y)
        .map_err(plot_error)?;
    chart
        .configure_mesh()
        .x_desc(&panel.x_label)
        .y_desc(&panel.y_label)
        .x_label_formatter(&|v| short(*v))
        .y_label_formatter(&|v| short(*v))
        .label_style(("sans-serif", TICK_SIZE))
        .axis_desc_style(("sans-serif", AXIS_SIZE))
        .x_labels(6)
        .y_labels(6)
        // Light, and few: on a log axis every minor line would otherwise read as a shaded band.
        .bold_line_style(BLACK.mix(0.12))
        .light_line_style(BLACK.mix(0.04))
        .max_light_lines(1)
        .draw()
        .map_err(plot_error)?;
    for (i, s) in panel.series.iter().enumerate() {
        let colour = COLOURS[i % COLOURS.len()];
        let style = ShapeStyle::from(&colour).stroke_width(2);
        let keep = |p: &&(f64, f64)| {
            p.0.is_finite()
                && p.1.is_finite()
                && (!panel.log_x || p.0 > 0.0)
                && (!panel.log_y || p.1 > 0.0)
        };
        let pts: Vec<(f64, f64)> = s.points.iter().filter(keep).copied().collect();
        chart
            .draw_series(LineSeries::new(pts.clone(), style))
            .map_err(plot_error)?
            .label(&s.name)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], style));
        chart
            .draw_series(pts.iter().map(|&p| Circle::new(p, 3, colour.filled())))
            .map_err(plot_error)?;
    }
    chart
        .configure_series_labels()
        .position(emptiest_corner(panel))
        .label_font(("sans-serif", TICK_SIZE))
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK.mix(0.3))
        .draw()
        .map_err(plot_error)?;
    Ok(())
}

/// The corner of the panel with the fewest points near it, for the legend: it must not hide
/// data. Upper left when there is a tie.
fn emptiest_corner(panel: &Panel) -> SeriesLabelPosition {
    let points: Vec<(f64, f64)> = panel
        .series
        .iter()
        .flat_map(|s| s.points.iter().copied())
        .collect();
    let scale = |v: f64, log: bool| {
        if log {
            v.max(f64::MIN_POSITIVE).ln()
        } else {
            v
        }
    };
    let (x0, x1) = range(points.iter().map(|p| p.0), panel.log_x);
    let (y0, y1) = y_range(panel);
    let unit = |v: f64, lo: f64, hi: f64, log: bool| {
        let (v, lo, hi) = (scale(v, log), scale(lo, log), scale(hi, log));
        if hi > lo {
            (v - lo) / (hi - lo)
        } else {
            0.5
        }
    };
    // Every point, and the lines between them, in the panel's unit square.
    let mut at: Vec<(f64, f64)> = Vec::new();
    for series in &panel.series {
        let pts: Vec<(f64, f64)> = series
            .points
            .iter()
            .map(|&(x, y)| (unit(x, x0, x1, panel.log_x), unit(y, y0, y1, panel.log_y)))
            .filter(|(x, y)| x.is_finite() && y.is_finite())
            .collect();
        at.extend(&pts);
        for pair in pts.windows(2) {
            let ((ax, ay), (bx, by)) = (pair[0], pair[1]);
            at.extend((1..20).map(|k| {
                let t = k as f64 / 20.0;
                (ax + (bx - ax) * t, ay + (by - ay) * t)
            }));
        }
    }
    // The legend's box, as a share of a plot area of about 640 × 300 px: 23 px a line, 9 px a
    // character of the longest name, with a margin.
    let longest = panel
        .series
        .iter()
        .map(|s| s.name.chars().count())
        .max()
        .unwrap_or(0);
    let w = ((longest * 9 + 70) as f64 / 640.0).min(0.95);
    let h = ((panel.series.len() * 23 + 30) as f64 / 300.0).min(0.95);
    let count = |left: bool, top: bool| {
        at.iter()
            .filter(|(x, y)| {
                (if left { *x < w } else { *x > 1.0 - w })
                    && (if top { *y > 1.0 - h } else { *y < h })
            })
            .count()
    };
    [
        (count(true, true), SeriesLabelPosition::UpperLeft),
        (count(false, true), SeriesLabelPosition::UpperRight),
        (count(true, false), SeriesLabelPosition::LowerLeft),
        (count(false, false), SeriesLabelPosition::LowerRight),
    ]
    .into_iter()
    .min_by_key(|(n, _)| *n)
    .map(|(_, corner)| corner)
    .unwrap_or(SeriesLabelPosition::UpperLeft)
}

/// Axis labels: 1500 → 1.5k, 2000000 → 2M, 0.25 → 0.25.
fn short(v: f64) -> String {
    let a = v.abs();
    let trim = |s: String| {
        if s.contains('.') {
            s.trim_end_matches('0').trim_end_matches('.').to_string()
        } else {
            s
        }
    };
    if a >= 1e6 {
        format!("{}M", trim(format!("{:.1}", v / 1e6)))
    } else if a >= 1e3 {
        format!("{}k", trim(format!("{:.1}", v / 1e3)))
    } else if a >= 1.0 || a == 0.0 {
        trim(format!("{v:.1}"))
    } else {
        trim(format!("{v:.3}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn figure() -> Figure {
        let mut a = Series::new("step 01");
        let mut b = Series::new("step 02, \"async\"");
        for n in [1.0, 2.0, 4.0, 8.0] {
            a.push(n, n * 20.0);
            b.push(n, 0.1);
        }
        Figure {
            slug: "02_async_echo".into(),
            title: "First-reply latency as clients grow".into(),
            panels: vec![Panel {
                title: "p50".into(),
                x_label: "concurrent clients".into(),
                y_label: "latency (ms)".into(),
                log_x: true,
                log_y: true,
                series: vec![a, b],
            }],
            notes: vec!["each client keeps its connection 20 ms".into()],
            machine: Machine {
                nproc: 2,
                cpu: "Test CPU @ 1.00GHz".into(),
            },
        }
    }

    #[test]
    fn the_svg_says_what_it_shows_and_where() {
        let dir = std::env::temp_dir().join(format!("eventkit-figure-{}", std::process::id()));
        let svg = figure().write(&dir).unwrap();
        assert_eq!(svg, dir.join("02_async_echo.svg"));
        let text = std::fs::read_to_string(&svg).unwrap();
        assert!(text.starts_with("<svg"), "{}", &text[..100.min(text.len())]);
        for must in [
            "First-reply latency as clients grow",
            "concurrent clients",
            "latency (ms)",
            "measured on 2 × Test CPU @ 1.00GHz",
            "each client keeps its connection 20 ms",
            "step 01",
        ] {
            assert!(text.contains(must), "the SVG lacks {must:?}");
        }
        assert!(dir.join("02_async_echo.csv").is_file());
        assert!(dir.join("02_async_echo.json").is_file());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn csv_has_one_row_per_point_and_quotes_what_needs_it() {
        let csv = figure().csv();
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(lines[0], "panel,series,x,y,x_label,y_label");
        assert_eq!(lines.len(), 1 + 8);
        assert_eq!(lines[1], "p50,step 01,1,20,concurrent clients,latency (ms)");
        assert!(
            lines[5].starts_with("p50,\"step 02, \"\"async\"\"\",1,0.1,"),
            "{}",
            lines[5]
        );
    }

    #[test]
    fn json_has_the_series_and_the_machine() {
        let v = serde_json::to_value(figure()).unwrap();
        assert_eq!(v["slug"], "02_async_echo");
        assert_eq!(v["machine"]["nproc"], 2);
        assert_eq!(v["panels"][0]["series"][0]["points"][1][0], 2.0);
        assert_eq!(v["panels"][0]["series"][0]["points"][1][1], 40.0);
    }

    #[test]
    fn axis_labels_are_short() {
        assert_eq!(short(1500.0), "1.5k");
        assert_eq!(short(2_000_000.0), "2M");
        assert_eq!(short(0.25), "0.25");
        assert_eq!(short(12.0), "12");
        assert_eq!(short(0.0), "0");
    }
}
