//! The learner's companion verbs: where am I (`checker` alone), `list`, `hint`, `diff`,
//! `solution` and `reset`.

use super::own;
use crate::catalog::{self, steps, Step};
use crate::invocation;
use crate::output::Style;
use crate::progress::{ago, Progress, Status, Track};
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
        progress.learner_dir(step)
    );
    println!("  check:     {cmd} verify");
    println!(
        "  track:     {} (`{cmd} track` says what the others are)",
        progress.track.name()
    );
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
    println!(
        "track: {}   ({} track)",
        progress.track.name(),
        invocation()
    );
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
/// hints each time it is asked, from a nudge to the code-level hint; `--all` shows every hint
/// without counting.
pub fn hint(root: &Path, step: &'static Step, all: bool, style: Style) -> Result<()> {
    let total = step.hints.len();
    if all {
        println!("Hints for {} · {}:", step.label(), step.title);
        for (i, h) in step.hints.iter().enumerate() {
            println!(
                "  {} {h}",
                style.bold(&format!("hint {} of {total}:", i + 1))
            );
        }
        return Ok(());
    }
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
    *shown = (*shown + 1).min(total);
    println!("Hints for {} · {}:", step.label(), step.title);
    for (i, h) in step.hints.iter().take(*shown).enumerate() {
        println!(
            "  {} {h}",
            style.bold(&format!("hint {} of {total}:", i + 1))
        );
    }
    if *shown < total {
        println!(
            "{}",
            style.dim(&format!(
                "  ({} more, each closer to the code: run `{} hint {:02}` again)",
                total - *shown,
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

/// Peeking at the reference before passing a step spoils it: ask first on a terminal, and
/// without one require `--yes`.
fn spoiler_ok(root: &Path, step: &Step, yes: bool) -> Result<bool> {
    if yes || Progress::load(root).status(step) == Some(Status::Passed) {
        return Ok(true);
    }
    if !std::io::stdin().is_terminal() {
        bail!(
            "you have not passed {} yet, and the reference is there to compare with once you have: add --yes to see it anyway",
            step.label()
        );
    }
    Ok(confirm(
        &format!(
            "You have not passed {} yet. The reference is there to compare with once you have. Look anyway?",
            step.label()
        ),
        false,
    ))
}

/// `checker solution STEP`: where the reference server is.
pub fn solution(root: &Path, step: &'static Step, yes: bool) -> Result<()> {
    if !spoiler_ok(root, step, yes)? {
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
    if !spoiler_ok(root, step, yes)? {
        println!("Nothing shown.");
        return Ok(());
    }
    let progress = Progress::load(root);
    let mine_dir = progress.learner_dir(step);
    let ex = root.join(&mine_dir);
    if !ex.is_dir() {
        bail!(
            "{mine_dir} does not exist: restore it with `{} reset {:02}`",
            invocation(),
            step.number
        );
    }
    let reference = if progress.track == Track::Own {
        own::reference_files(root, step)?
    } else {
        skeleton::reference(root, step)?
    };
    let mut any = false;
    for (rel, theirs) in reference {
        let mine = std::fs::read_to_string(ex.join(&rel)).unwrap_or_default();
        if mine == theirs {
            continue;
        }
        any = true;
        let a = format!("{mine_dir}/{}", rel.display());
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
        println!("{mine_dir} matches the reference exactly.");
    }
    Ok(())
}

/// `checker reset STEP`: restores the pristine skeleton (asks first on a terminal), after saving
/// the learner's version under `target/eventkit-saved/` and saying where.
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
                "Replace {} with the pristine skeleton? Your version is saved first.",
                names.join(", ")
            ),
            false,
        ) {
            println!("Nothing changed.");
            return Ok(());
        }
    }
    let mut progress = Progress::load(root);
    let stamp = crate::progress::now();
    for step in selected {
        let saved = save_copy(root, &root.join(step.exercise_dir()), &step.slug, stamp)?;
        skeleton::write_pristine(root, step, progress.track)?;
        progress.results.remove(&step.slug);
        match saved {
            Some(to) => println!(
                "{} is pristine again; your version is saved in {}",
                step.exercise_dir(),
                to.display()
            ),
            None => println!("{} is pristine again.", step.exercise_dir()),
        }
    }
    progress.save(root);
    Ok(())
}

/// Copies the learner's crate in `from` (its `Cargo.toml` and `src/`) to
/// `target/eventkit-saved/NAME-STAMP/`, and says where, relative to the kit; `None` when there
/// is nothing to save.
pub(super) fn save_copy(
    root: &Path,
    from: &Path,
    name: &str,
    stamp: u64,
) -> Result<Option<std::path::PathBuf>> {
    if !from.join("src").is_dir() {
        return Ok(None);
    }
    let to = root
        .join("target/eventkit-saved")
        .join(format!("{name}-{stamp}"));
    copy_tree(&from.join("src"), &to.join("src"))?;
    if from.join("Cargo.toml").is_file() {
        std::fs::copy(from.join("Cargo.toml"), to.join("Cargo.toml"))?;
    }
    Ok(Some(to.strip_prefix(root).unwrap_or(&to).to_path_buf()))
}

fn copy_tree(from: &Path, to: &Path) -> Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_tree(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), target)?;
        }
    }
    Ok(())
}

