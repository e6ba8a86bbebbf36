use crate::util::{names, run};

#[test]
fn every_solution_passes_its_own_suite() {
    let r = run(&["verify", "--all", "--solution", "--format", "json"], &[]);
    let report = r.json();
    let failing: Vec<String> = report["steps"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| {
            let slug = s["slug"].as_str().unwrap().to_string();
            let error = s["error"].as_str().map(|e| format!("{slug}: {e}"));
            let checks: Vec<String> = s["checks"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|c| c["status"] != "pass")
                .map(|c| {
                    format!(
                        "{slug}/{}: {} | hint: {}",
                        c["name"], c["message"], c["hint"]
                    )
                })
                .collect();
            error.into_iter().chain(checks)
        })
        .collect();
    assert!(
        failing.is_empty(),
        "failing:\n{}{}",
        failing.join("\n"),
        r.dump()
    );
    assert_eq!(report["status"], "pass", "{}", r.dump());
    assert_eq!(report["steps"].as_array().unwrap().len(), 12);
    assert_eq!(r.code(), Some(0), "{}", r.dump());
}

#[test]
fn production_tries_the_bonus_scenarios_on_an_earlier_step() {
    // Step 03's reference against the scenarios of step 11 that apply from step 03 on: they
    // run as bonus checks, after the suite, and it survives them all.
    let r = run(
        &[
            "verify",
            "3",
            "--solution",
            "--production",
            "--format",
            "json",
        ],
        &[],
    );
    let report = r.json();
    let checks = report["steps"][0]["checks"].as_array().unwrap();
    let suite = names(3, "adds");
    let ran: Vec<&str> = checks.iter().filter_map(|c| c["name"].as_str()).collect();
    assert_eq!(&ran[..suite.len()], suite, "{}", r.dump());
    let scenarios: Vec<_> = checks.iter().filter(|c| c["production"] == true).collect();
    assert!(
        scenarios.len() >= 5 && scenarios.len() == ran.len() - suite.len(),
        "{}",
        r.dump()
    );
    for name in names(11, "adds") {
        let tried = scenarios.iter().any(|c| c["name"] == name.as_str());
        let needs_a_later_step =
            ["connection_limit", "signals_under_load_20x"].contains(&name.as_str());
        assert_eq!(tried, !needs_a_later_step, "{name}{}", r.dump());
    }
    let failed: Vec<_> = scenarios
        .iter()
        .filter(|c| c["status"] != "pass")
        .map(|c| format!("{}: {}", c["name"], c["message"]))
        .collect();
    assert!(failed.is_empty(), "{failed:?}{}", r.dump());
    assert_eq!(r.code(), Some(0), "{}", r.dump());
}
