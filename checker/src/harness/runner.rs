//! The runner: every check on its own thread with its own servers, a watchdog, a transcript,
//! and a replay file when it fails.

use crate::catalog::Step;
use crate::fail;
use crate::harness::check::{Check, Ctx, Target};
use crate::harness::failure::Failure;
use crate::sut::process;
use std::path::PathBuf;
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
    pub transcript: Vec<String>,
    pub duration: Duration,
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

fn write_replay(ctx: &Ctx, check: &Check) -> Option<PathBuf> {
    let dir = ctx.target.replays.as_ref()?;
    let (actions, truncated) = ctx.log.actions();
    let file = ReplayFile {
        version: 1,
        step: ctx.step.slug.clone(),
        check: check.name.to_string(),
        truncated,
        actions,
    };
    std::fs::create_dir_all(dir).ok()?;
    let path = dir.join(format!("{}-{}.json", ctx.step.slug, check.name));
    std::fs::write(&path, serde_json::to_vec(&file).ok()?).ok()?;
    Some(path)
}

/// Check threads are named with this prefix, so that the panic hook can stay quiet for them:
/// a panic inside a check is caught and reported as part of the check's result.
pub const CHECK_THREAD: &str = "check:";

/// Transcript lines shown with a failure.
const TRANSCRIPT_LINES: usize = 40;

/// Runs one check on its own thread with its own servers. A check that outlives
/// [`CHECK_LIMIT`] fails; killing its servers then unblocks whatever it waits on.
pub fn run_one(step: &'static Step, target: &Target, check: &'static Check) -> CheckResult {
    let started = Instant::now();
    let (tx, rx) = mpsc::channel();
    let target = target.clone();
    let handle = thread::Builder::new().name(format!("{CHECK_THREAD}{}", check.name)).spawn(move || {
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
        let transcript = ctx.log.render(TRANSCRIPT_LINES);
        let replay = failure.as_ref().and_then(|_| write_replay(&ctx, check));
        drop(ctx); // kills this check's servers
        let _ = tx.send((failure, transcript, replay));
    });
    let Ok(handle) = handle else {
        let failure = fail!("the checker could not start a thread for this check");
        return CheckResult {
            bonus: false,
            replay: None,
            name: check.name,
            about: check.about,
            failure: Some(failure),
            transcript: Vec::new(),
            duration: started.elapsed(),
        };
    };
    let (failure, transcript, replay) = match rx.recv_timeout(CHECK_LIMIT) {
        Ok(result) => result,
        Err(_) => {
            process::kill_all_live();
            let _ = rx.recv_timeout(Duration::from_secs(10));
            (
                Some(fail!("the check did not finish within {} s", CHECK_LIMIT.as_secs())
                    .hint("The server stopped answering altogether. Look for a deadlock: a lock held while waiting for the queue, or a blocked runtime.")),
                Vec::new(),
                None,
            )
        }
    };
    let _ = handle.join();
    CheckResult {
        bonus: false,
        replay,
        name: check.name,
        about: check.about,
        failure,
        transcript,
        duration: started.elapsed(),
    }
}
