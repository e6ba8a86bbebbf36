//! The own track: the learner's one evolving server instead of a crate per step.
//!
//! Steps 01 and 02 are an echo server and steps 03 to 12 an event server: two programs of
//! different kinds, so the own track has two crates, both the learner's, in the kit's `own/`
//! folder (a member of the kit's workspace: the kit's lock file and build cache serve it):
//! - `own/echo`: steps 01 and 02 (blocking, then async);
//! - `own/server`: steps 03 to 12, one crate that grows a lesson at a time.
//!
//! Each step grades the crate of its kind with the step's whole suite, which holds every rule
//! of the earlier steps that still applies: that is the regression check.

use crate::catalog::{steps, Step};
use crate::invocation;
use crate::skeleton;
use anyhow::Result;
use std::path::{Path, PathBuf};

/// The two crates of the own track, and the package names their manifests give them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Crate {
    Echo,
    Server,
}

impl Crate {
    /// The crate that `step` grades.
    pub fn of(step: &Step) -> Crate {
        if step.number <= 2 {
            Crate::Echo
        } else {
            Crate::Server
        }
    }

    pub fn folder(self) -> &'static str {
        match self {
            Crate::Echo => "own/echo",
            Crate::Server => "own/server",
        }
    }

    fn package(self) -> &'static str {
        match self {
            Crate::Echo => "own_echo",
            Crate::Server => "own_server",
        }
    }
}

const ECHO_MAIN: &str = r#"//! My echo server: steps 01 and 02 of the eventkit course, own track.
//!
//! Given: the flag the checker starts it with and the line that tells it where to connect.
//! The rest is mine to write (book/src/01_blocking_echo.md).

use std::io::Write;
use std::net::SocketAddr;

use clap::Parser;

#[derive(Debug, Parser)]
struct Args {
    /// Address to listen on; port 0 asks the operating system for a free port.
    #[arg(long, default_value = "127.0.0.1:7878")]
    addr: SocketAddr,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let listener = std::net::TcpListener::bind(args.addr)?;
    // The checker waits for this line, with the port really bound, before it connects.
    println!("listening on {}", listener.local_addr()?);
    std::io::stdout().flush()?;
    // TODO: serve the clients.
    todo!()
}
"#;

const SERVER_MAIN: &str = r#"//! My event server: steps 03 to 12 of the eventkit course, own track.
//!
//! Given: every flag the checker may start it with (each step's chapter says which it uses),
//! and the line that tells the checker where to connect. The rest is mine to write
//! (book/src/03_parse_events.md).

use std::io::Write;
use std::net::SocketAddr;

use clap::Parser;

#[derive(Debug, Parser)]
struct Args {
    /// Address to listen on; port 0 asks the operating system for a free port.
    #[arg(long, default_value = "127.0.0.1:7878")]
    addr: SocketAddr,
    /// Simulated CPU work per event, in microseconds (from step 04).
    #[arg(long, default_value_t = 0)]
    work_us: u64,
    /// Capacity of the queue between reading events and processing them (from step 05).
    #[arg(long, default_value_t = 1024)]
    queue_capacity: usize,
    /// Number of worker threads that process events (from step 06).
    #[arg(long, default_value_t = 4)]
    workers: usize,
    /// Simulated risk check per event, in microseconds, while the user's balance is locked
    /// (from step 07).
    #[arg(long, default_value_t = 0)]
    hold_us: u64,
    /// How long a graceful shutdown may take, in milliseconds (from step 10).
    #[arg(long, default_value_t = 10_000)]
    shutdown_timeout_ms: u64,
    /// How many connections to serve at once (from step 11).
    #[arg(long, default_value_t = 10_000)]
    max_connections: usize,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let listener = tokio::net::TcpListener::bind(args.addr).await?;
    // The checker waits for this line, with the port really bound, before it connects.
    println!("listening on {}", listener.local_addr()?);
    std::io::stdout().flush()?;
    // TODO: serve the clients.
    todo!()
}
"#;

