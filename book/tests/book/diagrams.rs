//! (7) A picture per step of what runs where, drawn from `diagrams/steps.toml` into
//! `src/diagrams/NN_slug.svg`. The pictures are committed so that the book builds without this
//! code; this test draws them again and fails if a committed one differs (redraw them with
//! `BLESS=1 cargo test -p eventkit-book --test book diagrams`), if a line of text would not fit
//! its box, or if a chapter does not show its picture.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;

use crate::util::{assert_blessed, blessing, book_toml, chapters, src_dir};

/// The picture's size: the book's content width, so that its text is shown at the size drawn.
const WIDTH: f64 = 760.0;
const HEIGHT: f64 = 400.0;
/// Text size, and the width of an average character of it (sans-serif), for the fit check.
const FONT: f64 = 14.0;
const CHAR: f64 = 7.7;
const LINE: f64 = 18.0;
/// Colours: the parts that stay, and what this step adds or changes.
const STAY: (&str, &str) = ("#5f6368", "#f4f5f7");
const NEW: (&str, &str) = ("#c2410c", "#fff1e6");

/// Where each part of a server sits, the same at every step: (x, y, width, height).
fn slot(name: &str) -> Option<(f64, f64, f64, f64)> {
    Some(match name {
        "shutdown" => (104.0, 40.0, 322.0, 74.0),
        "clients" => (8.0, 150.0, 80.0, 92.0),
        "main" => (104.0, 150.0, 322.0, 92.0),
        "accept" => (104.0, 150.0, 140.0, 92.0),
        "conns" => (260.0, 150.0, 166.0, 92.0),
        "queue" => (442.0, 150.0, 136.0, 92.0),
        "workers" => (594.0, 150.0, 158.0, 92.0),
        "limit" => (104.0, 282.0, 140.0, 74.0),
        "counters" => (260.0, 282.0, 166.0, 74.0),
        "balances" => (442.0, 282.0, 310.0, 74.0),
        _ => return None,
    })
}

#[derive(serde::Deserialize)]
struct Source {
    step: Vec<Step>,
}

#[derive(serde::Deserialize)]
struct Step {
    slug: String,
    boxes: Vec<Part>,
    arrows: Vec<[String; 2]>,
}

#[derive(serde::Deserialize)]
struct Part {
    at: String,
    lines: Vec<String>,
    #[serde(default)]
    new: bool,
}

