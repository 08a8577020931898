use canary_core::health::{HealthFigures, Verdict, VersionFigures, judge};
use canary_core::request::HealthPolicy;

fn figures(invocations: u64, errors: u64) -> HealthFigures {
    HealthFigures { new: VersionFigures { invocations, errors, ..Default::default() }, ..Default::default() }
}

#[test]
fn verdicts() {
    let policy =
        |max_error_rate, min_invocations| HealthPolicy { max_error_rate, min_invocations, ..HealthPolicy::default() };
    // (max rate, min invocations, invocations, errors, expected verdict)
    let cases: &[(f64, u64, u64, u64, &str)] = &[
        (0.01, 10, 1000, 0, "pass"),
        (0.01, 10, 1000, 10, "pass"), // exactly at the threshold passes
        (0.01, 10, 1000, 11, "fail"),
        (0.0, 10, 1000, 1, "fail"), // the legacy rule: any error fails
        (0.0, 10, 1000, 0, "pass"),
        (0.01, 10, 0, 0, "inconclusive"), // no traffic is not evidence of health
        (0.01, 10, 9, 0, "inconclusive"),
        (0.5, 10, 4, 4, "inconclusive"), // 4 errors could still be 40% of 10
        (0.5, 10, 6, 6, "fail"),         // 6 errors are over 50% of any 10
        (0.01, 0, 0, 0, "inconclusive"), // even with no minimum, zero invocations judge nothing
        (0.01, 0, 1, 0, "pass"),
        (1.0, 10, 100, 100, "pass"), // a rate of 1 allowed allows everything
    ];
    for &(rate, min, invocations, errors, expected) in cases {
        let verdict = judge(&policy(rate, min), &figures(invocations, errors));
        let kind = match &verdict {
            Verdict::Pass => "pass",
            Verdict::Fail(f) => {
                assert_eq!(f.signal, "error_rate");
                assert_eq!(f.threshold, rate);
                assert!(f.message.contains(&format!("{errors} of {invocations}")), "{}", f.message);
                "fail"
            }
            Verdict::Inconclusive { invocations: i, min_invocations } => {
                assert_eq!((*i, *min_invocations), (invocations, min));
                "inconclusive"
            }
        };
        assert_eq!(kind, expected, "rate {rate}, min {min}, {errors}/{invocations}");
    }
}

#[test]
fn error_rate_of_no_traffic_is_zero() {
    assert_eq!(VersionFigures::default().error_rate(), 0.0);
    assert_eq!(figures(4, 1).new.error_rate(), 0.25);
}
