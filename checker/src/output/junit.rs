//! Results as JUnit XML, for CI systems: a test suite per step, a test case per check.

use super::{StepOutcome, StepReport};

/// Every step's result as a JUnit XML report: a test suite per step, a test case per check.
pub fn to_junit(reports: &[StepReport]) -> String {
    use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};
    let mut report = Report::new("eventkit");
    for r in reports {
        let mut suite = TestSuite::new(format!("{} {}", r.step.label(), r.step.slug));
        match &r.outcome {
            StepOutcome::Error(e) => {
                let mut status = TestCaseStatus::non_success(NonSuccessKind::Error);
                status.set_message(e.as_str());
                suite.add_test_case(TestCase::new("build", status));
            }
            StepOutcome::Ran(results) => {
                for c in results {
                    let status = match (&c.failure, &c.skipped) {
                        (None, None) => TestCaseStatus::success(),
                        (None, Some(why)) => {
                            let mut status = TestCaseStatus::skipped();
                            status.set_message(why.as_str());
                            status
                        }
                        (Some(f), _) => {
                            let mut status = TestCaseStatus::non_success(NonSuccessKind::Failure);
                            status.set_message(f.message.as_str());
                            let mut details = Vec::new();
                            details.extend(f.expected.iter().map(|e| format!("expected: {e}")));
                            details.extend(f.got.iter().map(|g| format!("got:      {g}")));
                            details.extend(f.hint.iter().map(|h| format!("hint: {h}")));
                            details.push("transcript:".into());
                            details.extend(c.transcript.iter().cloned());
                            status.set_description(details.join("\n"));
                            status
                        }
                    };
                    let mut case = TestCase::new(c.name, status);
                    case.set_classname(r.step.slug.as_str());
                    case.set_time(c.duration);
                    suite.add_test_case(case);
                }
            }
        }
        report.add_test_suite(suite);
    }
    report.to_string().unwrap_or_default()
}