fn source() -> Source {
    book_toml("diagrams/steps.toml")
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// The arrow from box `a` to box `b`: side to side on one row, top to bottom between rows.
fn arrow(a: (f64, f64, f64, f64), b: (f64, f64, f64, f64)) -> (f64, f64, f64, f64) {
    let (ax, ay, aw, ah) = a;
    let (bx, by, bw, bh) = b;
    if (ay - by).abs() < 1.0 {
        let y = ay + ah / 2.0;
        return (ax + aw, y, bx, y);
    }
    let (from_y, to_y) = if ay < by {
        (ay + ah, by)
    } else {
        (ay, by + bh)
    };
    let (lo, hi) = (ax.max(bx), (ax + aw).min(bx + bw));
    if lo < hi {
        // Over each other: straight down, through the middle of what they share.
        let x = (lo + hi) / 2.0;
        (x, from_y, x, to_y)
    } else if ax < bx {
        (ax + aw - 24.0, from_y, bx + 24.0, to_y)
    } else {
        (ax + 24.0, from_y, bx + bw - 24.0, to_y)
    }
}

/// The picture of one step, and what does not fit in it.
fn draw(step: &Step) -> (String, Vec<String>) {
    let mut problems = Vec::new();
    let mut svg = String::new();
    let number = &step.slug[..2];
    let _ = writeln!(
        svg,
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="{FONT}">"##
    );
    let _ = writeln!(
        svg,
        r##"<title>Step {number}: what runs where; what this step adds or changes is highlighted</title>"##
    );
    let _ = writeln!(
        svg,
        r##"<defs><marker id="head" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#3c4043"/></marker></defs>"##
    );
    let _ = writeln!(
        svg,
        r##"<rect width="{WIDTH}" height="{HEIGHT}" fill="#ffffff"/>"##
    );
    let mut placed = BTreeMap::new();
    for part in &step.boxes {
        let Some(at) = slot(&part.at) else {
            problems.push(format!("{}: no slot {:?}", step.slug, part.at));
            continue;
        };
        placed.insert(part.at.clone(), at);
    }
    for [from, to] in &step.arrows {
        let (Some(&a), Some(&b)) = (placed.get(from), placed.get(to)) else {
            problems.push(format!(
                "{}: an arrow {from} → {to} between boxes it lacks",
                step.slug
            ));
            continue;
        };
        let (x1, y1, x2, y2) = arrow(a, b);
        let _ = writeln!(
            svg,
            r##"<line x1="{x1}" y1="{y1}" x2="{x2}" y2="{y2}" stroke="#3c4043" stroke-width="1.6" marker-end="url(#head)"/>"##
        );
    }
    for part in &step.boxes {
        let Some(&(x, y, w, h)) = placed.get(&part.at) else {
            continue;
        };
        let (stroke, fill) = if part.new { NEW } else { STAY };
        let width = if part.new { 3.0 } else { 1.4 };
        let _ = writeln!(
            svg,
            r##"<rect x="{x}" y="{y}" width="{w}" height="{h}" rx="8" fill="{fill}" stroke="{stroke}" stroke-width="{width}"/>"##
        );
        let top = y + (h - LINE * part.lines.len() as f64) / 2.0 + FONT - 1.0;
        for (i, line) in part.lines.iter().enumerate() {
            if line.chars().count() as f64 * CHAR > w - 12.0 {
                problems.push(format!(
                    "{}: {line:?} is too long for its box ({})",
                    step.slug, part.at
                ));
            }
            let weight = if i == 0 { r#" font-weight="bold""# } else { "" };
            let _ = writeln!(
                svg,
                r##"<text x="{}" y="{}" text-anchor="middle" fill="#202124"{weight}>{}</text>"##,
                x + w / 2.0,
                top + LINE * i as f64,
                escape(line)
            );
        }
    }
    // The key.
    let ky = HEIGHT - 22.0;
    let _ = writeln!(
        svg,
        r##"<rect x="8" y="{}" width="22" height="14" rx="3" fill="{}" stroke="{}" stroke-width="3"/>"##,
        ky - 11.0,
        NEW.1,
        NEW.0
    );
    let _ = writeln!(
        svg,
        r##"<text x="40" y="{ky}" fill="#202124">new or changed at step {number}</text>"##
    );
    svg.push_str("</svg>\n");
    (svg, problems)
}

fn picture(slug: &str) -> PathBuf {
    src_dir().join(format!("diagrams/{slug}.svg"))
}

#[test]
fn every_picture_is_drawn_from_its_source() {
    let bless = blessing();
    let mut problems = Vec::new();
    for step in source().step {
        let (svg, mut wrong) = draw(&step);
        problems.append(&mut wrong);
        let path = picture(&step.slug);
        if bless {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, &svg).unwrap();
        } else if std::fs::read_to_string(&path).ok().as_deref() != Some(svg.as_str()) {
            problems.push(format!(
                "{} is not what diagrams/steps.toml draws",
                path.display()
            ));
        }
    }
    assert_blessed(&problems, "diagrams");
}

#[test]
fn every_step_has_a_picture_and_its_chapter_shows_it() {
    let steps: Vec<String> = source().step.into_iter().map(|s| s.slug).collect();
    let mut problems = Vec::new();
    for (page, text) in chapters() {
        if !page.as_bytes().first().is_some_and(u8::is_ascii_digit) {
            continue;
        }
        let slug = page.trim_end_matches(".md");
        if !steps.iter().any(|s| s == slug) {
            problems.push(format!("{page}: diagrams/steps.toml has no step {slug}"));
        }
        if !text.contains(&format!("](diagrams/{slug}.svg)")) {
            problems.push(format!("{page} does not show diagrams/{slug}.svg"));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn a_highlight_marks_what_changed_since_the_step_before() {
    // A box drawn as it was at the step before must not be highlighted; a box that is new or
    // whose text changed must be.
    let steps = source().step;
    let mut problems = Vec::new();
    for pair in steps.windows(2) {
        let (before, now) = (&pair[0], &pair[1]);
        for part in &now.boxes {
            let same = before
                .boxes
                .iter()
                .any(|b| b.at == part.at && b.lines == part.lines);
            if same == part.new {
                problems.push(format!(
                    "{}: {} is {} but drawn {}",
                    now.slug,
                    part.at,
                    if same {
                        "as at the step before"
                    } else {
                        "new or changed"
                    },
                    if part.new { "highlighted" } else { "plain" }
                ));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
