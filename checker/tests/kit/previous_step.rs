//! Each step adds observable behaviour: the previous step's reference server must fail the
//! check that holds the new lesson.

use crate::util::{run, slug};

/// (step, the check that the previous step's solution must fail)
const LESSONS: &[(usize, &str)] = &[
    (2, "idle_clients_cost_no_thread"),
    (3, "valid_events"),
    (4, "balances_exact"),
    (5, "burst_gets_server_busy"),
    (6, "balance_query"),
    (7, "no_overdraft_sequential"),
    (7, "hold_is_under_the_users_lock"),
    (8, "hold_scales_across_users"),
    (8, "read_not_blocked_by_other_users"),
    (8, "new_users_not_blocked_by_a_hold"),
    (9, "metrics_and_health"),
    (10, "sigint_idle_exits_clean"),
    (10, "shutdown_under_load_loses_nothing"),
    (10, "shutdown_keeps_the_replies_of_a_client_still_sending"),
    (11, "connection_limit"),
    (11, "refusal_flood_bounded"),
    (12, "fast_enough"),
];

#[test]
fn previous_solution_fails_the_lesson_of_each_step() {
    let mut wrong = Vec::new();
    for &(step, check) in LESSONS {
        let previous = format!("solutions/{}", slug(step - 1));
        let r = run(
            &[
                "verify",
                &step.to_string(),
                "--path",
                &previous,
                "--check",
                check,
                "--format",
                "json",
            ],
            &[],
        );
        if r.code() != Some(1) || r.failed_checks() != [check] {
            wrong.push(format!(
                "step {step}: {previous} should fail {check}{}",
                r.dump()
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}
