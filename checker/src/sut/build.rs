//! Building the servers to grade: one `cargo build` for every crate, with cargo's own
//! progress and compiler errors shown as they come, and the executables read from cargo's
//! JSON messages (never guessed from the target directory's layout).

use crate::sut::process;
use anyhow::{bail, Context, Result};
use serde_json::Value;
use std::collections::HashMap;
use std::io::{BufRead, BufReader, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The workspace root: the nearest folder above the current one whose `checker/steps.toml`
/// exists, or else the one this checker was built from.
pub fn workspace_root() -> Result<PathBuf> {
    let cwd = std::env::current_dir().context("reading the current directory")?;
    if let Some(found) = cwd
        .ancestors()
        .find(|d| d.join("checker/steps.toml").is_file())
    {
        return Ok(found.to_path_buf());
    }
    let built_from = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap_or(Path::new("."));
    if built_from.join("checker/steps.toml").is_file() {
        return Ok(built_from.to_path_buf());
    }
    bail!("this is not an eventkit checkout (no checker/steps.toml above {}): run the checker from inside the kit's folder", cwd.display())
}

/// `dir/Cargo.toml`, parsed.
fn manifest(dir: &Path) -> Result<toml::Table> {
    let manifest = dir.join("Cargo.toml");
    let text = std::fs::read_to_string(&manifest)
        .with_context(|| format!("reading {}", manifest.display()))?;
    toml::from_str(&text).with_context(|| format!("parsing {}", manifest.display()))
}

/// The package name in `dir/Cargo.toml`.
fn package_name(dir: &Path) -> Result<String> {
    manifest(dir)?
        .get("package")
        .and_then(|p| p.get("name"))
        .and_then(|n| n.as_str())
        .map(str::to_string)
        .with_context(|| format!("{} has no [package] name", dir.join("Cargo.toml").display()))
}

/// True if the crate in `dir` declares the cargo feature `feature`.
pub fn has_feature(dir: &Path, feature: &str) -> bool {
    manifest(dir)
        .ok()
        .and_then(|m| m.get("features").and_then(|f| f.get(feature)).cloned())
        .is_some()
}

/// Which of cargo's profiles to build with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Profile {
    /// `cargo build`: quick to build, what the checks grade.
    Dev,
    /// `cargo build --release`: optimised, what load and benchmarks measure.
    Release,
}

/// What a build gave: the executable of each crate that built, and cargo's first error if any.
#[derive(Debug, Default)]
pub struct Built {
    exes: HashMap<PathBuf, PathBuf>,
    /// The test executables built (`cargo test --no-run`), for the library and the binaries.
    pub tests: Vec<PathBuf>,
    /// The first compiler error (its `error` line and where it is), for a report that goes
    /// somewhere cargo's own output does not (JSON, a hint given later).
    first_error: Option<String>,
}

impl Built {
    /// The executable built from the crate in `dir`, if it built.
    pub fn get(&self, dir: &Path) -> Option<PathBuf> {
        let dir = dir.canonicalize().ok()?;
        self.exes.get(&dir).cloned()
    }

    /// The compiler's first error, if the build had one.
    pub fn first_error(&self) -> Option<&str> {
        self.first_error.as_deref()
    }

    /// Why the crate `shown` has no executable, with the compiler's first error.
    pub fn failure(&self, shown: &str) -> String {
        match &self.first_error {
            Some(error) => format!(
                "the build of {shown} failed: {error} (cargo's full output is on stderr); fix it and run the checker again"
            ),
            None => format!(
                "the build of {shown} failed (cargo's output is on stderr): fix it and run the checker again"
            ),
        }
    }
}

/// Builds the crates in `dirs` (inside the workspace at `root`, or anywhere else). A crate
/// without an executable in the result failed to build; cargo has already shown why.
pub fn build(root: &Path, dirs: &[PathBuf]) -> Result<Built> {
    build_with(root, dirs, Profile::Dev)
}

/// [`build`], with the profile chosen.
pub fn build_with(root: &Path, dirs: &[PathBuf], profile: Profile) -> Result<Built> {
    build_as(root, dirs, profile, None)
}

/// [`build_with`] for a check: without cargo's progress, which would land among the lines of
/// the checks; when something has to be compiled (a minute, the first time), one line says so.
/// The first compiler error is in the result.
pub fn build_quietly(root: &Path, dirs: &[PathBuf], profile: Profile, why: &str) -> Result<Built> {
    build_as(root, dirs, profile, Some(why))
}

fn build_as(root: &Path, dirs: &[PathBuf], profile: Profile, quiet: Option<&str>) -> Result<Built> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut inside = Vec::new();
    let mut outside = Vec::new();
    for dir in dirs {
        let dir = dir
            .canonicalize()
            .with_context(|| format!("{} does not exist", dir.display()))?;
        if dir.starts_with(root) {
            inside.push(dir);
        } else {
            outside.push(dir);
        }
    }
    let mut built = Built::default();
    if !inside.is_empty() {
        let mut args = vec!["build".to_string(), "--keep-going".into()];
        if profile == Profile::Release {
            args.push("--release".into());
        }
        for dir in &inside {
            args.push("-p".into());
            args.push(package_name(dir)?);
        }
        run_cargo(&cargo, root, &args, quiet, &mut built)?;
    }
    for dir in outside {
        let mut args = vec![
            "build".into(),
            "--manifest-path".into(),
            dir.join("Cargo.toml").display().to_string(),
        ];
        if profile == Profile::Release {
            args.push("--release".into());
        }
        run_cargo(&cargo, &dir, &args, quiet, &mut built)?;
    }
    Ok(built)
}

