//! (2) Every internal link of the built HTML leads to a page that exists, and every `#anchor`
//! to an element with that id on that page: a renamed heading or chapter breaks this test, not
//! a reader's click.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use regex::Regex;

use crate::util::built;

/// Every `.html` file under `dir`.
fn html_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "html") {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

/// Resolves `a/../b` without touching the file system.
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            std::path::Component::ParentDir => {
                out.pop();
            }
            std::path::Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

/// The broken internal links and anchors of the HTML in `html` (empty when all resolve).
pub fn broken_links(html: &Path) -> Vec<String> {
    let link = Regex::new(r#"\b(?:href|src)="([^"]*)""#).unwrap();
    let id = Regex::new(r#"\bid="([^"]*)""#).unwrap();
    let pages = html_files(html);
    let ids: BTreeMap<PathBuf, BTreeSet<String>> = pages
        .iter()
        .map(|p| {
            let text = std::fs::read_to_string(p).unwrap();
            (
                normalize(p),
                id.captures_iter(&text).map(|c| c[1].to_string()).collect(),
            )
        })
        .collect();
    let mut broken = Vec::new();
    for page in &pages {
        // The 404 page is served from the site's root, whatever the URL: its links are absolute.
        if page.file_name().is_some_and(|n| n == "404.html") {
            continue;
        }
        let text = std::fs::read_to_string(page).unwrap();
        let shown = page
            .strip_prefix(html)
            .unwrap_or(page)
            .display()
            .to_string();
        for c in link.captures_iter(&text) {
            let target = c[1].replace("&amp;", "&");
            let external = ["http:", "https:", "mailto:", "javascript:", "data:", "//"];
            if target.is_empty() || target == "#" || external.iter().any(|e| target.starts_with(e))
            {
                continue;
            }
            let (path_part, fragment) = match target.split_once('#') {
                Some((p, f)) => (p, Some(f)),
                None => (target.as_str(), None),
            };
            let path_part = path_part.split('?').next().unwrap_or("");
            let file = if path_part.is_empty() {
                normalize(page)
            } else {
                normalize(&page.parent().unwrap().join(path_part))
            };
            if !file.is_file() {
                broken.push(format!("{shown}: {target} (no such file)"));
                continue;
            }
            if let Some(fragment) = fragment {
                let known = ids.get(&file).is_some_and(|set| set.contains(fragment));
                if !fragment.is_empty() && !known {
                    broken.push(format!(
                        "{shown}: {target} (no id=\"{fragment}\" on that page)"
                    ));
                }
            }
        }
    }
    broken.sort();
    broken.dedup();
    broken
}

#[test]
fn every_internal_link_and_anchor_resolves() {
    let built = built().as_ref().unwrap_or_else(|e| panic!("{e}"));
    let broken = broken_links(&built.html);
    assert!(
        broken.is_empty(),
        "{} broken links in the built book:\n  {}",
        broken.len(),
        broken.join("\n  ")
    );
}

#[test]
fn the_link_checker_sees_a_broken_anchor() {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("eventkit-book-linkcheck");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("a.html"),
        r##"<h2 id="here">x</h2><a href="b.html#there">b</a><a href="#here">a</a>"##,
    )
    .unwrap();
    std::fs::write(dir.join("b.html"), r##"<h2 id="elsewhere">x</h2><a href="c.html">c</a><a href="https://example.com/#x">e</a>"##).unwrap();
    let broken = broken_links(&dir);
    assert_eq!(
        broken,
        vec![
            "a.html: b.html#there (no id=\"there\" on that page)".to_string(),
            "b.html: c.html (no such file)".to_string()
        ]
    );
}
