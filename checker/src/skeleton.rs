//! Exercise skeletons, derived from the reference solutions.
//!
//! A step's skeleton is its solution with a few *holes*: each hole is an exact piece of the
//! solution (the code that is the step's lesson) and what the exercise has there instead, a
//! `// TODO:` comment in plain words and a `todo!()` in expression position. The holes live in
//! `checker/skeletons.toml`, compiled into the checker, so that `checker reset` can restore a
//! pristine skeleton without git, and the dev check can build pristine skeletons without
//! reading a learner's edited `exercises/`.

use crate::catalog::Step;
use crate::progress::Track;
use anyhow::{bail, Context, Result};
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Hole {
    /// The step's slug.
    pub step: String,
    /// The file, relative to the crate (`src/lib.rs`).
    pub file: String,
    /// The exact text in the solution, to be found exactly once...
    #[serde(default)]
    pub solution: Option<String>,
    /// ...or the name of the anchored region of the solution's file that the hole is.
    #[serde(default)]
    pub anchor: Option<String>,
    /// What the guided track's exercise has instead (or, for a hole of the open track only,
    /// what the open track's has).
    pub exercise: String,
    /// What the open track's exercise has instead: the same code, other words.
    #[serde(default)]
    pub open: Option<String>,
    /// `open` for a hole of the open track only.
    #[serde(default)]
    pub track: Option<Track>,
}

impl Hole {
    /// What the exercise of `track` has in place of the solution's text, if this hole is one of
    /// that track's.
    pub fn text_for(&self, track: Track) -> Option<&str> {
        match (track, self.track) {
            (Track::Guided, Some(Track::Open)) => None,
            (Track::Guided, _) => Some(&self.exercise),
            (_, _) => Some(self.open.as_deref().unwrap_or(&self.exercise)),
        }
    }

    /// The text of the solution that this hole replaces, as the exercise's reference has it
    /// (without anchor lines): `solution`, or the region between its anchor's lines in `text`,
    /// the solution's file.
    pub fn solution_text(&self, text: &str) -> Result<String> {
        match (&self.solution, &self.anchor) {
            (Some(solution), None) => Ok(solution.clone()),
            (None, Some(name)) => {
                let lines: Vec<&str> = text.split_inclusive('\n').collect();
                let at = |marker: String| {
                    lines
                        .iter()
                        .position(|l| l.trim() == marker)
                        .with_context(|| format!("no line `{marker}` in the solution"))
                };
                let start = at(format!("// ANCHOR: {name}"))?;
                let end = at(format!("// ANCHOR_END: {name}"))?;
                if end <= start + 1 {
                    bail!("the anchor {name} holds no code");
                }
                Ok(without_anchors(&lines[start + 1..end].concat()))
            }
            _ => bail!(
                "a hole of {} in {} needs either `solution` or `anchor`",
                self.step,
                self.file
            ),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    hole: Vec<Hole>,
}

const SKELETONS_TOML: &str = include_str!("../skeletons.toml");

pub fn holes() -> &'static [Hole] {
    static HOLES: OnceLock<Vec<Hole>> = OnceLock::new();
    HOLES.get_or_init(|| {
        toml::from_str::<File>(SKELETONS_TOML)
            .expect("checker/skeletons.toml is valid (tested)")
            .hole
    })
}

/// The package name of a step's exercise; the solution's is the same plus `_solution`.
pub fn exercise_package(step: &Step) -> String {
    format!("step{}", step.slug)
}

/// Every file of a crate that a skeleton is made of: the manifest and the sources.
fn crate_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut files = vec![PathBuf::from("Cargo.toml")];
    let mut stack = vec![PathBuf::from("src")];
    while let Some(rel) = stack.pop() {
        let entries = std::fs::read_dir(dir.join(&rel))
            .with_context(|| format!("reading {}", dir.join(&rel).display()))?;
        for entry in entries {
            let entry = entry?;
            let path = rel.join(entry.file_name());
            if entry.file_type()?.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                files.push(path);
            }
        }
    }
    files.sort();
    Ok(files)
}

