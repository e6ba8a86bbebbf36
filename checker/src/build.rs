//! Building the servers to grade: one `cargo build` for every crate, with cargo's own
//! progress and compiler errors shown as they come, and the executables read from cargo's
//! JSON messages (never guessed from the target directory's layout).

use crate::server;
use anyhow::{bail, Context, Result};
use serde_json::Value;
use std::collections::HashMap;
use std::io::{BufRead, BufReader};
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

/// The package name in `dir/Cargo.toml`.
fn package_name(dir: &Path) -> Result<String> {
    let manifest = dir.join("Cargo.toml");
    let text = std::fs::read_to_string(&manifest)
        .with_context(|| format!("reading {}", manifest.display()))?;
    let value: toml::Table =
        toml::from_str(&text).with_context(|| format!("parsing {}", manifest.display()))?;
    value
        .get("package")
        .and_then(|p| p.get("name"))
        .and_then(|n| n.as_str())
        .map(str::to_string)
        .with_context(|| format!("{} has no [package] name", manifest.display()))
}

/// Which of cargo's profiles to build with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Profile {
    /// `cargo build`: quick to build, what the checks grade.
    Dev,
    /// `cargo build --release`: optimised, what load and benchmarks measure.
    Release,
}

/// Builds the crates in `dirs` (inside the workspace at `root`, or anywhere else) and returns
/// the executable of each crate that built. A crate missing from the map failed to build;
/// cargo has already shown why.
pub fn build(root: &Path, dirs: &[PathBuf]) -> Result<HashMap<PathBuf, PathBuf>> {
    build_with(root, dirs, Profile::Dev)
}

/// [`build`], with the profile chosen.
pub fn build_with(
    root: &Path,
    dirs: &[PathBuf],
    profile: Profile,
) -> Result<HashMap<PathBuf, PathBuf>> {
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
    let mut built = HashMap::new();
    if !inside.is_empty() {
        let mut args = vec!["build".to_string(), "--keep-going".into()];
        if profile == Profile::Release {
            args.push("--release".into());
        }
        for dir in &inside {
            args.push("-p".into());
            args.push(package_name(dir)?);
        }
        run_cargo(&cargo, root, &args, &mut built)?;
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
        run_cargo(&cargo, &dir, &args, &mut built)?;
    }
    Ok(built)
}

fn run_cargo(
    cargo: &std::ffi::OsStr,
    cwd: &Path,
    args: &[String],
    built: &mut HashMap<PathBuf, PathBuf>,
) -> Result<()> {
    let mut command = Command::new(cargo);
    command
        .args(args)
        .arg("--message-format=json-render-diagnostics")
        .current_dir(cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    let mut child = server::spawn_in_own_group(&mut command).with_context(|| {
        format!(
            "running `cargo {}`: is cargo installed and on PATH?",
            args.join(" ")
        )
    })?;
    let stdout = child.stdout.take().expect("stdout is piped");
    for line in BufReader::new(stdout).lines() {
        let Ok(line) = line else { break };
        let Ok(msg) = serde_json::from_str::<Value>(&line) else {
            continue;
        };
        if msg["reason"] != "compiler-artifact" {
            continue;
        }
        let (Some(exe), Some(manifest)) =
            (msg["executable"].as_str(), msg["manifest_path"].as_str())
        else {
            continue;
        };
        if let Some(dir) = Path::new(manifest).parent() {
            built.insert(dir.to_path_buf(), PathBuf::from(exe));
        }
    }
    // Which crates built is told by the executables that appeared; cargo has printed the rest.
    server::reap(&mut child);
    Ok(())
}