/// The three tracks, as `checker track` lists them.
const TRACKS: [(Track, &str); 3] = [
    (
        Track::Guided,
        "each step's exercise, with TODOs that name the calls to make",
    ),
    (
        Track::Open,
        "each step's exercise, with TODOs that give the goal, the rule, the concepts and the traps, and leave the code to you (the default)",
    ),
    (
        Track::Own,
        "your own crates in own/, one evolving server for the whole course, graded by the same suites",
    ),
];

/// `checker track [NAME]`: the learner's track, or a change of it. On the guided and open
/// tracks, an exercise still pristine follows the change; one the learner has edited stays.
pub fn track(root: &Path, to: Option<Track>, style: Style) -> Result<()> {
    let mut progress = Progress::load(root);
    let now = progress.track;
    let Some(to) = to else {
        println!("Your track: {}", style.bold(now.name()));
        for (t, about) in TRACKS {
            let marker = if t == now { "→" } else { " " };
            println!("{marker} {:<7} {about}", t.name());
        }
        println!(
            "Change it at any time with `{} track guided|open|own`: your results stay.",
            invocation()
        );
        return Ok(());
    };
    if to == Track::Own {
        for made in own::scaffold(root)? {
            println!("created {made}/: the flags, the `listening on` line, and a todo!() for you");
        }
        progress.track = to;
        progress.save(root);
        println!("You are on the own track: your code, your design, the same checks.");
        println!("  steps 01-02 grade own/echo, steps 03-12 grade own/server; each step's suite holds every earlier rule that still applies.");
        println!(
            "  next: read book/src/{}.md, then `{} verify`",
            progress.current().slug,
            invocation()
        );
        return Ok(());
    }
    let old = if now == Track::Own { Track::Open } else { now };
    let mut kept = Vec::new();
    let mut changed = 0;
    for step in steps() {
        if old != to && skeleton::is_pristine(root, step, old)? {
            skeleton::write_pristine(root, step, to)?;
            changed += 1;
        } else if !skeleton::is_pristine(root, step, to)? {
            kept.push(format!("{:02}", step.number));
        }
    }
    progress.track = to;
    progress.save(root);
    println!(
        "You are on the {} track: {changed} pristine exercises now have its TODOs.",
        to.name()
    );
    if !kept.is_empty() {
        println!(
            "Exercises {} have your edits, so they stay as they are: `{} reset NN` gives one the {} skeleton, after saving your version.",
            kept.join(", "),
            invocation(),
            to.name()
        );
    }
    Ok(())
}

/// `checker catch-up STEP`: on the own track, the learner's crates as they would be with every
/// step before STEP passed (asks first on a terminal; the learner's version is saved).
pub fn catch_up(root: &Path, step: &'static Step, yes: bool) -> Result<()> {
    if Progress::load(root).track != Track::Own {
        bail!(
            "catch-up is for the own track, whose crates grow from step to step; on the guided and open tracks each step has an exercise of its own: go straight to `{} verify {:02}`",
            invocation(),
            step.number
        );
    }
    if !yes {
        if !std::io::stdin().is_terminal() {
            bail!("catch-up overwrites own/echo and own/server: add --yes to confirm when there is no terminal to ask on");
        }
        if !confirm(
            &format!(
                "Replace your crates in own/ with the references of the steps before {}? Your version is saved first.",
                step.label()
            ),
            false,
        ) {
            println!("Nothing changed.");
            return Ok(());
        }
    }
    own::catch_up(root, step)
}