/// The reference solution of `step` as the exercise would have it, file by file: named like the
/// exercise crate and without the book's include markers (what `checker diff` compares with).
pub fn reference(root: &Path, step: &Step) -> Result<Vec<(PathBuf, String)>> {
    Ok(solution_files(root, step)?
        .into_iter()
        .map(|(rel, text)| {
            let text = as_exercise(step, &text);
            (rel, text)
        })
        .collect())
}

/// The solution's files as they are, anchors included.
fn solution_files(root: &Path, step: &Step) -> Result<Vec<(PathBuf, String)>> {
    let solution = root.join(step.solution_dir());
    crate_files(&solution)?
        .into_iter()
        .map(|rel| {
            let path = solution.join(&rel);
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("reading {}", path.display()))?;
            Ok((rel, text))
        })
        .collect()
}

/// A solution file's text as the exercise has it: without anchors, and named like the exercise
/// crate (without the `_solution` suffix, in the manifest and in `main.rs`'s `use`).
fn as_exercise(step: &Step, text: &str) -> String {
    let package = exercise_package(step);
    without_anchors(text).replace(&format!("{package}_solution"), &package)
}

/// The pristine skeleton of `step` on `track` (the own track has none: it gets the open one):
/// (path relative to the crate, contents) for every file.
pub fn pristine(root: &Path, step: &Step, track: Track) -> Result<Vec<(PathBuf, String)>> {
    let step_holes: Vec<(&Hole, &str)> = holes()
        .iter()
        .filter(|h| h.step == step.slug)
        .filter_map(|h| Some((h, h.text_for(track)?)))
        .collect();
    for (hole, _) in &step_holes {
        let known = crate_files(&root.join(step.solution_dir()))?;
        if !known.iter().any(|rel| Path::new(&hole.file) == rel) {
            bail!(
                "a hole of {} names {}, which solutions/{} does not have",
                step.slug,
                hole.file,
                step.slug
            );
        }
    }
    let mut out = Vec::new();
    for (rel, original) in solution_files(root, step)? {
        let mut text = as_exercise(step, &original);
        for (hole, exercise) in step_holes.iter().filter(|(h, _)| Path::new(&h.file) == rel) {
            let solution = hole
                .solution_text(&original)
                .with_context(|| format!("a hole of {} in {}", step.slug, rel.display()))?;
            let found = text.matches(solution.as_str()).count();
            if found != 1 {
                bail!(
                    "a hole of {} no longer fits {}/{}: its solution text is found {found} times instead of once. Update checker/skeletons.toml to match the solution.",
                    step.slug,
                    step.solution_dir(),
                    rel.display()
                );
            }
            text = text.replacen(&solution, exercise, 1);
        }
        if rel == Path::new("src/lib.rs") || rel == Path::new("src/main.rs") {
            text = with_unused_allowed(&text);
        }
        out.push((rel, text));
    }
    Ok(out)
}

/// The text without mdBook's `// ANCHOR: name` and `// ANCHOR_END: name` lines.
fn without_anchors(text: &str) -> String {
    text.split_inclusive('\n')
        .filter(|line| {
            let t = line.trim_start();
            !(t.starts_with("// ANCHOR:") || t.starts_with("// ANCHOR_END:"))
        })
        .collect()
}

/// Adds `#![allow(unused)]` after the crate's `//!` documentation: the `todo!()`s leave some
/// imports, fields and variables unused until the learner fills them in, and a wall of
/// warnings would hide the compiler errors that matter.
fn with_unused_allowed(text: &str) -> String {
    const ALLOW: &str = "\n// The TODOs leave some code unused until you write them. Once every TODO is done, delete\n// these three lines: the compiler then checks again that nothing is left over.\n#![allow(unused)]\n";
    let docs_end: usize = text
        .split_inclusive('\n')
        .take_while(|l| l.starts_with("//!"))
        .map(str::len)
        .sum();
    format!("{}{ALLOW}{}", &text[..docs_end], &text[docs_end..])
}

