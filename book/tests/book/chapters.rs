//! The chapters follow the course's own data: every step of `checker/steps.toml` has its
//! chapter `book/src/<slug>.md`, listed in `SUMMARY.md` in course order, which states the step's
//! lesson word for word, names every check the step adds, shows the step's demo, includes code
//! from the step's own solution, and names every file of `checker/skeletons.toml` where the
//! exercise has a TODO. Rename a check or reword a lesson, and this test points at the chapter.

use std::collections::BTreeSet;

use crate::util::{root, src_dir};

struct Step {
    number: usize,
    slug: String,
    lesson: String,
    bonus: bool,
    /// The checks the step adds to the suite of the step before it.
    checks: Vec<String>,
    /// The hints `checker hint` gives, in order.
    hints: Vec<String>,
}

fn steps() -> Vec<Step> {
    let text =
        std::fs::read_to_string(root().join("checker/steps.toml")).expect("checker/steps.toml");
    let value: toml::Value = toml::from_str(&text).expect("valid steps.toml");
    value["step"]
        .as_array()
        .expect("[[step]] tables")
        .iter()
        .enumerate()
        .map(|(i, s)| Step {
            number: i + 1,
            slug: s["slug"].as_str().unwrap().to_string(),
            lesson: s["lesson"].as_str().unwrap().to_string(),
            bonus: s.get("bonus").and_then(|b| b.as_bool()).unwrap_or(false),
            checks: s["adds"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c.as_str().unwrap().to_string())
                .collect(),
            hints: s["hints"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c.as_str().unwrap().to_string())
                .collect(),
        })
        .collect()
}

