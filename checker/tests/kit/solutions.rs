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
    let ran: Vec<&str> = checks.iter().filter_map(|c| c["name"].as_str()).collect();
    for name in names(3, "adds") {
        assert!(
            ran.contains(&name.as_str()),
            "{name} did not run{}",
            r.dump()
        );
    }
    let scenarios: Vec<_> = checks.iter().filter(|c| c["production"] == true).collect();
    assert!(scenarios.len() >= 3, "{}", r.dump());
    for name in names(11, "adds") {
        let tried = scenarios.iter().any(|c| c["name"] == name.as_str());
        let needs_a_later_step = [
            // A lock shared by the connections exists from step 04 on.
            "slow_reader_blocks_nobody",
            "connection_limit",
            "refusal_flood_bounded",
            "signals_under_load_20x",
        ]
        .contains(&name.as_str());
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

#[test]
fn the_checker_builds_against_nothing_it_grades() {
    let text = std::fs::read_to_string(crate::util::root().join("checker/Cargo.toml")).unwrap();
    let manifest: toml::Table = toml::from_str(&text).unwrap();
    let mut paths = Vec::new();
    for section in ["dependencies", "dev-dependencies", "build-dependencies"] {
        for (name, dep) in manifest
            .get(section)
            .and_then(toml::Value::as_table)
            .into_iter()
            .flatten()
        {
            if let Some(path) = dep.get("path").and_then(toml::Value::as_str) {
                paths.push((name.clone(), path.to_string()));
            }
        }
    }
    let graded: Vec<_> = paths
        .iter()
        .filter(|(_, p)| p.contains("solutions/") || p.contains("exercises/"))
        .collect();
    assert!(
        graded.is_empty(),
        "the checker depends on code it grades: {graded:?}"
    );
}
