//! The learner's companion verbs: where am I (`checker` alone), `list`, `hint`, `diff`,
//! `solution` and `reset`.

use crate::catalog::{self, steps, Step};
use crate::invocation;
use crate::output::Style;
use crate::progress::{ago, Progress, Status};
use crate::skeleton;
use anyhow::{bail, Result};
use std::io::{BufRead, IsTerminal, Write};
use std::path::Path;

/// `checker` with no arguments: progress over the steps and what to do next.
pub fn status(root: &Path, style: Style) -> Result<()> {
    let progress = Progress::load(root);
    let square = |s: &Step| match progress.status(s) {
        Some(Status::Passed) => style.green("■"),
        // A shape of its own, not only a colour: readable without colour too.
        Some(Status::Failing) => style.red("✘"),
        None => "□".to_string(),
    };
    let course: String = catalog::course().map(square).collect();
    let bonus: String = steps().iter().filter(|s| s.bonus).map(square).collect();
    println!(
        "{}  {course} + {bonus}  {}\n",
        style.bold("eventkit"),
        progress.summary()
    );
    let cmd = invocation();
    if progress.passed() == steps().len() {
        println!("Every step passes, the bonus steps too. Well done: your server survives garbage, overload, races, Ctrl+C and its own users, and you measured it.");
        println!("Re-check everything with `{cmd} verify --all`.");
        return Ok(());
    }
    let step = progress.current();
    if step.bonus && progress.current_course_done() {
        println!("The ten steps pass: the course is complete. The bonus steps are there if you want to go further.");
    }
    let kind = if step.bonus { " (bonus)" } else { "" };
    println!(
        "{}",
        style.bold(&format!("Next{kind}: {} · {}", step.label(), step.title))
    );
    if let Some(r) = progress.results.get(&step.slug) {
        if let (Status::Failing, Some(check)) = (r.status, &r.failing_check) {
            println!("  last run:  {} ({check} failed)", ago(r.at));
        }
    }
    println!("  read:      book/src/{}.md", step.slug);
    println!(
        "  edit:      {}/src/ (look for // TODO:)",
        step.exercise_dir()
    );
    println!("  check:     {cmd} verify");
    println!("  re-check on every save: {cmd} watch");
    println!("  stuck?     {cmd} hint");
    println!(
        "  feel the problem first: {cmd} demo {:02} --solution",
        step.number
    );
    Ok(())
}

/// `checker list`: every step with its status and when it was last checked.
pub fn list(root: &Path, style: Style) -> Result<()> {
    let progress = Progress::load(root);
    let current = progress.current();
    for step in steps() {
        let result = progress.results.get(&step.slug);
        let status = match result.map(|r| r.status) {
            Some(Status::Passed) => style.green("passed     "),
            Some(Status::Failing) => style.red("failing    "),
            None => "not started".to_string(),
        };
        let when = result.map(|r| ago(r.at)).unwrap_or_default();
        let marker = if step.number == current.number {
            "→"
        } else {
            " "
        };
        let title = if step.bonus {
            format!("{} (bonus)", step.title)
        } else {
            step.title.clone()
        };
        println!(
            "{marker} {:02}  {status}  {title:<54} {}",
            step.number,
            style.dim(&when)
        );
    }
    Ok(())
}

/// `checker hint [STEP]`: the failing check's own hint first, then one more of the step's
/// hints each time it is asked.
pub fn hint(root: &Path, step: &'static Step, style: Style) -> Result<()> {
    let mut progress = Progress::load(root);
    if let Some(r) = progress.results.get(&step.slug) {
        if r.status == Status::Failing {
            if let Some(check) = &r.failing_check {
                println!(
                    "Your last `verify` of {} failed {}:",
                    step.label(),
                    style.bold(check)
                );
                if let Some(m) = &r.failing_message {
                    println!("  {m}");
                }
                if let Some(h) = &r.failing_hint {
                    println!("  {} {h}", style.yellow("hint:"));
                }
                println!();
            }
        }
    }
    let shown = progress.hints_shown.entry(step.slug.clone()).or_default();
    *shown = (*shown + 1).min(step.hints.len());
    println!("Hints for {} · {}:", step.label(), step.title);
    for (i, h) in step.hints.iter().take(*shown).enumerate() {
        println!("  {}. {h}", i + 1);
    }
    if *shown < step.hints.len() {
        println!(
            "{}",
            style.dim(&format!(
                "  ({} more: run `{} hint {:02}` again)",
                step.hints.len() - *shown,
                invocation(),
                step.number
            ))
        );
    } else {
        println!(
            "{}",
            style.dim(&format!(
                "  That is every hint. The chapter book/src/{}.md explains the whole step.",
                step.slug
            ))
        );
    }
    progress.save(root);
    Ok(())
}

