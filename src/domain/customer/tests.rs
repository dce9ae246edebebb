//! Unit tests, compiled only under #[cfg(test)].
use super::*;

#[test]
fn emails_are_normalized() {
    assert_eq!(
        Email::new("  Ann@Example.COM ").unwrap().as_str(),
        "ann@example.com"
    );
    for bad in [
        "",
        "ann",
        "ann@",
        "@x.com",
        "a b@x.com",
        "a@x",
        "a@@x.com",
        "a@.x.com",
    ] {
        assert!(Email::new(bad).is_err(), "{bad}");
    }
    assert!(Email::new(&format!("{}@x.com", "a".repeat(300))).is_err());
}

#[test]
fn password_round_trip_and_rules() {
    let policy = PasswordPolicy::insecure_fast_for_tests();
    let hash = policy.hash("correct horse").unwrap();
    assert!(hash.as_phc().starts_with("$argon2id$"));
    assert!(!hash.as_phc().contains("correct horse"));
    assert!(policy.verify(&hash, "correct horse"));
    assert!(!policy.verify(&hash, "correct hors"));
    assert!(policy.hash("short").is_err());
    assert!(policy.hash(&"x".repeat(129)).is_err());
    assert_eq!(format!("{hash:?}"), "PasswordHash(<redacted>)");
}

#[test]
fn customer_debug_and_json_never_show_the_hash() {
    let policy = PasswordPolicy::insecure_fast_for_tests();
    let hash = policy.hash("correct horse").unwrap();
    let phc = hash.as_phc().to_owned();
    let c = Customer::registered(Email::new("a@b.co").unwrap(), "Ann", hash, Utc::now()).unwrap();
    assert!(!format!("{c:?}").contains(&phc));
    assert!(!serde_json::to_string(&c).unwrap().contains("argon2"));
}

#[test]
fn countries_are_two_letters() {
    assert_eq!(Country::new("de").unwrap().as_str(), "DE");
    assert!(Country::new("DEU").is_err());
    assert!(Country::new("1A").is_err());
}
