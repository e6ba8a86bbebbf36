//! `checker doctor`: is this machine ready for a workshop (toolchain, ports, limits, an offline
//! build)?

use crate::output::Style;
use anyhow::Result;
use std::path::Path;
use std::process::{Command, Stdio};

/// The oldest Rust the kit builds with (the newest `rust-version` among its dependencies).
const MIN_RUST: (u64, u64) = (1, 88);
/// File descriptors a learner's server and the checker need at the same time, with room.
const MIN_OPEN_FILES: u64 = 4096;

/// One finding: what was checked, whether it is fine, and how to fix it if not.
struct Finding {
    what: String,
    ok: bool,
    fix: String,
}

pub fn doctor(root: &Path, style: Style) -> Result<u8> {
    let rustc = Rustc::ask();
    let findings = vec![
        rust_version(&rustc),
        loopback(),
        default_port(),
        open_files(),
        offline(root, rustc.host.as_deref()),
    ];
    let mut bad = 0;
    for f in &findings {
        if f.ok {
            println!("{} {}", style.green("✔"), f.what);
        } else {
            bad += 1;
            println!("{} {}", style.red("✘"), f.what);
            println!("    {} {}", style.yellow("fix:"), f.fix);
        }
    }
    println!();
    if bad == 0 {
        println!("{}", style.green("This machine is ready for the course."));
        Ok(0)
    } else {
        println!(
            "{}",
            style.red(&format!("{bad} problem(s) to fix before the course."))
        );
        Ok(1)
    }
}

/// What `rustc -vV` says of itself: its version line, and the platform it builds for.
struct Rustc {
    /// `rustc 1.95.0 (59807616e 2026-04-14)`, or empty when there is no rustc.
    version: String,
    /// `x86_64-unknown-linux-gnu`.
    host: Option<String>,
}

impl Rustc {
    fn ask() -> Rustc {
        let text = Command::new("rustc")
            .arg("-vV")
            .output()
            .ok()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default();
        Rustc {
            version: text.lines().next().unwrap_or("").to_string(),
            host: text
                .lines()
                .find_map(|l| l.strip_prefix("host: "))
                .map(str::to_string),
        }
    }
}

fn rust_version(rustc: &Rustc) -> Finding {
    let text = &rustc.version;
    let version = text.split_whitespace().nth(1).unwrap_or("");
    let mut parts = version.split('.').map(|p| p.parse::<u64>().unwrap_or(0));
    let (major, minor) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    let ok = (major, minor) >= MIN_RUST;
    Finding {
        what: if text.is_empty() {
            "rustc: not found".into()
        } else {
            format!(
                "{} (needs {}.{} or newer)",
                text.trim(),
                MIN_RUST.0,
                MIN_RUST.1
            )
        },
        ok,
        fix: "install or update the toolchain: `rustup update stable` (https://rustup.rs)".into(),
    }
}

fn loopback() -> Finding {
    let ok = std::net::TcpListener::bind("127.0.0.1:0").is_ok();
    Finding {
        what: "a server can listen on 127.0.0.1".into(),
        ok,
        fix: "the loopback interface is down or blocked: check the firewall, or ask the machine's administrator".into(),
    }
}

fn default_port() -> Finding {
    let ok = std::net::TcpListener::bind("127.0.0.1:7878").is_ok();
    Finding {
        what: "the default address 127.0.0.1:7878 is free".into(),
        ok,
        fix: "something already listens there (a server you left running?): stop it (`lsof -i :7878` or `ss -ltnp` names it), or run your server with --addr 127.0.0.1:0".into(),
    }
}

fn open_files() -> Finding {
    use nix::sys::resource::{getrlimit, Resource};
    let soft = getrlimit(Resource::RLIMIT_NOFILE)
        .map(|(soft, _)| soft)
        .unwrap_or(0);
    Finding {
        what: format!("open files allowed: {soft} (needs {MIN_OPEN_FILES})"),
        ok: soft >= MIN_OPEN_FILES,
        fix: format!("the checker already raised its own limit as far as this system allows; raise the hard limit in the shell that runs it with `ulimit -n {MIN_OPEN_FILES}` (as root if it refuses; `nofile` in /etc/security/limits.conf keeps it)"),
    }
}

fn offline(root: &Path, host: Option<&str>) -> Finding {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(cargo);
    command.args(["fetch", "--offline", "--locked"]);
    // Only what this machine builds: a build downloads no crate for other platforms (the
    // Windows ones, say), and a plain fetch would ask for them all.
    if let Some(host) = host {
        command.args(["--target", host]);
    }
    let out = command
        .current_dir(root)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output();
    let (ok, why) = match out {
        Ok(o) if o.status.success() => (true, String::new()),
        Ok(o) => (
            false,
            String::from_utf8_lossy(&o.stderr)
                .lines()
                .find(|l| l.contains("error"))
                .unwrap_or("")
                .to_string(),
        ),
        Err(e) => (false, e.to_string()),
    };
    Finding {
        what: if ok { "every dependency is on this machine: the kit builds offline".into() } else { format!("the kit cannot build offline: {}", why.trim()) },
        ok,
        fix: "while online, run `cargo fetch` in the kit (or vendor the dependencies for a room without internet: see the teachers' guide)".into(),
    }
}
