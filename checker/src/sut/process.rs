//! Child processes the checker starts (servers, cargo builds, other checkers): each in a process
//! group of its own, registered so that every exit path of the checker kills them, Ctrl+C and
//! the checker's own death included.

use nix::sys::signal::{self, Signal};
use nix::unistd::Pid;
use std::cell::Cell;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command};
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};

/// Every process group the checker has started and not yet reaped, with the owner that
/// started it. The interrupt handler kills them all, so that Ctrl+C of the checker never
/// leaves a server behind; a check's watchdog kills only that check's.
static LIVE: Mutex<Vec<(i32, u64)>> = Mutex::new(Vec::new());

thread_local! {
    /// Who the process groups this thread starts belong to (0: nobody in particular).
    static OWNER: Cell<u64> = const { Cell::new(0) };
}

/// The owners (checks) whose cargo builds are running now, once per build.
static BUILDING: Mutex<Vec<u64>> = Mutex::new(Vec::new());

/// Held while this thread's owner builds something: a check's time limit does not run while
/// cargo compiles for it (a cold release build takes minutes).
pub struct Building(u64);

/// Marks this thread's owner as building until the guard is dropped.
pub fn building() -> Building {
    let owner = OWNER.with(Cell::get);
    BUILDING
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(owner);
    Building(owner)
}

impl Drop for Building {
    fn drop(&mut self) {
        let mut building = BUILDING.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(i) = building.iter().position(|&o| o == self.0) {
            building.swap_remove(i);
        }
    }
}

/// True while a build of `owner`'s runs.
pub fn is_building(owner: u64) -> bool {
    BUILDING
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .contains(&owner)
}

/// Marks the process groups this thread starts from now on as `owner`'s (a check's number).
pub fn set_owner(owner: u64) {
    OWNER.with(|o| o.set(owner));
}

/// Kills every live process group. Called by the interrupt handler.
pub fn kill_all_live() -> usize {
    let live = LIVE.lock().unwrap_or_else(|e| e.into_inner());
    for &(pgid, _) in live.iter() {
        let _ = signal::killpg(Pid::from_raw(pgid), Signal::SIGKILL);
    }
    live.len()
}

/// Kills the live process groups started by `owner`: a stuck check's, leaving the checks that
/// run beside it alone.
pub fn kill_owned(owner: u64) {
    let live = LIVE.lock().unwrap_or_else(|e| e.into_inner());
    for &(pgid, _) in live.iter().filter(|(_, o)| *o == owner) {
        let _ = signal::killpg(Pid::from_raw(pgid), Signal::SIGKILL);
    }
}

pub(crate) fn register(pgid: i32) {
    let owner = OWNER.with(Cell::get);
    LIVE.lock()
        .unwrap_or_else(|e| e.into_inner())
        .push((pgid, owner));
}

pub(crate) fn unregister(pgid: i32) {
    LIVE.lock()
        .unwrap_or_else(|e| e.into_inner())
        .retain(|&(p, _)| p != pgid);
}

/// Starts `command` in a new process group that the checker will kill on every exit path.
/// The child also dies if the thread that started it goes away (`PR_SET_PDEATHSIG`), which
/// covers the checker being killed with SIGKILL.
pub fn spawn_in_own_group(command: &mut Command) -> std::io::Result<Child> {
    spawn_limited(command, &Limits::default())
}

/// What a child process may use, beyond what the checker itself may.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Limits {
    /// At most this many open files (none: the checker's own limit).
    #[serde(default)]
    pub open_files: Option<u64>,
    /// Runs on this one CPU only (none: every CPU the checker may use). A runtime sized by
    /// `available_parallelism` then has one thread, and a map sharded by it few shards: a
    /// blocked thread or a shared shard shows at once instead of by chance.
    #[serde(default)]
    pub cpu: Option<usize>,
}

/// [`spawn_in_own_group`], within `limits`.
pub fn spawn_limited(command: &mut Command, limits: &Limits) -> std::io::Result<Child> {
    command.process_group(0);
    // Known before the fork, so that the child can tell whether its parent is still there.
    let parent = nix::unistd::getpid();
    let open_files = limits.open_files;
    // Built before the fork: the child only makes the system call.
    let cpus = match limits.cpu {
        Some(cpu) => {
            let mut set = nix::sched::CpuSet::new();
            set.set(cpu).map_err(std::io::Error::from)?;
            Some(set)
        }
        None => None,
    };
    // SAFETY: the closure runs between fork and exec and only makes async-signal-safe system
    // calls (prctl, getppid, setrlimit, sched_setaffinity, _exit).
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
            if let Some(set) = &cpus {
                nix::sched::sched_setaffinity(nix::unistd::Pid::from_raw(0), set)
                    .map_err(std::io::Error::from)?;
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