/// The scaffold of one crate: (path relative to the crate, contents).
fn scaffold_files(which: Crate) -> Vec<(PathBuf, String)> {
    let (deps, main) = match which {
        Crate::Echo => (
            "anyhow.workspace = true\nclap.workspace = true\n",
            ECHO_MAIN,
        ),
        Crate::Server => (
            "anyhow.workspace = true\nclap.workspace = true\ntokio.workspace = true\n",
            SERVER_MAIN,
        ),
    };
    let manifest = format!(
        "[package]\nname = \"{}\"\nversion = \"0.1.0\"\nedition.workspace = true\npublish = false\n\n# Add what you need: `cargo add serde --package {}`, or a crate of the kit's Cargo.toml\n# with `name.workspace = true`.\n[dependencies]\n{deps}",
        which.package(),
        which.package()
    );
    vec![
        (PathBuf::from("Cargo.toml"), manifest),
        (PathBuf::from("src/main.rs"), main.to_string()),
    ]
}

/// The reference of `step` as the own crate of its kind would have it: named like that crate.
pub fn reference_files(root: &Path, step: &Step) -> Result<Vec<(PathBuf, String)>> {
    let which = Crate::of(step);
    let package = skeleton::exercise_package(step);
    Ok(skeleton::reference(root, step)?
        .into_iter()
        .map(|(rel, text)| (rel, text.replace(&package, which.package())))
        .collect())
}

/// Creates whichever of the two crates does not exist yet; returns the folders it created.
pub fn scaffold(root: &Path) -> Result<Vec<&'static str>> {
    let mut made = Vec::new();
    for which in [Crate::Echo, Crate::Server] {
        let dir = root.join(which.folder());
        if dir.join("Cargo.toml").exists() {
            continue;
        }
        skeleton::write_crate(&dir, &scaffold_files(which))?;
        made.push(which.folder());
    }
    Ok(made)
}

/// `checker catch-up STEP`: the own crates as they stand once every step before `step` has
/// passed: each one becomes the reference of the last step of its kind before `step` (or its
/// scaffold, if no step of its kind comes before), after the learner's version is saved.
pub fn catch_up(root: &Path, step: &'static Step) -> Result<()> {
    let stamp = crate::progress::now();
    for which in [Crate::Echo, Crate::Server] {
        let before = steps()
            .iter()
            .rev()
            .find(|s| Crate::of(s) == which && s.number < step.number);
        let files = match before {
            Some(s) => reference_files(root, s)?,
            None => scaffold_files(which),
        };
        let dir = root.join(which.folder());
        let saved =
            super::journey::save_copy(root, &dir, &which.folder().replace('/', "-"), stamp)?;
        skeleton::write_crate(&dir, &files)?;
        let what = match before {
            Some(s) => format!("the reference of {}", s.label()),
            None => "its scaffold".to_string(),
        };
        match saved {
            Some(to) => println!(
                "{} is now {what}; your version is saved in {}",
                which.folder(),
                to.display()
            ),
            None => println!("{} is now {what}.", which.folder()),
        }
    }
    println!(
        "Caught up: read book/src/{}.md, then `{} verify {:02}`.",
        step.slug,
        invocation(),
        step.number
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::find;

    #[test]
    fn steps_01_and_02_grade_the_echo_crate_and_the_others_the_server() {
        assert_eq!(Crate::of(find("1").unwrap()), Crate::Echo);
        assert_eq!(Crate::of(find("2").unwrap()), Crate::Echo);
        assert_eq!(Crate::of(find("3").unwrap()), Crate::Server);
        assert_eq!(Crate::of(find("12").unwrap()), Crate::Server);
    }

    #[test]
    fn the_scaffold_is_the_flags_and_the_announcement_and_a_todo() {
        for which in [Crate::Echo, Crate::Server] {
            let files = scaffold_files(which);
            let main = &files[1].1;
            assert!(main.contains("listening on {}"), "{main}");
            assert_eq!(main.matches("todo!()").count(), 1, "{main}");
            assert!(files[0]
                .1
                .contains(&format!("name = \"{}\"", which.package())));
        }
        let server = &scaffold_files(Crate::Server)[1].1;
        for flag in [
            "work_us",
            "queue_capacity",
            "workers",
            "hold_us",
            "shutdown_timeout_ms",
            "max_connections",
        ] {
            assert!(server.contains(&format!("    {flag}: ")), "{flag}");
        }
    }
}
