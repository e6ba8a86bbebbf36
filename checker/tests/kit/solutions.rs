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
    assert_eq!(report["steps"].as_array().unwrap().len(), 10);
    assert_eq!(r.code(), Some(0), "{}", r.dump());
}

#[test]
fn the_first_and_last_solutions_survive_every_production_scenario() {
    for step in [3, 10] {
        let r = run(
            &[
                "verify",
                &step.to_string(),
                "--solution",
                "--production",
                "--format",
                "json",
            ],
            &[],
        );
        let report = r.json();
        let checks = report["steps"][0]["checks"].as_array().unwrap();
        let scenarios: Vec<_> = checks.iter().filter(|c| c["production"] == true).collect();
        let ran: Vec<&str> = scenarios
            .iter()
            .filter_map(|c| c["name"].as_str())
            .collect();
        assert_eq!(
            ran,
            names(step, "production"),
            "step {step} did not run exactly its production scenarios{}",
            r.dump()
        );
        let failed: Vec<_> = scenarios
            .iter()
            .filter(|c| c["status"] != "pass")
            .map(|c| format!("{}: {}", c["name"], c["message"]))
            .collect();
        assert!(failed.is_empty(), "step {step}: {failed:?}{}", r.dump());
        assert_eq!(r.code(), Some(0), "{}", r.dump());
    }
}
