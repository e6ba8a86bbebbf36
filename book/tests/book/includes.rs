//! (3) Every `{{#include path:anchor}}` names a file that exists and an anchor that file
//! defines (`// ANCHOR: name` ... `// ANCHOR_END: name`, with code between). mdBook only logs a
//! missing file, and silently includes nothing for a missing anchor: this test says so loudly.

use std::path::Path;

use regex::Regex;

use crate::util::{chapters, src_dir};

/// What is wrong with the includes of one chapter (`file`, whose text is `text`).
pub fn include_problems(file: &str, text: &str, src: &Path) -> Vec<String> {
    let directive = Regex::new(r"\{\{#(include|rustdoc_include)\s+([^}\s]+)\s*\}\}").unwrap();
    let mut problems = Vec::new();
    for (n, line) in text.lines().enumerate() {
        for c in directive.captures_iter(line) {
            let at = format!("{file}:{}: {}", n + 1, &c[0]);
            let mut parts = c[2].split(':');
            let rel = parts.next().unwrap_or_default();
            let selector: Vec<&str> = parts.collect();
            if !["../../solutions/", "../mistakes/", "../samples/"]
                .iter()
                .any(|p| rel.starts_with(p))
            {
                problems.push(format!(
                    "{at}: the book includes code from the solutions (../../solutions/...), the compiled mistakes (../mistakes/...) and the checker's samples (../samples/...) only"
                ));
            }
            let path = src.join(rel);
            let Ok(code) = std::fs::read_to_string(&path) else {
                problems.push(format!("{at}: no such file {}", path.display()));
                continue;
            };
            match selector.as_slice() {
                [] => {}
                [anchor] if !anchor.chars().all(|c| c.is_ascii_digit()) => {
                    let start = Regex::new(&format!(r"ANCHOR:\s*{}\b", regex::escape(anchor))).unwrap();
                    let end = Regex::new(&format!(r"ANCHOR_END:\s*{}\b", regex::escape(anchor))).unwrap();
                    let lines: Vec<&str> = code.lines().collect();
                    let first = lines.iter().position(|l| start.is_match(l));
                    let last = lines.iter().position(|l| end.is_match(l));
                    match (first, last) {
                        (Some(a), Some(b)) if b > a + 1 => {}
                        (Some(_), Some(_)) => problems.push(format!("{at}: anchor {anchor:?} holds no code")),
                        _ => problems.push(format!("{at}: {} has no `ANCHOR: {anchor}` ... `ANCHOR_END: {anchor}`", path.display())),
                    }
                }
                _ => problems.push(format!("{at}: include by anchor name, not by line numbers, so that code and text cannot drift")),
            }
        }
    }
    problems
}

#[test]
fn every_include_names_an_existing_file_and_anchor() {
    let mut problems = Vec::new();
    let mut count = 0;
    for (file, text) in chapters() {
        count += text.matches("{{#include").count();
        problems.extend(include_problems(&file, &text, &src_dir()));
    }
    assert!(
        count > 0,
        "the chapters include no code at all: has the include syntax changed?"
    );
    assert!(
        problems.is_empty(),
        "broken includes:\n  {}",
        problems.join("\n  ")
    );
}

#[test]
fn a_missing_anchor_is_caught() {
    let tmp = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("eventkit-book-includes");
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(tmp.join("book/src")).unwrap();
    std::fs::create_dir_all(tmp.join("solutions")).unwrap();
    std::fs::write(
        tmp.join("solutions/a.rs"),
        "// ANCHOR: here\nfn f() {}\n// ANCHOR_END: here\n// ANCHOR: empty\n// ANCHOR_END: empty\n",
    )
    .unwrap();
    let text = "{{#include ../../solutions/a.rs:here}}\n{{#include ../../solutions/a.rs:there}}\n\
                {{#include ../../solutions/a.rs:empty}}\n{{#include ../../solutions/b.rs:here}}\n\
                {{#include ../../solutions/a.rs:1:2}}\n";
    let problems = include_problems("x.md", text, &tmp.join("book/src"));
    assert_eq!(problems.len(), 4, "{problems:#?}");
    assert!(problems[0].contains("ANCHOR: there"), "{problems:#?}");
    assert!(problems[1].contains("holds no code"), "{problems:#?}");
    assert!(problems[2].contains("no such file"), "{problems:#?}");
    assert!(problems[3].contains("by anchor name"), "{problems:#?}");
}
