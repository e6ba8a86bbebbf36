//! `checker bench`: sweeps that show each step's pain as a picture. Each scenario starts the
//! reference servers (release builds), measures a short sweep, and writes the graph as SVG with
//! its data as CSV and JSON, named after the chapter it belongs to:
//!
//! | scenario | graph | what it shows |
//! |---|---|---|
//! | 02 (or 01) | `02_async_echo.svg` | steps 01 and 02: first-reply latency as concurrent clients grow |
//! | 04 | `04_inline_state.svg` | a quick client's latency while others send slow events, 04 against 05 |
//! | 05 | `05_backpressure.svg` | accepted and server_busy as offered load passes capacity; memory flat |
//! | 06 | `06_worker_threads.svg` | throughput as workers grow |
//! | 08 (or 07) | `08_per_user_locks.svg` | 07 against 08: throughput and read latency as workers grow, few users |
//! | 09 | `09_atomic_metrics.svg` | counting with atomics against a mutex, as threads grow, and how long a metrics read waits meanwhile |
//! | 10 | `10_graceful_shutdown.svg` | shutdown drain time as the queue grows, and no event lost |
//! | 11 | `11_under_fire.svg` | 10 against 11: open files and memory under a flood of silent connections |
//! | 12 | `12_fast.svg` | 10 against 12: accepted events per second as requests in flight grow |
//! | idle | `idle_connections.json` | steps 10 and 12: memory per idle connection (data only) |
//!
//! `checker bench --all --out book/src/graphs` regenerates every graph of the book.

mod figure;
mod scenarios;

use crate::catalog;
use crate::load::machine::Machine;
use crate::sut::build;
use anyhow::{bail, Context, Result};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

#[derive(clap::Args, Debug)]
pub struct BenchArgs {
    /// The scenario: a step that has one (02, 04, 05, 06, 08, 09, 10, 11, 12; 01 and 07 are compared
    /// in 02 and 08), `idle` (memory per idle connection), or `all`.
    #[arg(required_unless_present_any = ["all", "redraw"])]
    pub scenario: Option<String>,
    /// Every scenario that draws a graph.
    #[arg(long, conflicts_with = "scenario")]
    pub all: bool,
    /// Measure nothing: draw again every graph whose data (JSON) is in the --out folder, as
    /// after a change to how graphs are drawn.
    #[arg(long, conflicts_with_all = ["scenario", "all"])]
    pub redraw: bool,
    /// Where the SVG, CSV and JSON files go.
    #[arg(long, value_name = "DIR", default_value = "target/bench")]
    pub out: PathBuf,
}

/// The scenarios, in course order: (name, graph slug, steps whose servers it needs).
const SCENARIOS: &[(&str, &str, &[usize])] = &[
    ("02", "02_async_echo", &[1, 2]),
    ("04", "04_inline_state", &[4, 5]),
    ("05", "05_backpressure", &[5]),
    ("06", "06_worker_threads", &[6]),
    ("08", "08_per_user_locks", &[7, 8]),
    ("09", "09_atomic_metrics", &[]),
    ("10", "10_graceful_shutdown", &[10]),
    ("11", "11_under_fire", &[10, 11]),
    ("12", "12_fast", &[10, 12]),
    ("idle", "idle_connections", &[10, 12]),
];

/// The scenario a name on the command line means.
fn scenario(name: &str) -> Result<&'static str> {
    let name = name.trim();
    if name == "idle" {
        return Ok("idle");
    }
    let number = catalog::find(name).map(|s| s.number).with_context(|| {
        format!("no benchmark named {name:?}: try 02, 04, 05, 06, 08, 09, 10, 11, 12, idle or all")
    })?;
    Ok(match number {
        1 | 2 => "02",
        4 => "04",
        5 => "05",
        6 => "06",
        7 | 8 => "08",
        9 => "09",
        10 => "10",
        11 => "11",
        12 => "12",
        n => bail!(
            "step {n:02} has no benchmark: its lesson is correctness, which `checker verify` shows"
        ),
    })
}

/// What every scenario gets: the servers' executables and the machine.
pub struct Bench {
    bins: HashMap<usize, PathBuf>,
    machine: Machine,
}

impl Bench {
    /// The release executable of step `n`'s reference server.
    fn bin(&self, n: usize) -> &Path {
        &self.bins[&n]
    }
}

