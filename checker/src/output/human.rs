//! Results for people: a line per check, and for a failure its transcript, what was expected,
//! what came back, and a hint.

use super::{StepOutcome, StepReport, Style};
use crate::catalog::Step;
use crate::harness::runner::CheckResult;

/// The heading printed before a step's checks run.
pub fn heading(style: Style, step: &Step, target: &str) -> String {
    let head = format!("{} · {}", step.label(), step.title);
    format!(
        "{}  {}",
        style.bold(&head),
        style.dim(&format!("({target})"))
    )
}

/// One check's result, with the transcript, expected/got and hint when it failed.
pub fn check_line(style: Style, r: &CheckResult) -> String {
    let ms = style.dim(&format!("({} ms)", r.duration.as_millis()));
    let Some(f) = &r.failure else {
        if let Some(why) = &r.skipped {
            return format!(
                "  – {}  {}",
                r.name,
                style.dim(&format!("(not run: {why})"))
            );
        }
        return format!("  {} {}  {ms}", style.green("✔"), r.name);
    };
    let cross = format!("  {} {}", style.red("✘"), style.bold(r.name));
    // An unfinished step is said once, by the step's summary: the todo!() says everything.
    if f.todo.is_some() {
        return cross;
    }
    let mut out = vec![format!("{cross}  {}  {ms}", style.dim(r.about))];
    out.push(format!("      {}", f.message));
    if !r.transcript.is_empty() {
        out.push(format!("      {}", style.dim("transcript:")));
        out.extend(r.transcript.iter().map(|l| format!("        {l}")));
    }
    if let Some(e) = &f.expected {
        out.push(format!("      expected: {e}"));
    }
    if let Some(g) = &f.got {
        out.push(format!("      got:      {g}"));
    }
    if let Some(h) = &f.hint {
        out.push(format!("      {} {h}", style.yellow("hint:")));
    }
    if let Some(p) = &r.replay {
        out.push(format!(
            "      {} {} replay {}",
            style.dim("replay it:"),
            crate::invocation(),
            p.display()
        ));
    }
    out.join("\n")
}

/// The closing line of a step.
pub fn step_summary(style: Style, report: &StepReport) -> String {
    match &report.outcome {
        StepOutcome::Error(e) => format!("  {} {e}", style.red("could not run:")),
        StepOutcome::Ran(results) => {
            let required: Vec<_> = results
                .iter()
                .filter(|r| !r.bonus && r.skipped.is_none())
                .collect();
            let passed = required.iter().filter(|r| r.failure.is_none()).count();
            let skipped = results.iter().filter(|r| r.skipped.is_some()).count();
            let bonus: Vec<_> = results.iter().filter(|r| r.bonus).collect();
            let survived = bonus.iter().filter(|r| r.failure.is_none()).count();
            let scenarios = if bonus.is_empty() {
                String::new()
            } else {
                let noun = if bonus.len() == 1 {
                    "scenario"
                } else {
                    "scenarios"
                };
                format!("; {survived} of {} production {noun} survived", bonus.len())
            };
            if let Some(f) = results
                .iter()
                .filter_map(|r| r.failure.as_ref())
                .find(|f| f.todo.is_some())
            {
                let hint = f.hint.as_deref().unwrap_or_default();
                return format!("  {} {} ({hint})", style.yellow("→"), f.message);
            }
            let scenarios = if skipped > 0 {
                format!("{scenarios}; {skipped} did not apply")
            } else {
                scenarios
            };
            let noun = if required.len() == 1 {
                "check"
            } else {
                "checks"
            };
            let line = format!("  {passed} of {} {noun} passed{scenarios}", required.len());
            if passed == required.len() {
                style.green(&line)
            } else {
                style.red(&line)
            }
        }
    }
}
