//! Tests of the kit itself: the checker graded against the reference servers, against each
//! step's predecessor, and against servers broken on purpose. One test binary, one module per
//! concern.

// Helpers: running the checker and dumping everything when a run is not as expected.
mod util;

// Every reference solution passes its own step's suite.
mod solutions;
// For each step, the previous step's solution fails the check that holds the step's lesson.
mod previous_step;
// The fixture server with one defect at a time is caught by the expected check.
mod known_bad;
// The exercises: pristine skeletons fail with a diagnosis, and a learner's journey works.
mod exercises;
// Classroom use: JSON and JUnit results, grading many checkouts, the machine check.
mod classroom;
// The command line: arguments, exit codes, output formats, diagnoses, no orphan processes.
mod cli;
// `checker load`: its counts add up and agree with the server's own metrics.
mod load;
