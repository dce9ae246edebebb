use super::*;

fn cart() -> Cart {
    Cart::new(Currency::USD, None, Utc::now())
}

#[test]
fn adding_the_same_variant_grows_the_line() {
    let mut c = cart();
    let v = VariantId::new();
    let a = c.add_line(v, 2).unwrap();
    let b = c.add_line(v, 3).unwrap();
    assert_eq!(a, b);
    assert_eq!(c.lines().len(), 1);
    assert_eq!(c.item_count(), 5);
}

#[test]
fn limits_leave_the_cart_unchanged() {
    let mut c = cart();
    let v = VariantId::new();
    c.add_line(v, MAX_QUANTITY_PER_LINE).unwrap();
    let before = c.clone();
    assert!(matches!(c.add_line(v, 1), Err(Error::LimitExceeded { .. })));
    assert!(c.add_line(v, u32::MAX).is_err());
    assert!(c.add_line(VariantId::new(), 0).is_err());
    assert_eq!(c, before);
}

#[test]
fn codes_are_normalized_and_deduplicated() {
    let mut c = cart();
    c.add_coupon_code("  save10 ").unwrap();
    c.add_coupon_code("SAVE10").unwrap();
    assert_eq!(c.coupon_codes(), ["SAVE10"]);
    assert!(c.add_coupon_code("bad code!").is_err());
    assert!(c.add_coupon_code(&"A".repeat(65)).is_err());
}

#[test]
fn code_policies_check_characters_before_folding_case() {
    let ascii = CodePolicy::default();
    let exact = CodePolicy::default().case_sensitive(true);
    let unicode = CodePolicy::default().characters(CodeCharacters::Unicode);
    let both = unicode.case_sensitive(true);
    let n = |code: &str, p: &CodePolicy| normalize_code_with(code, p).map_err(|e| e.to_string());
    assert_eq!(n(" Save-10 ", &ascii), Ok("SAVE-10".into()));
    assert_eq!(n(" Save-10 ", &exact), Ok("Save-10".into()));
    // Long s: refused by the ASCII check, never folded into SAVE10.
    assert!(n("ſave10", &ascii).unwrap_err().contains("ſave10"));
    // Under Unicode, NFKC first: ſ is s, full-width letters are plain.
    assert_eq!(n("ſave10", &unicode), Ok("SAVE10".into()));
    assert_eq!(n("ＳＡＶＥ１０", &unicode), Ok("SAVE10".into()));
    assert_eq!(n("Été", &unicode), Ok("ÉTÉ".into()));
    // "E" + combining acute composes to one letter: one code, not two.
    assert_eq!(n("E\u{301}te", &both), n("Éte", &both));
    assert_eq!(n("Été", &both), Ok("Été".into()));
    // No spaces or control characters inside, whatever the script.
    assert!(n("sa ve", &unicode).is_err());
    assert!(n("save\u{7}", &unicode).is_err());
    assert!(n("", &unicode).is_err());
    // The length is in characters: 64 of them, of any width.
    assert!(n(&"é".repeat(64), &unicode).is_ok());
    assert!(n(&"é".repeat(65), &unicode).is_err());
    let mut c = cart();
    c.add_coupon_code_with("Été", &both).unwrap();
    c.add_coupon_code_with("été", &both).unwrap();
    assert_eq!(c.coupon_codes(), ["Été", "été"]);
    c.remove_coupon_code_with("Été", &both).unwrap();
    assert_eq!(c.coupon_codes(), ["été"]);
    // Merging carries codes over as entered, whatever the policy.
    let mut mine = Cart::new(Currency::USD, Some(CustomerId::new()), Utc::now());
    mine.merge_from(&mut c).unwrap();
    assert_eq!(mine.coupon_codes(), ["été"]);
}

#[test]
fn merge_moves_lines_and_marks_guest() {
    let owner = CustomerId::new();
    let mut mine = Cart::new(Currency::USD, Some(owner), Utc::now());
    let mut guest = cart();
    let v = VariantId::new();
    mine.add_line(v, 1).unwrap();
    guest.add_line(v, 2).unwrap();
    guest.add_line(VariantId::new(), 1).unwrap();
    mine.merge_from(&mut guest).unwrap();
    assert_eq!(mine.item_count(), 4);
    assert_eq!(guest.status(), CartStatus::Merged { into: mine.id() });
}

#[test]
fn access_rules() {
    let owner = CustomerId::new();
    let c = Cart::new(Currency::USD, Some(owner), Utc::now());
    assert!(c.check_access(&Actor::Customer(owner)).is_ok());
    assert!(c.check_access(&Actor::Customer(CustomerId::new())).is_err());
    assert!(c.check_access(&Actor::Guest).is_err());
    assert!(c.check_access(&Actor::Staff("amy".into())).is_ok());
    assert!(cart().check_access(&Actor::Guest).is_ok());
}