/// Whether `exercises/<slug>` is exactly the pristine skeleton of `track`.
pub fn is_pristine(root: &Path, step: &Step, track: Track) -> Result<bool> {
    let dir = root.join(step.exercise_dir());
    let files = pristine(root, step, track)?;
    let same = files
        .iter()
        .all(|(rel, text)| std::fs::read_to_string(dir.join(rel)).is_ok_and(|t| &t == text));
    Ok(same && crate_files(&dir).is_ok_and(|have| have.len() == files.len()))
}

/// Writes the pristine skeleton of `step` on `track` into `exercises/<slug>`, replacing what
/// is there.
pub fn write_pristine(root: &Path, step: &Step, track: Track) -> Result<()> {
    write_crate(
        &root.join(step.exercise_dir()),
        &pristine(root, step, track)?,
    )
}

/// Writes `files` (paths relative to the crate) as the whole of the crate in `dir`: its `src/`
/// is replaced, so that no file of an earlier version is left behind.
pub fn write_crate(dir: &Path, files: &[(PathBuf, String)]) -> Result<()> {
    let src = dir.join("src");
    if src.exists() {
        std::fs::remove_dir_all(&src).with_context(|| format!("removing {}", src.display()))?;
    }
    for (rel, text) in files {
        let path = dir.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating {}", parent.display()))?;
        }
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::steps;
    use std::collections::BTreeSet;

    fn root() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .unwrap()
            .to_path_buf()
    }

    #[test]
    fn every_hole_fits_its_solution_exactly_once_and_every_step_has_one() {
        for (step, track) in steps()
            .iter()
            .flat_map(|s| [(s, Track::Guided), (s, Track::Open)])
        {
            let files = pristine(&root(), step, track).unwrap_or_else(|e| panic!("{e:#}"));
            let todos = files
                .iter()
                .map(|(_, t)| t.matches("todo!(").count())
                .sum::<usize>();
            let comments = files
                .iter()
                .map(|(_, t)| t.matches("// TODO:").count())
                .sum::<usize>();
            assert!(todos > 0, "{} ({track:?}) has no todo!()", step.slug);
            assert!(
                comments >= todos,
                "{}: every todo!() needs a // TODO: comment",
                step.slug
            );
            let manifest = &files
                .iter()
                .find(|(p, _)| p == Path::new("Cargo.toml"))
                .unwrap()
                .1;
            assert!(
                manifest.contains(&format!("name = \"{}\"", exercise_package(step))),
                "{manifest}"
            );
        }
    }

    #[test]
    fn anchors_are_stripped_and_nothing_else() {
        let text = "a\n    // ANCHOR: x\nb\n    // ANCHOR_END: x\n// ANCHORS aweigh\n";
        assert_eq!(without_anchors(text), "a\nb\n// ANCHORS aweigh\n");
    }

    #[test]
    fn unused_is_allowed_right_after_the_crate_docs() {
        let out = with_unused_allowed("//! Docs.\n//! More.\n\nuse x;\n");
        assert!(
            out.starts_with("//! Docs.\n//! More.\n\n// The TODOs"),
            "{out}"
        );
        assert!(out.contains("#![allow(unused)]\n\nuse x;"), "{out}");
    }

    #[test]
    fn holes_name_known_steps() {
        for hole in holes() {
            assert!(
                steps().iter().any(|s| s.slug == hole.step),
                "unknown step {}",
                hole.step
            );
            // A hole of the open track only hides given text; every other hole is a todo!()
            // on both tracks.
            if hole.track == Some(Track::Open) {
                assert!(
                    hole.open.is_none(),
                    "a hole of {} for one track has one text",
                    hole.step
                );
                continue;
            }
            assert!(
                hole.exercise.contains("todo!("),
                "a hole of {} has no todo!()",
                hole.step
            );
            assert!(
                hole.open.is_some(),
                "a hole of {} has no text for the open track",
                hole.step
            );
        }
    }

    /// The text without comments: what the compiler sees.
    fn code_of(text: &str) -> String {
        text.lines()
            .map(|l| l.split("//").next().unwrap_or_default().trim_end())
            .filter(|l| !l.trim().is_empty())
            .collect::<Vec<_>>()
            .join("\n")
    }

    #[test]
    fn both_tracks_have_the_same_code_and_differ_in_words() {
        for step in steps() {
            let guided = pristine(&root(), step, Track::Guided).unwrap();
            let open = pristine(&root(), step, Track::Open).unwrap();
            assert_eq!(guided.len(), open.len());
            let mut differ = false;
            for ((rel, g), (_, o)) in guided.iter().zip(&open) {
                assert_eq!(
                    code_of(g),
                    code_of(o),
                    "{} {}: the open skeleton's code differs from the guided one's",
                    step.slug,
                    rel.display()
                );
                differ |= g != o;
            }
            assert!(differ, "{}: both tracks have the same words", step.slug);
        }
    }

    /// Names in the given code that an open hole may use, each with why it gives nothing away.
    const GIVEN_NAMES: &[(&str, &str)] = &[
        (
            "finished",
            "the binding the shutdown hole must produce: its type is in the code already",
        ),
        (
            "LINGER_QUIET",
            "the given constant that bounds the lingering close: a number, not a way",
        ),
    ];

    /// Identifiers of `text` that look like code: every one inside backticks, and, outside
    /// them, words with `_` or `::` in them.
    fn code_words(text: &str) -> BTreeSet<String> {
        let mut words = BTreeSet::new();
        for (i, part) in text.split('`').enumerate() {
            for word in part.split(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':')) {
                for ident in word.split("::").filter(|w| !w.is_empty()) {
                    if i % 2 == 1 || word.contains('_') || word.contains("::") {
                        words.insert(ident.to_string());
                    }
                }
            }
        }
        words
    }

    /// The identifiers of a piece of code, string literals and comments left out.
    fn identifiers(code: &str) -> BTreeSet<String> {
        let code: String = code_of(code)
            .split('"')
            .step_by(2)
            .collect::<Vec<_>>()
            .join(" ");
        code.split(|c: char| !(c.is_alphanumeric() || c == '_'))
            .filter(|w| {
                w.chars()
                    .next()
                    .is_some_and(|c| c.is_alphabetic() || c == '_')
            })
            .map(str::to_string)
            .collect()
    }

    #[test]
    fn open_holes_name_nothing_their_solution_uses() {
        let mut shared = Vec::new();
        for hole in holes().iter().filter(|h| h.track.is_none()) {
            let step = steps().iter().find(|s| s.slug == hole.step).unwrap();
            let original =
                std::fs::read_to_string(root().join(step.solution_dir()).join(&hole.file)).unwrap();
            let solution = identifiers(&hole.solution_text(&original).unwrap());
            let open = hole.open.as_deref().unwrap();
            let said: String = open
                .lines()
                .filter_map(|l| l.trim_start().strip_prefix("//"))
                .collect::<Vec<_>>()
                .join(" ");
            for word in code_words(&said) {
                if solution.contains(&word) && !GIVEN_NAMES.iter().any(|(n, _)| *n == word) {
                    shared.push(format!("{} {}: `{word}`", hole.step, hole.file));
                }
            }
        }
        assert!(
            shared.is_empty(),
            "open holes that name what their solution uses:\n{}",
            shared.join("\n")
        );
    }

    #[test]
    fn code_words_are_found_in_backticks_and_by_their_shape() {
        let words =
            code_words("Call `reader.read_until(b'x')` or spawn a server_busy Reply::Ok task");
        let want: BTreeSet<String> = [
            "reader",
            "read_until",
            "b",
            "x",
            "server_busy",
            "Reply",
            "Ok",
        ]
        .map(String::from)
        .into();
        assert_eq!(words, want);
        assert!(identifiers("let x = \"read_until\"; // spawn\nfoo.bar()").contains("bar"));
        assert!(!identifiers("let x = \"read_until\"; // spawn").contains("spawn"));
    }
}