/// (step slug, file) of every hole of the exercises.
fn holes() -> Vec<(String, String)> {
    let text = std::fs::read_to_string(root().join("checker/skeletons.toml"))
        .expect("checker/skeletons.toml");
    let value: toml::Value = toml::from_str(&text).expect("valid skeletons.toml");
    value
        .get("hole")
        .and_then(|h| h.as_array())
        .map(|holes| {
            holes
                .iter()
                .map(|h| {
                    (
                        h["step"].as_str().unwrap().to_string(),
                        h["file"].as_str().unwrap().to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// What a chapter lacks, given the step, the checks earlier steps already ran, and its text.
fn chapter_problems(
    step: &Step,
    earlier: &BTreeSet<String>,
    holes: &[(String, String)],
    text: &str,
) -> Vec<String> {
    let file = format!("{}.md", step.slug);
    let mut problems = Vec::new();
    if !text.contains(&step.lesson) {
        problems.push(format!(
            "{file} never states the lesson {:?} word for word",
            step.lesson
        ));
    }
    for check in step.checks.iter().filter(|c| !earlier.contains(*c)) {
        if !text.contains(&format!("`{check}`")) {
            problems.push(format!("{file} never names the step's new check `{check}`"));
        }
    }
    if !text.contains(&format!("demo {:02}", step.number)) {
        problems.push(format!(
            "{file} never shows `checker demo {:02}`",
            step.number
        ));
    }
    if !text.contains(&format!("{{{{#include ../../solutions/{}/", step.slug)) {
        problems.push(format!(
            "{file} includes no code from solutions/{}",
            step.slug
        ));
    }
    // The step's own reference is the answer: it is shown only inside a fold for after the
    // learner passes, and the hints are folded one by one.
    let include = format!("{{{{#include ../../solutions/{}/", step.slug);
    for (at, _) in text.match_indices(&include) {
        let before = &text[..at];
        let opened = before.rfind("<details class=\"after-you-pass\">");
        let closed = before.rfind("</details>");
        if opened.is_none() || closed > opened {
            let line = before.lines().count() + 1;
            problems.push(format!(
                "{file}:{line} shows the step's own reference outside the after-you-pass fold"
            ));
        }
    }
    if let Some(hints) = text.split("\n## Hints\n").nth(1) {
        let hints = hints.split("\n## ").next().unwrap_or_default();
        let folds = hints.matches("<summary>Hint ").count();
        if folds == 0 || hints.contains("\n- ") {
            problems.push(format!("{file}'s hints are not folded one by one"));
        }
        // The same hints as `checker hint`, in the same order, so that the two never drift.
        let folded: Vec<String> = hints
            .split("</summary>")
            .skip(1)
            .map(|f| {
                f.split("</details>")
                    .next()
                    .unwrap_or_default()
                    .trim()
                    .replace("&lt;", "<")
                    .replace("&gt;", ">")
                    .replace("&amp;", "&")
            })
            .collect();
        if folded != step.hints {
            problems.push(format!(
                "{file}'s hints are not those of checker/steps.toml, in order:\n  book: {folded:?}\n  steps.toml: {:?}",
                step.hints
            ));
        }
    } else {
        problems.push(format!("{file} has no Hints section"));
    }
    for (_, hole_file) in holes.iter().filter(|(s, _)| *s == step.slug) {
        let path = format!("exercises/{}/{hole_file}", step.slug);
        if !text.contains(&path) {
            problems.push(format!(
                "{file} never names {path}, where the exercise has a TODO"
            ));
        }
    }
    problems
}

#[test]
fn every_step_has_its_chapter_in_course_order() {
    let summary =
        std::fs::read_to_string(src_dir().join("SUMMARY.md")).expect("book/src/SUMMARY.md");
    let steps = steps();
    let course = steps.iter().filter(|s| !s.bonus).count();
    assert_eq!(
        (course, steps.len()),
        (10, 12),
        "the course has ten steps, then two bonus steps"
    );
    let mut last = 0;
    for step in &steps {
        let link = format!("({}.md)", step.slug);
        let at = summary
            .find(&link)
            .unwrap_or_else(|| panic!("SUMMARY.md does not list {}.md", step.slug));
        assert!(
            at > last,
            "SUMMARY.md lists {}.md out of course order",
            step.slug
        );
        last = at;
    }
    for page in [
        "introduction.md",
        "contract.md",
        "checker.md",
        "teachers.md",
        "troubleshooting.md",
    ] {
        assert!(
            summary.contains(&format!("({page})")),
            "SUMMARY.md does not list {page}"
        );
    }
}

#[test]
fn every_chapter_states_its_lesson_checks_demo_code_and_exercise() {
    let holes = holes();
    let mut earlier = BTreeSet::new();
    let mut problems = Vec::new();
    for step in steps() {
        let path = src_dir().join(format!("{}.md", step.slug));
        match std::fs::read_to_string(&path) {
            Ok(text) => problems.extend(chapter_problems(&step, &earlier, &holes, &text)),
            Err(e) => problems.push(format!("{}: {e}", path.display())),
        }
        earlier.extend(step.checks.iter().cloned());
    }
    assert!(
        problems.is_empty(),
        "chapters out of step with the course:\n  {}",
        problems.join("\n  ")
    );
}

#[test]
fn a_chapter_that_drifts_is_caught() {
    let step = Step {
        number: 5,
        slug: "05_backpressure".into(),
        lesson: "Dropping data is better than crashing".into(),
        bonus: false,
        checks: vec!["valid_events".into(), "burst_gets_server_busy".into()],
        hints: vec!["Queue it: Sender<Event>.".into()],
    };
    let earlier: BTreeSet<String> = ["valid_events".to_string()].into();
    let holes = vec![("05_backpressure".to_string(), "src/worker.rs".to_string())];
    let good = "Dropping data is better than crashing. `burst_gets_server_busy`. `checker demo 05`. \
                exercises/05_backpressure/src/worker.rs\n## Hints\n<details>\n<summary>Hint 1 of 1</summary>\n\nQueue it: Sender&lt;Event&gt;.\n\n</details>\n\
                ## How it works\n<details class=\"after-you-pass\">\n\
                {{#include ../../solutions/05_backpressure/src/lib.rs:queue}}\n</details>";
    assert_eq!(
        chapter_problems(&step, &earlier, &holes, good),
        Vec::<String>::new()
    );
    let drifted = "Dropping data is better than failing. `burst_gets_busy`. `checker demo 5`.\n\
                   ## Hints\n- a hint in plain sight\n";
    assert_eq!(chapter_problems(&step, &earlier, &holes, drifted).len(), 7);
    // Hints that are not those `checker hint` gives.
    let other_hint = good.replace("Queue it", "Queue them");
    assert_eq!(
        chapter_problems(&step, &earlier, &holes, &other_hint).len(),
        1
    );
    // The answer in plain sight, before any fold.
    let spoiled = good.replace(
        "## Hints",
        "{{#include ../../solutions/05_backpressure/src/lib.rs:queue}}\n## Hints",
    );
    assert_eq!(chapter_problems(&step, &earlier, &holes, &spoiled).len(), 1);
}

/// The section names the introduction promises, in order: the first bold words of each item
/// of its numbered list of a chapter's shape.
fn promised_sections(introduction: &str) -> Vec<String> {
    introduction
        .lines()
        .skip_while(|l| !l.starts_with("1. **"))
        .take_while(|l| !l.trim().is_empty())
        .filter(|l| l.chars().next().is_some_and(|c| c.is_ascii_digit()))
        .filter_map(|l| l.split("**").nth(1).map(str::to_string))
        .collect()
}

#[test]
fn every_chapter_has_the_sections_the_introduction_names_in_its_order() {
    let introduction = std::fs::read_to_string(src_dir().join("introduction.md")).unwrap();
    let promised = promised_sections(&introduction);
    assert_eq!(promised.len(), 8, "{promised:?}");
    let mut wrong = Vec::new();
    for step in steps() {
        let text = std::fs::read_to_string(src_dir().join(format!("{}.md", step.slug))).unwrap();
        let headings: Vec<&str> = text.lines().filter_map(|l| l.strip_prefix("## ")).collect();
        if headings != promised {
            wrong.push(format!("{}: {headings:?}", step.slug));
        }
    }
    assert!(
        wrong.is_empty(),
        "the introduction names the sections {promised:?}, but:\n{}",
        wrong.join("\n")
    );
    // The test sees a chapter that lacks one.
    assert_ne!(
        promised_sections("1. **The pain**\n2. **What changes**\n"),
        promised
    );
}

#[test]
fn appendices_are_lettered_in_the_order_of_the_summary() {
    let summary = std::fs::read_to_string(src_dir().join("SUMMARY.md")).unwrap();
    let appendices = summary.split("# Appendices").nth(1).unwrap_or_default();
    for (i, page) in appendices
        .lines()
        .filter_map(|l| l.split("](").nth(1).and_then(|r| r.strip_suffix(')')))
        .enumerate()
    {
        let text = std::fs::read_to_string(src_dir().join(page)).unwrap();
        let letter = (b'A' + i as u8) as char;
        assert!(
            text.starts_with(&format!("# Appendix {letter} · ")),
            "{page} should start with \"# Appendix {letter} · \": {}",
            text.lines().next().unwrap_or_default()
        );
    }
}
