//! The reference graphs of `checker bench`: every chapter shows one (but step 03's, whose lesson
//! is correctness and has no benchmark), every graph a chapter shows is in `src/graphs/` with
//! its data beside it, every graph there is shown somewhere, and every graph says which machine
//! it was measured on.

use std::collections::BTreeSet;

use crate::util::{chapters, src_dir};

/// The chapters without a graph, and why: `checker bench` has no scenario for them.
// Step 03's lesson is correctness: there is nothing to plot.
const NO_GRAPH: &[&str] = &["03_parse_events.md"];

/// The graphs (`graphs/NAME.svg`) a page shows as images.
fn graphs_shown(text: &str) -> Vec<String> {
    text.match_indices("](graphs/")
        .filter_map(|(at, _)| {
            let rest = &text[at + 2..];
            let end = rest.find(')')?;
            Some(rest[..end].to_string())
        })
        .collect()
}

/// What is wrong with the book's graphs, given each page's (name, text) and the files in
/// `src/graphs/` (name → contents).
fn graph_problems(pages: &[(String, String)], files: &[(String, String)]) -> Vec<String> {
    let mut problems = Vec::new();
    let mut shown = BTreeSet::new();
    for (page, text) in pages {
        let graphs = graphs_shown(text);
        let is_step = page.as_bytes().first().is_some_and(u8::is_ascii_digit);
        if is_step && graphs.is_empty() && !NO_GRAPH.contains(&page.as_str()) {
            problems.push(format!("{page} shows no graph"));
        }
        for graph in graphs {
            let name = graph.trim_start_matches("graphs/").to_string();
            for data in [name.replace(".svg", ".csv"), name.replace(".svg", ".json")] {
                if !files.iter().any(|(f, _)| *f == data) {
                    problems.push(format!(
                        "{page} shows {graph}, but graphs/{data} is missing"
                    ));
                }
            }
            shown.insert(name);
        }
    }
    for (file, svg) in files.iter().filter(|(f, _)| f.ends_with(".svg")) {
        if !shown.contains(file) {
            problems.push(format!("graphs/{file} is shown by no page"));
        }
        if !svg.contains("measured on ") {
            problems.push(format!(
                "graphs/{file} does not say which machine it was measured on"
            ));
        }
    }
    for graph in &shown {
        if !files.iter().any(|(f, _)| f == graph) {
            problems.push(format!("graphs/{graph} is shown but does not exist"));
        }
    }
    problems
}

#[test]
fn every_chapter_shows_its_graph_and_every_graph_names_its_machine() {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(src_dir().join("graphs")).expect("book/src/graphs") {
        let path = entry.expect("a graph file").path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        files.push((name, std::fs::read_to_string(&path).unwrap_or_default()));
    }
    let problems = graph_problems(&chapters(), &files);
    assert!(
        problems.is_empty(),
        "the book's graphs:\n  {}\nregenerate them with `cargo run --release -p checker -- bench --all --out book/src/graphs`",
        problems.join("\n  ")
    );
}

#[test]
fn a_missing_or_anonymous_graph_is_caught() {
    let page = |name: &str, text: &str| (name.to_string(), text.to_string());
    let file = |name: &str, text: &str| (name.to_string(), text.to_string());
    let files = vec![
        file("05_x.svg", "<text>measured on a machine</text>"),
        file("05_x.csv", ""),
        file("05_x.json", ""),
    ];
    let good = vec![page("05_backpressure.md", "![a graph](graphs/05_x.svg)")];
    assert_eq!(graph_problems(&good, &files), Vec::<String>::new());

    let pages = vec![
        page("05_backpressure.md", "![a graph](graphs/05_y.svg)"),
        page("06_worker_threads.md", "no picture"),
        page("03_parse_events.md", "no picture, and none owed"),
        page("contract.md", "no picture, and none owed"),
    ];
    let anonymous = vec![file("05_x.svg", "<text>no machine</text>")];
    let problems = graph_problems(&pages, &anonymous);
    for expected in [
        "05_backpressure.md shows graphs/05_y.svg, but graphs/05_y.csv is missing",
        "06_worker_threads.md shows no graph",
        "graphs/05_x.svg is shown by no page",
        "graphs/05_x.svg does not say which machine",
        "graphs/05_y.svg is shown but does not exist",
    ] {
        assert!(
            problems.iter().any(|p| p.starts_with(expected)),
            "{expected:?} not in {problems:#?}"
        );
    }
    assert_eq!(problems.len(), 6, "{problems:#?}");
}