/// Builds the tests of the crate in `dir` (`cargo test --no-run`: every test target it has,
/// with `features`), as [`build_quietly`] builds servers: in the workspace at `root`
/// if the crate is inside it, else in its own folder.
pub fn build_tests(root: &Path, dir: &Path, features: &[&str], why: &str) -> Result<Built> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let dir = dir
        .canonicalize()
        .with_context(|| format!("{} does not exist", dir.display()))?;
    let mut args: Vec<String> = ["test", "--no-run"].map(String::from).to_vec();
    if !features.is_empty() {
        args.extend(["--features".into(), features.join(",")]);
    }
    let cwd = if dir.starts_with(root) {
        args.extend(["-p".into(), package_name(&dir)?]);
        root.to_path_buf()
    } else {
        args.extend([
            "--manifest-path".into(),
            dir.join("Cargo.toml").display().to_string(),
        ]);
        dir.clone()
    };
    let mut built = Built::default();
    run_cargo(&cargo, &cwd, &args, Some(why), &mut built)?;
    Ok(built)
}

/// Runs cargo and reads its JSON messages into `built`. `quiet`: none to show cargo's output as
/// it comes; else what the build is for, named once if anything has to be compiled.
fn run_cargo(
    cargo: &std::ffi::OsStr,
    cwd: &Path,
    args: &[String],
    quiet: Option<&str>,
    built: &mut Built,
) -> Result<()> {
    // The compiler's messages come as JSON, each with its text already rendered (in colour for
    // a terminal): the checker prints them as cargo would, and keeps the first error for
    // reports that cargo's own output does not reach. Cargo's progress goes to stderr as usual.
    let colour = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let format = if colour {
        "--message-format=json-diagnostic-rendered-ansi"
    } else {
        "--message-format=json"
    };
    let mut command = Command::new(cargo);
    command
        .args(args)
        .arg(format)
        .current_dir(cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    if quiet.is_some() {
        command.arg("--quiet").stderr(Stdio::piped());
    }
    let mut compiling = false;
    let _building = process::building();
    let mut child = process::spawn_in_own_group(&mut command).with_context(|| {
        format!(
            "running `cargo {}`: is cargo installed and on PATH?",
            args.join(" ")
        )
    })?;
    // Quiet, cargo's own complaints (a manifest it cannot read, no target to build) are kept
    // for the failure.
    let complaints = child.stderr.take().map(|mut stderr| {
        std::thread::spawn(move || {
            let mut text = String::new();
            let _ = std::io::Read::read_to_string(&mut stderr, &mut text);
            text
        })
    });
    let stdout = child.stdout.take().expect("stdout is piped");
    for line in BufReader::new(stdout).lines() {
        let Ok(line) = line else { break };
        let Ok(msg) = serde_json::from_str::<Value>(&line) else {
            continue;
        };
        if msg["reason"] == "compiler-message" {
            let message = &msg["message"];
            if let (None, Some(text)) = (quiet, message["rendered"].as_str()) {
                let _ = write!(std::io::stderr(), "{text}");
            }
            if built.first_error.is_none() && message["level"] == "error" {
                built.first_error = Some(describe_error(message));
            }
            continue;
        }
        if msg["reason"] != "compiler-artifact" {
            continue;
        }
        if let (Some(why), false, false) = (quiet, compiling, msg["fresh"] == true) {
            compiling = true;
            eprintln!("    … compiling {why} (the first time takes a while)");
        }
        if msg["profile"]["test"] == true {
            if let Some(exe) = msg["executable"].as_str() {
                built.tests.push(PathBuf::from(exe));
            }
            continue;
        }
        let (Some(exe), Some(manifest)) =
            (msg["executable"].as_str(), msg["manifest_path"].as_str())
        else {
            continue;
        };
        if let Some(dir) = Path::new(manifest).parent() {
            built.exes.insert(dir.to_path_buf(), PathBuf::from(exe));
        }
    }
    // Which crates built is told by the executables that appeared; cargo has printed the rest.
    process::reap(&mut child);
    let complaints = complaints.and_then(|c| c.join().ok()).unwrap_or_default();
    if built.first_error.is_none() {
        if let Some(line) = complaints.lines().find(|l| l.starts_with("error")) {
            built.first_error = Some(line.to_string());
        }
    }
    Ok(())
}

/// `error[E0308]: mismatched types at src/lib.rs:63:22`: a compiler error in one line.
fn describe_error(message: &Value) -> String {
    let code = message["code"]["code"]
        .as_str()
        .map(|c| format!("[{c}]"))
        .unwrap_or_default();
    let text = message["message"].as_str().unwrap_or("(no message)");
    let spans = message["spans"].as_array();
    let span = spans.and_then(|s| {
        s.iter()
            .find(|s| s["is_primary"] == true)
            .or_else(|| s.first())
    });
    let place = span
        .map(|s| {
            format!(
                " at {}:{}:{}",
                s["file_name"].as_str().unwrap_or("?"),
                s["line_start"],
                s["column_start"]
            )
        })
        .unwrap_or_default();
    format!("error{code}: {text}{place}")
}
