//! The runner: every check on its own thread with its own servers, a watchdog, a transcript,
//! and a replay file when it fails.

use crate::catalog::Step;
use crate::fail;
use crate::harness::check::{Check, Ctx, Target};
use crate::harness::failure::Failure;
use crate::sut::process;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

/// A check may not run longer than this; past it, its servers are killed and it fails.
const CHECK_LIMIT: Duration = Duration::from_secs(60);

/// The result of one check.
pub struct CheckResult {
    /// A production scenario: reported, but not needed to pass the step.
    pub bonus: bool,
    /// The replay file written for a failure.
    pub replay: Option<PathBuf>,
    pub name: &'static str,
    pub about: &'static str,
    pub failure: Option<Failure>,
    /// Why the check did not apply to what was graded (`--bin` has no unit tests, say).
    pub skipped: Option<String>,
    /// The end of the transcript of a failure: at most [`TRANSCRIPT_LINES`] lines, the first
    /// of which names the file with all of it when some were left out.
    pub transcript: Vec<String>,
    pub duration: Duration,
}

impl CheckResult {
    /// "pass", "fail" or "skip".
    pub fn status(&self) -> &'static str {
        match (&self.failure, &self.skipped) {
            (Some(_), _) => "fail",
            (None, Some(_)) => "skip",
            (None, None) => "pass",
        }
    }
}

/// What a failed check did, byte for byte, written where `checker replay` can read it.
#[derive(serde::Serialize, serde::Deserialize)]
pub struct ReplayFile {
    pub version: u32,
    pub step: String,
    pub check: String,
    /// True when the traffic was too large to record whole: the replay stops short.
    pub truncated: bool,
    pub actions: Vec<crate::harness::transcript::Action>,
}

/// Where a failed check's files go: `<dir>/<step>-<check>.<extension>`.
fn failure_file(ctx: &Ctx, check: &Check, extension: &str) -> Option<PathBuf> {
    let dir = ctx.target.replays.as_ref()?;
    std::fs::create_dir_all(dir).ok()?;
    Some(dir.join(format!("{}-{}.{extension}", ctx.step.slug, check.name)))
}

fn write_replay(ctx: &Ctx, check: &Check) -> Option<PathBuf> {
    let (actions, truncated) = ctx.log.actions();
    let file = ReplayFile {
        version: 1,
        step: ctx.step.slug.clone(),
        check: check.name.to_string(),
        truncated,
        actions,
    };
    let path = failure_file(ctx, check, "json")?;
    std::fs::write(&path, serde_json::to_vec(&file).ok()?).ok()?;
    Some(path)
}

/// The end of a failed check's transcript; the whole of it goes to a file named on the first
/// line when it is longer than what is shown.
fn transcript_of(ctx: &Ctx, check: &Check) -> Vec<String> {
    let all = ctx.log.render(usize::MAX);
    if all.len() <= TRANSCRIPT_LINES {
        return all;
    }
    let more = all.len() - TRANSCRIPT_LINES + 1;
    let head = match failure_file(ctx, check, "log") {
        Some(path) if std::fs::write(&path, all.join("\n") + "\n").is_ok() => {
            format!("… {more} earlier lines, all in {}", path.display())
        }
        _ => format!("… {more} earlier lines not shown"),
    };
    std::iter::once(head)
        .chain(all[all.len() - TRANSCRIPT_LINES + 1..].iter().cloned())
        .collect()
}

/// Check threads are named with this prefix, so that the panic hook can stay quiet for them:
/// a panic inside a check is caught and reported as part of the check's result.
pub const CHECK_THREAD: &str = "check:";

/// Transcript lines shown with a failure.
const TRANSCRIPT_LINES: usize = 40;

/// What a check's own thread hands back.
struct Finished {
    failure: Option<Failure>,
    skipped: Option<String>,
    transcript: Vec<String>,
    replay: Option<PathBuf>,
}

/// Runs one check on its own thread with its own servers. A check that outlives
/// [`CHECK_LIMIT`] fails; killing its servers then unblocks whatever it waits on.
pub fn run_one(step: &'static Step, target: &Target, check: &'static Check) -> CheckResult {
    static CHECKS_RUN: AtomicU64 = AtomicU64::new(1);
    let owner = CHECKS_RUN.fetch_add(1, Ordering::Relaxed);
    let started = Instant::now();
    let (tx, rx) = mpsc::channel();
    let target = target.clone();
    let handle = thread::Builder::new()
        .name(format!("{CHECK_THREAD}{}", check.name))
        .spawn(move || {
            process::set_owner(owner);
            let mut ctx = Ctx::new(step, target);
            let outcome =
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| (check.run)(&mut ctx)));
            let failure = match outcome {
                Ok(Ok(())) => None,
                Ok(Err(f)) => Some(ctx.diagnose(f)),
                Err(panic) => {
                    let text = panic
                        .downcast_ref::<String>()
                        .cloned()
                        .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                        .unwrap_or_default();
                    Some(fail!("the checker itself failed in this check: {text}").hint("This is a bug in the checker, not in your server: please report it with this output."))
                }
            };
            let transcript = match &failure {
                Some(_) => transcript_of(&ctx, check),
                None => Vec::new(),
            };
            let replay = failure.as_ref().and_then(|_| write_replay(&ctx, check));
            let skipped = ctx.skipped.take();
            drop(ctx); // kills this check's servers
            let _ = tx.send(Finished {
                failure,
                skipped,
                transcript,
                replay,
            });
        });
    let Ok(handle) = handle else {
        return CheckResult {
            bonus: false,
            replay: None,
            name: check.name,
            about: check.about,
            failure: Some(fail!("the checker could not start a thread for this check")),
            skipped: None,
            transcript: Vec::new(),
            duration: started.elapsed(),
        };
    };
    // The limit counts the time the check runs, not the time cargo builds for it.
    let mut spent = Duration::ZERO;
    let outcome = loop {
        let tick = Duration::from_millis(250);
        match rx.recv_timeout(tick) {
            Err(mpsc::RecvTimeoutError::Timeout) => {
                if !process::is_building(owner) {
                    spent += tick;
                }
                if spent < CHECK_LIMIT {
                    continue;
                }
                break Err(());
            }
            Ok(finished) => break Ok(finished),
            Err(mpsc::RecvTimeoutError::Disconnected) => break Err(()),
        }
    };
    let finished = match outcome {
        Ok(finished) => finished,
        Err(()) => {
            // Killing the servers makes whatever the check waits on fail, so that its thread
            // comes back with the transcript of what it saw before everything stopped.
            process::kill_owned(owner);
            let late = rx.recv_timeout(Duration::from_secs(10)).ok();
            let stuck = fail!("the check did not finish within {} s", CHECK_LIMIT.as_secs())
                .guess("The server stopped answering altogether: look for a deadlock (a lock held while waiting for the queue or for another lock) or a runtime blocked by a blocking call.");
            Finished {
                failure: Some(stuck),
                skipped: None,
                transcript: late.map(|l| l.transcript).unwrap_or_default(),
                replay: None,
            }
        }
    };
    let _ = handle.join();
    CheckResult {
        bonus: false,
        replay: finished.replay,
        name: check.name,
        about: check.about,
        failure: finished.failure,
        skipped: finished.skipped,
        transcript: finished.transcript,
        duration: started.elapsed(),
    }
}
