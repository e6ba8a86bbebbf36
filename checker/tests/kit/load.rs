//! `checker load` against the reference server of step 10: every request is accounted for, and
//! the server's own counters agree with what the clients saw. Counts only: how fast it went is
//! for the benchmarks, never for a test.

use crate::util::{refused, run};

#[test]
fn load_counts_add_up_and_match_the_server_metrics() {
    let r = run(
        &[
            "load",
            "10",
            "--solution",
            "--clients",
            "4",
            "--events",
            "2000",
            "--json",
        ],
        &[],
    );
    assert_eq!(r.code(), Some(0), "the load run failed{}", r.dump());
    let v = r.json();
    let n = |k: &str| {
        v[k].as_u64()
            .unwrap_or_else(|| panic!("no count {k:?} in the report{}", r.dump()))
    };
    assert_eq!(n("sent"), 2000, "{}", r.dump());
    assert_eq!(
        n("sent"),
        n("accepted") + n("rejected") + n("ok") + n("errors"),
        "sent != accepted + rejected + ok + errors{}",
        r.dump()
    );
    // Events only (no reads asked for), and a correct server answers every one.
    assert_eq!(n("ok"), 0, "{}", r.dump());
    assert_eq!(n("errors"), 0, "{}", r.dump());
    assert_eq!(
        v["latency_us"]["count"].as_u64(),
        Some(2000),
        "{}",
        r.dump()
    );

    // Both sides' CPU is measured: the load generator's always, the server's because the
    // checker started it (on Linux, which the kit runs on).
    let cpu = &v["cpu"];
    assert!(
        cpu["load_percent"].as_f64().is_some_and(|p| p > 0.0),
        "no CPU for the load generator{}",
        r.dump()
    );
    assert!(
        cpu["load_cpus"].as_u64().is_some_and(|n| n >= 1),
        "{}",
        r.dump()
    );
    if std::path::Path::new("/proc/self/schedstat").exists() {
        assert!(
            cpu["server_percent"].as_f64().is_some_and(|p| p > 0.0),
            "no CPU for the server{}",
            r.dump()
        );
    }

    // Step 10 has metrics: the checker read them before and after, and they agree.
    let m = &v["server_metrics"];
    assert!(m.is_object(), "no server metrics in the report{}", r.dump());
    assert_eq!(
        m["mismatches"].as_array().map(Vec::len),
        Some(0),
        "{}",
        r.dump()
    );
    for (counter, clients) in [
        ("received", n("accepted") + n("rejected")),
        ("processed", n("accepted")),
        ("dropped", n("rejected")),
    ] {
        assert_eq!(
            m["server"][counter].as_u64(),
            Some(clients),
            "the server's {counter} disagrees with the clients{}",
            r.dump()
        );
    }
}

#[test]
fn load_says_when_nothing_listens_instead_of_reporting_an_empty_run() {
    // A port that was free a moment ago, and is closed again.
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap();
    refused(
        &["load", "--addr", &addr.to_string(), "--duration", "1"],
        &format!("nothing answers at {addr}: start your server first"),
    );
}

#[test]
fn load_refuses_flags_the_step_does_not_have_and_counts_of_zero() {
    // Step 05's server has no workers: it would refuse to start. The checker says so first,
    // without building anything.
    refused(
        &["load", "05", "--solution", "--workers", "4"],
        "no --workers (it comes at step 06)",
    );
    for (flag, value) in [
        ("--clients", "0"),
        ("--users", "0"),
        ("--in-flight", "0"),
        ("--events", "0"),
        ("--rate", "0"),
    ] {
        refused(&["load", "--echo", flag, value], flag);
    }
}
