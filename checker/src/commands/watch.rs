//! `checker watch`: re-verify the current step every time a file of its exercise is saved.
//!
//! File events come from `notify`; a cheap poll of the files' sizes and times runs beside it
//! every half second, so a machine where file events never arrive (some network or container
//! mounts) is still served, only a little later. `--poll` uses the poll alone.

use crate::output::Style;
use crate::progress::Progress;
use crate::sut::process;
use anyhow::{Context, Result};
use notify::{RecursiveMode, Watcher};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, IsTerminal, Read};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, SystemTime};

/// Lines of one run's output shown; the rest is counted (a chatty server cannot flood the screen).
const MAX_LINES: usize = 120;
const POLL_EVERY: Duration = Duration::from_millis(500);

pub fn watch(root: &Path, poll_only: bool, style: Style) -> Result<()> {
    loop {
        let progress = Progress::load(root);
        let step = progress.current();
        let dir = root.join(progress.learner_dir(step));
        if std::io::stdout().is_terminal() {
            print!("\x1b[2J\x1b[H");
        }
        // Taken before the run, so that a save during the run triggers the next one at once.
        let before = snapshot(&dir);
        run_verify(step.number, style)?;
        let step_after = Progress::load(root).current();
        if step_after.number != step.number {
            println!(
                "{}",
                style.green(&format!(
                    "✔ {} passed. On to {} · {}: read book/src/{}.md",
                    step.label(),
                    step_after.label(),
                    step_after.title,
                    step_after.slug
                ))
            );
            continue;
        }
        let how = if poll_only {
            "polling every 0.5 s"
        } else {
            "file events, and a poll every 0.5 s"
        };
        println!(
            "{}",
            style.dim(&format!(
                "watching {} ({how}). Save a file to re-check; Ctrl+C to stop.",
                dir.display()
            ))
        );
        wait_for_change(&dir, &before, poll_only);
    }
}

/// Runs `checker verify NN --fail-fast` as a child, showing at most [`MAX_LINES`] lines.
fn run_verify(number: usize, style: Style) -> Result<()> {
    let exe = std::env::current_exe().context("finding the checker's own executable")?;
    let mut command = Command::new(exe);
    command
        .args(["verify", &format!("{number:02}"), "--fail-fast"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if !style.is_color() {
        command.arg("--no-color");
    }
    let mut child =
        process::spawn_in_own_group(&mut command).context("starting `checker verify`")?;
    let (tx, rx) = mpsc::channel::<String>();
    let pipes: Vec<Box<dyn Read + Send>> = vec![
        Box::new(child.stdout.take().unwrap()),
        Box::new(child.stderr.take().unwrap()),
    ];
    let readers: Vec<_> = pipes
        .into_iter()
        .map(|pipe| {
            let tx = tx.clone();
            thread::spawn(move || {
                for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                    let _ = tx.send(line);
                }
            })
        })
        .collect();
    drop(tx);
    let mut shown = 0;
    let mut hidden = 0;
    for line in rx {
        if shown < MAX_LINES {
            println!("{line}");
            shown += 1;
        } else {
            hidden += 1;
        }
    }
    if hidden > 0 {
        println!("{}", style.dim(&format!("… {hidden} more lines not shown")));
    }
    for r in readers {
        let _ = r.join();
    }
    process::reap(&mut child);
    Ok(())
}

/// Sizes and modification times of the crate's source files.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, (u64, Option<SystemTime>)> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let Ok(meta) = entry.metadata() else { continue };
            if meta.is_dir() {
                if path.file_name().is_some_and(|n| n != "target") {
                    stack.push(path);
                }
            } else if path.extension().is_some_and(|e| e == "rs" || e == "toml") {
                out.insert(path, (meta.len(), meta.modified().ok()));
            }
        }
    }
    out
}

/// Blocks until the source files under `dir` differ from `before`.
fn wait_for_change(
    dir: &Path,
    before: &BTreeMap<PathBuf, (u64, Option<SystemTime>)>,
    poll_only: bool,
) {
    let (tx, rx) = mpsc::channel();
    // Keep the watcher alive while waiting; when it cannot start, the poll alone serves.
    let _watcher = if poll_only {
        None
    } else {
        notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
            if event.is_ok() {
                let _ = tx.send(());
            }
        })
        .and_then(|mut w| w.watch(dir, RecursiveMode::Recursive).map(|_| w))
        .ok()
    };
    loop {
        let _ = rx.recv_timeout(POLL_EVERY);
        if snapshot(dir) != *before {
            // Let an editor finish writing (some save in several steps) before checking.
            thread::sleep(Duration::from_millis(150));
            while rx.try_recv().is_ok() {}
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_saved_file_ends_the_wait_even_without_file_events() {
        let dir = std::env::temp_dir().join(format!("eventkit-watch-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("src/target")).unwrap();
        std::fs::write(dir.join("src/lib.rs"), "// one").unwrap();
        let before = snapshot(&dir);
        assert_eq!(before.len(), 1, "only source files count: {before:?}");
        std::fs::write(dir.join("src/target/ignored.rs"), "// build output").unwrap();
        assert_eq!(
            snapshot(&dir),
            before,
            "files under target/ are not sources"
        );
        std::fs::write(dir.join("src/lib.rs"), "// two, longer").unwrap();
        // Returns (polling only, no file events) because the snapshot differs.
        wait_for_change(&dir, &before, true);
        std::fs::remove_dir_all(dir).unwrap();
    }
}
