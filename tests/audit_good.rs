//! The good baseline passes every control, from a tarball and from a folder.

#[path = "audit_harness.rs"]
mod harness;

use harness::{failures, Fixture};

#[test]
fn good_baseline_passes_every_control() {
    let report = Fixture::good().audit();
    assert_eq!(failures(&report), Vec::<String>::new());
    assert!(report.passed > 40, "{} passed", report.passed);
}
