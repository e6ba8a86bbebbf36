//! The machine a measurement was taken on, and pinning threads to CPUs.

use anyhow::{bail, Context, Result};
use nix::sched::{sched_getaffinity, sched_setaffinity, CpuSet};
use nix::unistd::Pid;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// What every report and graph says about where it was measured.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Machine {
    /// CPUs online (`nproc`).
    pub nproc: usize,
    /// The CPU model, from `/proc/cpuinfo`.
    pub cpu: String,
}

impl Machine {
    pub fn this() -> Machine {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        Machine {
            nproc: online_cpus(),
            cpu: cpu_model(&cpuinfo).unwrap_or_else(|| "unknown CPU".into()),
        }
    }

    /// `2 × Intel(R) Xeon(R) ...`, for titles and reports.
    pub fn describe(&self) -> String {
        format!("{} × {}", self.nproc, self.cpu)
    }
}

fn online_cpus() -> usize {
    // `nproc` counts the CPUs this process may use; ask the kernel for the ones online.
    std::fs::read_to_string("/sys/devices/system/cpu/online")
        .ok()
        .and_then(|s| parse_cpus(s.trim()).ok())
        .map(|cpus| cpus.len())
        .or_else(|| std::thread::available_parallelism().ok().map(|n| n.get()))
        .unwrap_or(1)
}

/// The first `model name` (x86) or `Model`/`Hardware` (Arm) line of `/proc/cpuinfo`.
pub fn cpu_model(cpuinfo: &str) -> Option<String> {
    cpuinfo.lines().find_map(|line| {
        let (key, value) = line.split_once(':')?;
        let key = key.trim();
        (key == "model name" || key == "Model" || key == "Hardware")
            .then(|| value.split_whitespace().collect::<Vec<_>>().join(" "))
            .filter(|v| !v.is_empty())
    })
}

/// `0`, `1-3`, `0,2-3`: the CPU numbers of a list in the kernel's (and `taskset -c`'s) format.
pub fn parse_cpus(list: &str) -> Result<Vec<usize>> {
    let mut cpus = Vec::new();
    for part in list.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (a, b) = part.split_once('-').unwrap_or((part, part));
        let a: usize = a
            .trim()
            .parse()
            .with_context(|| format!("{part:?} is not a CPU"))?;
        let b: usize = b
            .trim()
            .parse()
            .with_context(|| format!("{part:?} is not a CPU"))?;
        if b < a {
            bail!("{part:?} is not a CPU range");
        }
        cpus.extend(a..=b);
    }
    if cpus.is_empty() {
        bail!("{list:?} names no CPU");
    }
    cpus.sort_unstable();
    cpus.dedup();
    Ok(cpus)
}

/// Restricts the calling thread (and the threads and processes it starts from now on) to
/// `cpus`.
pub fn pin_current_thread(cpus: &[usize]) -> Result<()> {
    let mut set = CpuSet::new();
    for &cpu in cpus {
        set.set(cpu)
            .with_context(|| format!("CPU {cpu} is out of range"))?;
    }
    sched_setaffinity(Pid::from_raw(0), &set)
        .with_context(|| format!("pinning to CPUs {cpus:?} (does this machine have them?)"))
}

/// The CPUs the calling thread may run on.
pub fn current_cpus() -> Vec<usize> {
    match sched_getaffinity(Pid::from_raw(0)) {
        Ok(set) => (0..CpuSet::count())
            .filter(|&i| set.is_set(i).unwrap_or(false))
            .collect(),
        Err(_) => (0..online_cpus()).collect(),
    }
}

/// The CPUs a measured server and its load generator get: the first CPU this process may use
/// for the server, the others for the load generator, so that neither steals from the other.
/// `(None, None)` on a single CPU: both then share it.
pub fn server_and_client_cpus() -> (Option<Vec<usize>>, Option<Vec<usize>>) {
    match current_cpus().split_first() {
        Some((first, rest)) if !rest.is_empty() => (Some(vec![*first]), Some(rest.to_vec())),
        _ => (None, None),
    }
}

/// The resident set of a process, in KiB (the checker reads it the same way everywhere).
pub use crate::sut::server::rss_kib;

/// CPU time this process has used so far, every thread together (ended ones too).
pub fn cpu_time_self() -> Duration {
    use nix::sys::resource::{getrusage, UsageWho};
    getrusage(UsageWho::RUSAGE_SELF)
        .map(|u| {
            let tv = |t: nix::sys::time::TimeVal| {
                Duration::new(t.tv_sec().max(0) as u64, (t.tv_usec().max(0) as u32) * 1000)
            };
            tv(u.user_time()) + tv(u.system_time())
        })
        .unwrap_or_default()
}

/// CPU time the live threads of process `pid` have used so far, from Linux's
/// `/proc/PID/task/*/schedstat` (nanoseconds); `None` where that cannot be read.
pub fn cpu_time_of(pid: u32) -> Option<Duration> {
    let mut nanos = 0u64;
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).ok()? {
        let text = std::fs::read_to_string(task.ok()?.path().join("schedstat")).ok()?;
        nanos += schedstat_nanos(&text)?;
    }
    Some(Duration::from_nanos(nanos))
}

/// The first field of a `schedstat` file: nanoseconds spent on a CPU.
fn schedstat_nanos(text: &str) -> Option<u64> {
    text.split_whitespace().next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_lists() {
        assert_eq!(parse_cpus("0").unwrap(), vec![0]);
        assert_eq!(parse_cpus("1-3").unwrap(), vec![1, 2, 3]);
        assert_eq!(parse_cpus("3,0-1,1").unwrap(), vec![0, 1, 3]);
        assert!(parse_cpus("").is_err());
        assert!(parse_cpus("2-1").is_err());
        assert!(parse_cpus("x").is_err());
    }

    #[test]
    fn the_cpu_model_line() {
        let info = "processor\t: 0\nvendor_id\t: GenuineIntel\nmodel name\t: Intel(R) Xeon(R)  Processor @ 2.80GHz\n";
        assert_eq!(
            cpu_model(info).as_deref(),
            Some("Intel(R) Xeon(R) Processor @ 2.80GHz")
        );
        assert_eq!(cpu_model("processor: 0\n"), None);
    }

    #[test]
    fn cpu_time_is_read_for_this_process() {
        assert_eq!(schedstat_nanos("123456 789 10\n"), Some(123_456));
        assert_eq!(schedstat_nanos(""), None);
        // Any process that has got this far has used some CPU.
        assert!(cpu_time_self() > Duration::ZERO);
        if std::path::Path::new("/proc/self/schedstat").exists() {
            assert!(cpu_time_of(std::process::id()).is_some_and(|t| t > Duration::ZERO));
        }
        assert_eq!(cpu_time_of(u32::MAX), None);
    }
}
