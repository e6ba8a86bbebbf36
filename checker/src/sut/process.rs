//! Child processes the checker starts (servers, cargo builds, other checkers): each in a process
//! group of its own, registered so that every exit path of the checker kills them, Ctrl+C and
//! the checker's own death included.

use nix::sys::signal::{self, Signal};
use nix::unistd::Pid;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command};
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};

/// Every process group the checker has started and not yet reaped. The interrupt handler
/// kills them all, so that Ctrl+C of the checker never leaves a server behind.
static LIVE: Mutex<Vec<i32>> = Mutex::new(Vec::new());

/// Kills every live process group. Called by the interrupt handler and the watchdog.
pub fn kill_all_live() -> usize {
    let live = LIVE.lock().unwrap_or_else(|e| e.into_inner());
    for &pgid in live.iter() {
        let _ = signal::killpg(Pid::from_raw(pgid), Signal::SIGKILL);
    }
    live.len()
}

pub(crate) fn register(pgid: i32) {
    LIVE.lock().unwrap_or_else(|e| e.into_inner()).push(pgid);
}

pub(crate) fn unregister(pgid: i32) {
    LIVE.lock()
        .unwrap_or_else(|e| e.into_inner())
        .retain(|&p| p != pgid);
}

/// Starts `command` in a new process group that the checker will kill on every exit path.
/// The child also dies if the thread that started it goes away (`PR_SET_PDEATHSIG`), which
/// covers the checker being killed with SIGKILL.
pub fn spawn_in_own_group(command: &mut Command) -> std::io::Result<Child> {
    spawn_limited(command, None)
}

/// [`spawn_in_own_group`], with at most `open_files` file descriptors for the child if given.
pub fn spawn_limited(command: &mut Command, open_files: Option<u64>) -> std::io::Result<Child> {
    command.process_group(0);
    // Known before the fork, so that the child can tell whether its parent is still there.
    let parent = nix::unistd::getpid();
    // SAFETY: the closure runs between fork and exec and only makes async-signal-safe system
    // calls (prctl, getppid, setrlimit, _exit).
    unsafe {
        command.pre_exec(move || {
            nix::sys::prctl::set_pdeathsig(Signal::SIGKILL).map_err(std::io::Error::from)?;
            // The death signal is armed only from here on: a checker that died between the fork
            // and this line left the child to init, and nobody will ever signal it. Leave now.
            if nix::unistd::getppid() != parent {
                nix::libc::_exit(1);
            }
            if let Some(n) = open_files {
                use nix::sys::resource::{setrlimit, Resource};
                setrlimit(Resource::RLIMIT_NOFILE, n, n).map_err(std::io::Error::from)?;
            }
            Ok(())
        });
    }
    let child = command.spawn()?;
    register(child.id() as i32);
    Ok(child)
}

/// Kills a child's process group and reaps the child.
pub fn kill_group(child: &mut Child) {
    let pgid = child.id() as i32;
    let _ = signal::killpg(Pid::from_raw(pgid), Signal::SIGKILL);
    let _ = child.wait();
    unregister(pgid);
}

/// Asks a child's process group to stop (SIGTERM), waits up to `grace` for the child to exit,
/// then kills the group as [`kill_group`] does.
///
/// For a child that is itself a checker: SIGTERM lets it stop the process groups *it* started
/// (a cargo build and its rustc jobs, servers), which a SIGKILL of its own group would leave
/// running.
pub fn stop_group(child: &mut Child, grace: Duration) {
    let _ = signal::killpg(Pid::from_raw(child.id() as i32), Signal::SIGTERM);
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            // Gone by itself: its group id may be reused from now on, so no SIGKILL.
            reap(child);
            return;
        }
        thread::sleep(Duration::from_millis(20));
    }
    kill_group(child);
}

/// Waits for a child started with [`spawn_in_own_group`] to exit by itself.
pub fn reap(child: &mut Child) {
    let _ = child.wait();
    unregister(child.id() as i32);
}

/// Raises this process's limit on open files to the most it is allowed (its hard limit). Many
/// systems start a shell at 1 024 open files while allowing far more, and the checker needs
/// more: `connections_2000` opens 2 000 sockets, `bench idle` 10 000, and every server it starts
/// inherits the limit. (`checker doctor` reports the limit as it is after this.)
pub fn raise_open_files() {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    if let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) {
        if soft < hard {
            let _ = setrlimit(Resource::RLIMIT_NOFILE, hard, hard);
        }
    }
}