/// Asks a yes/no question on a terminal; `default` when nobody can answer.
fn confirm(question: &str, default: bool) -> bool {
    if !std::io::stdin().is_terminal() {
        return default;
    }
    print!("{question} [y/N] ");
    let _ = std::io::stdout().flush();
    let mut answer = String::new();
    let _ = std::io::stdin().lock().read_line(&mut answer);
    matches!(answer.trim(), "y" | "Y" | "yes")
}

/// Peeking at the reference before passing a step spoils it: ask first, on a terminal.
fn spoiler_ok(root: &Path, step: &Step, yes: bool) -> bool {
    if yes || Progress::load(root).status(step) == Some(Status::Passed) {
        return true;
    }
    confirm(
        &format!(
            "You have not passed {} yet. Look at the reference anyway?",
            step.label()
        ),
        true,
    )
}

/// `checker solution STEP`: where the reference server is.
pub fn solution(root: &Path, step: &'static Step, yes: bool) -> Result<()> {
    if !spoiler_ok(root, step, yes) {
        println!(
            "Good call. `{} hint {:02}` gives a nudge instead.",
            invocation(),
            step.number
        );
        return Ok(());
    }
    let dir = root.join(step.solution_dir());
    println!(
        "The reference server of {} is in {}",
        step.label(),
        dir.display()
    );
    println!(
        "Compare it with yours: {} diff {:02}",
        invocation(),
        step.number
    );
    Ok(())
}

/// `checker diff STEP`: your exercise against the reference, as a coloured unified diff.
pub fn diff(root: &Path, step: &'static Step, yes: bool, style: Style) -> Result<()> {
    if !spoiler_ok(root, step, yes) {
        return Ok(());
    }
    let ex = root.join(step.exercise_dir());
    if !ex.is_dir() {
        bail!(
            "{} does not exist: restore it with `{} reset {:02}`",
            step.exercise_dir(),
            invocation(),
            step.number
        );
    }
    let mut any = false;
    for (rel, theirs) in skeleton::reference(root, step)? {
        if rel == Path::new("Cargo.toml") {
            continue;
        }
        let mine = std::fs::read_to_string(ex.join(&rel)).unwrap_or_default();
        if mine == theirs {
            continue;
        }
        any = true;
        let a = format!("{}/{}", step.exercise_dir(), rel.display());
        let b = format!("{}/{}", step.solution_dir(), rel.display());
        let diff = similar::TextDiff::from_lines(&mine, &theirs);
        for line in diff
            .unified_diff()
            .context_radius(3)
            .header(&a, &b)
            .to_string()
            .lines()
        {
            let shown = if line.starts_with("+++") || line.starts_with("---") {
                style.bold(line)
            } else if line.starts_with('+') {
                style.green(line)
            } else if line.starts_with('-') {
                style.red(line)
            } else if line.starts_with("@@") {
                style.dim(line)
            } else {
                line.to_string()
            };
            println!("{shown}");
        }
    }
    if !any {
        println!("{} matches the reference exactly.", step.exercise_dir());
    }
    Ok(())
}

/// `checker reset STEP`: restores the pristine skeleton (asks first on a terminal).
pub fn reset(root: &Path, selected: &[&'static Step], yes: bool) -> Result<()> {
    let names: Vec<String> = selected.iter().map(|s| s.exercise_dir()).collect();
    if !yes {
        if !std::io::stdin().is_terminal() {
            bail!(
                "reset overwrites {}: add --yes to confirm when there is no terminal to ask on",
                names.join(", ")
            );
        }
        if !confirm(
            &format!(
                "Replace {} with the pristine skeleton? Your changes there are lost.",
                names.join(", ")
            ),
            false,
        ) {
            println!("Nothing changed.");
            return Ok(());
        }
    }
    let mut progress = Progress::load(root);
    for step in selected {
        skeleton::write_pristine(root, step)?;
        progress.results.remove(&step.slug);
        println!("{} is pristine again.", step.exercise_dir());
    }
    progress.save(root);
    Ok(())
}
