//! The fixture server `checker/fixtures/mutant_server` implements the final step correctly
//! unless MUTANT_DEFECT names one classic mistake. Each mistake must be caught by the check
//! written for it, and the correct mode must pass everything (so a catch is the defect's
//! doing, not a broken fixture).

use crate::util::run;

const FIXTURE: &str = "checker/fixtures/mutant_server";

/// (defect, step whose suite catches it, the check that must fail)
const DEFECTS: &[(&str, usize, &str)] = &[
    ("no_flush", 3, "valid_events"),
    ("wrong_order", 3, "pipelined_mixed_1000"),
    ("answer_fragment", 3, "half_close_and_fragment"),
    ("no_line_limit", 3, "line_too_long"),
    ("block_runtime", 5, "burst_gets_server_busy"),
    ("count_rejected", 6, "only_accepted_events_count"),
    ("racy_overdraft", 7, "no_overdraft_concurrent"),
    ("global_lock", 8, "hold_scales_across_users"),
    ("uncounted_drops", 9, "metrics_add_up"),
    ("slow_metrics", 9, "metrics_prompt_when_queue_full"),
    ("ignore_sigterm", 10, "sigterm_idle_exits_clean"),
    (
        "lose_queue_on_shutdown",
        10,
        "shutdown_under_load_loses_nothing",
    ),
    ("no_second_signal", 10, "second_signal_exits_at_once"),
    // Step 11's scenarios.
    ("no_line_limit", 3, "long_line_memory_bounded"),
    ("lose_queue_on_shutdown", 11, "signals_under_load_20x"),
    ("no_connection_limit", 11, "connection_limit"),
];

#[test]
fn the_fixture_without_defect_passes_the_final_suite() {
    let r = run(
        &["verify", "10", "--path", FIXTURE, "--format", "json"],
        &[],
    );
    assert_eq!(
        r.code(),
        Some(0),
        "failed: {:?}{}",
        r.failed_checks(),
        r.dump()
    );
}

#[test]
fn each_defect_is_caught_by_its_check() {
    let mut missed = Vec::new();
    for &(defect, step, check) in DEFECTS {
        let r = run(
            &[
                "verify",
                &step.to_string(),
                "--path",
                FIXTURE,
                "--check",
                check,
                "--format",
                "json",
            ],
            &[("MUTANT_DEFECT", defect)],
        );
        if r.code() != Some(1) || r.failed_checks() != [check] {
            missed.push(format!("{defect}: expected {check} to fail{}", r.dump()));
        }
    }
    assert!(missed.is_empty(), "{}", missed.join("\n"));
}