pub fn bench_cmd(root: &Path, args: BenchArgs) -> Result<u8> {
    if args.redraw {
        return redraw(&args.out);
    }
    let chosen: Vec<&str> = match args.scenario.as_deref() {
        None | Some("all") => SCENARIOS
            .iter()
            .map(|s| s.0)
            .filter(|&s| s != "idle")
            .collect(),
        Some(name) => vec![scenario(name)?],
    };
    // Build every server needed, in one cargo run.
    let mut steps: Vec<usize> = SCENARIOS
        .iter()
        .filter(|s| chosen.contains(&s.0))
        .flat_map(|s| s.2.iter().copied())
        .collect();
    steps.sort_unstable();
    steps.dedup();
    let dirs: Vec<PathBuf> = steps
        .iter()
        .map(|&n| root.join(catalog::steps()[n - 1].solution_dir()))
        .collect();
    let built = if dirs.is_empty() {
        build::Built::default()
    } else {
        build::build_with(root, &dirs, build::Profile::Release)?
    };
    let mut bins = HashMap::new();
    for (&n, dir) in steps.iter().zip(&dirs) {
        let exe = built
            .get(dir)
            .ok_or_else(|| anyhow::anyhow!("{}", built.failure(&dir.display().to_string())))?;
        bins.insert(n, exe);
    }
    let bench = Bench {
        bins,
        machine: Machine::this(),
    };
    let out = if args.out.is_absolute() {
        args.out.clone()
    } else {
        std::env::current_dir()?.join(&args.out)
    };
    let started = Instant::now();
    for name in chosen {
        let t = Instant::now();
        eprintln!("bench {name} ...");
        let written = match name {
            "02" => vec![scenarios::async_echo(&bench)?.write(&out)?],
            "04" => vec![scenarios::inline_state(&bench)?.write(&out)?],
            "05" => vec![scenarios::backpressure(&bench)?.write(&out)?],
            "06" => vec![scenarios::worker_threads(&bench)?.write(&out)?],
            "08" => vec![scenarios::per_user_locks(&bench)?.write(&out)?],
            "09" => vec![scenarios::atomic_metrics(&bench)?.write(&out)?],
            "10" => vec![scenarios::graceful_shutdown(&bench)?.write(&out)?],
            "11" => vec![scenarios::under_fire(&bench)?.write(&out)?],
            "12" => vec![scenarios::fast(&bench)?.write(&out)?],
            "idle" => vec![scenarios::idle_connections(&bench, &out)?],
            _ => unreachable!("every scenario is listed"),
        };
        for path in written {
            eprintln!("bench {name}: wrote {}", path.display());
        }
        eprintln!("bench {name}: {:.1} s", t.elapsed().as_secs_f64());
    }
    eprintln!(
        "benchmarks done in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Ok(0)
}

/// Draws every graph of `dir` again from its JSON data.
fn redraw(dir: &Path) -> Result<u8> {
    let mut drawn = 0;
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    entries.sort();
    for json in entries {
        let text = std::fs::read_to_string(&json)?;
        // Data without a graph (idle_connections.json) is not a figure: leave it.
        let Ok(figure) = serde_json::from_str::<figure::Figure>(&text) else {
            continue;
        };
        let svg = json.with_extension("svg");
        figure.draw(&svg)?;
        eprintln!("redrew {}", svg.display());
        drawn += 1;
    }
    if drawn == 0 {
        bail!(
            "no graph data (SLUG.json from `checker bench`) in {}",
            dir.display()
        );
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scenario_names() {
        assert_eq!(scenario("01").unwrap(), "02");
        assert_eq!(scenario("2").unwrap(), "02");
        assert_eq!(scenario("07_no_overdraft").unwrap(), "08");
        assert_eq!(scenario("step10").unwrap(), "10");
        assert_eq!(scenario("idle").unwrap(), "idle");
        assert!(scenario("03").is_err());
        assert!(scenario("nope").is_err());
    }

    #[test]
    fn every_scenario_names_a_chapter() {
        for (name, slug, _) in SCENARIOS {
            if *name != "idle" {
                assert!(
                    catalog::steps().iter().any(|s| s.slug == *slug),
                    "{slug} is no chapter"
                );
            }
        }
    }
}
