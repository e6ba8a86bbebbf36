//! Running the checker binary and reading its JSON report, with a full dump on surprise.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

/// Whose turn it is to run the checker.
static TURN: RwLock<()> = RwLock::new(());

/// Checker runs take turns: several checks compare timings (1 worker against 4), and test
/// threads running suites side by side on a small machine would blur them.
pub fn one_at_a_time() -> RwLockWriteGuard<'static, ()> {
    TURN.write().unwrap_or_else(|e| e.into_inner())
}

/// A turn shared with other runs of untimed checks only: a check that times nothing runs
/// beside five others in every `verify`, so two such runs side by side blur nothing. Runs that
/// take [`one_at_a_time`] still run alone.
pub fn beside_untimed() -> RwLockReadGuard<'static, ()> {
    TURN.read().unwrap_or_else(|e| e.into_inner())
}

/// The checks that time the server (`alone: true` in `checker/src/steps/`): the checker runs
/// them with no other check beside them, and so must the kit's tests.
pub fn timed_checks() -> std::collections::BTreeSet<String> {
    let mut timed = std::collections::BTreeSet::new();
    let dir = root().join("checker/src/steps");
    for entry in std::fs::read_dir(&dir).unwrap() {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        let mut name = None;
        for line in text.lines().map(str::trim) {
            if let Some(n) = line
                .strip_prefix("name: \"")
                .and_then(|l| l.strip_suffix("\","))
            {
                name = Some(n.to_string());
            } else if line == "alone: true," {
                timed.extend(name.take());
            } else if line == "alone: false," {
                name = None;
            }
        }
    }
    timed
}

/// The workspace root (the checker's tests run from `checker/`).
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// Where the kit's own build keeps its intermediate files (cargo's build-dir): every nested
/// build of the tests keeps them there too, whatever its target folder. The scratch kits and the
/// checkouts graded by `report` then compile the dependencies once, with the kit, instead of
/// once each; their executables still go to their own target folders, so that crates of the same
/// name (the scratch kit's exercises and the kit's) never overwrite each other's.
pub fn shared_build_dir() -> PathBuf {
    std::env::var_os("CARGO_BUILD_BUILD_DIR")
        .or_else(|| std::env::var_os("CARGO_TARGET_DIR"))
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target"))
}

/// `checker ARGS...` run from the workspace root, with no colour.
pub fn checker(args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_checker"));
    cmd.args(args)
        .current_dir(root())
        .env("NO_COLOR", "1")
        .env("CARGO_BUILD_BUILD_DIR", shared_build_dir());
    cmd
}

/// A finished run: what was asked and everything that came back.
pub struct Run {
    pub args: Vec<String>,
    pub output: Output,
}

impl Run {
    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.output.stdout).into_owned()
    }

    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.output.stderr).into_owned()
    }

    pub fn code(&self) -> Option<i32> {
        self.output.status.code()
    }

    /// Everything needed to reproduce and understand the run.
    pub fn dump(&self) -> String {
        format!(
            "\n$ (cd {} && checker {})\nstatus: {}\n~~~ stdout\n{}\n~~~ stderr\n{}\n~~~",
            root().display(),
            self.args.join(" "),
            self.output.status,
            self.stdout(),
            self.stderr()
        )
    }

    /// The JSON report (`--format json` runs).
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout())
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}){}", self.dump()))
    }

    /// Names of the failed checks of the only step in the report.
    pub fn failed_checks(&self) -> Vec<String> {
        let report = self.json();
        report["steps"][0]["checks"]
            .as_array()
            .unwrap_or_else(|| panic!("no checks in the report{}", self.dump()))
            .iter()
            .filter(|c| c["status"] == "fail")
            .map(|c| c["name"].as_str().unwrap().to_string())
            .collect()
    }
}

/// Runs the checker with `args` and `env`, and returns the finished run.
pub fn run(args: &[&str], env: &[(&str, &str)]) -> Run {
    let _turn = one_at_a_time();
    run_now(args, env)
}

/// [`run`], for a run of untimed checks only, which may share its turn with another such run.
pub fn run_untimed(args: &[&str], env: &[(&str, &str)]) -> Run {
    let _turn = beside_untimed();
    run_now(args, env)
}

fn run_now(args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut cmd = checker(args);
    cmd.envs(env.iter().copied());
    let output = cmd.output().expect("the checker binary runs");
    Run {
        args: args.iter().map(|s| s.to_string()).collect(),
        output,
    }
}

/// Runs the checker with `args`, and requires it to refuse them: exit code 2, and `says` in
/// its error output.
pub fn refused(args: &[&str], says: &str) -> Run {
    let r = run(args, &[]);
    assert_eq!(r.code(), Some(2), "{}", r.dump());
    assert!(
        r.stderr().contains(says),
        "no {says:?} in the error{}",
        r.dump()
    );
    r
}

/// Step `n` (1-based) as the catalogue the checker ships describes it (`checker/steps.toml`).
pub fn step_entry(n: usize) -> toml::Value {
    let text = std::fs::read_to_string(root().join("checker/steps.toml")).unwrap();
    let table: toml::Table = toml::from_str(&text).unwrap();
    table["step"].as_array().unwrap()[n - 1].clone()
}

/// The slug of step `n` (1-based).
pub fn slug(n: usize) -> String {
    step_entry(n)["slug"].as_str().unwrap().to_string()
}

/// The names in one list of step `n`'s catalogue entry: `checks` or `production` (empty when
/// the step has no such list).
pub fn names(n: usize, list: &str) -> Vec<String> {
    step_entry(n)
        .get(list)
        .and_then(toml::Value::as_array)
        .into_iter()
        .flatten()
        .map(|c| c.as_str().unwrap().to_string())
        .collect()
}

/// Copies a source tree (without `target/` folders), passing each file's text through `edit`.
pub fn copy_dir(from: &Path, to: &Path, edit: &dyn Fn(String) -> String) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap().flatten() {
        let (path, name) = (entry.path(), entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            if name != "target" {
                copy_dir(&path, &to.join(&name), edit);
            }
        } else {
            let text = std::fs::read_to_string(&path).unwrap();
            std::fs::write(to.join(&name), edit(text)).unwrap();
        }
    }
}

/// A process seen in /proc: its id, parent, executable and working folder.
pub struct Process {
    pub pid: u32,
    pub ppid: u32,
    pub exe: PathBuf,
    pub cwd: PathBuf,
}

/// Every process that is alive (not a zombie) now.
pub fn processes() -> Vec<Process> {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_string_lossy().parse::<u32>().ok())
        .filter_map(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            // The command name is in parentheses and may hold spaces: fields follow the last ')'.
            let mut fields = stat[stat.rfind(')')? + 2..].split(' ');
            let state = fields.next()?;
            let ppid = fields.next()?.parse().ok()?;
            (state != "Z").then(|| Process {
                pid,
                ppid,
                exe: std::fs::read_link(format!("/proc/{pid}/exe")).unwrap_or_default(),
                cwd: std::fs::read_link(format!("/proc/{pid}/cwd")).unwrap_or_default(),
            })
        })
        .collect()
}

/// True while `pid` runs (and is not a zombie).
pub fn alive(pid: u32) -> bool {
    processes().iter().any(|p| p.pid == pid)
}
