use super::*;

#[test]
fn div_round_follows_each_mode() {
    use RoundingMode::*;
    let cases = [
        // n, d, half_up, half_even, half_down, toward_zero, away, floor, ceiling
        (5, 2, 3, 2, 2, 2, 3, 2, 3),
        (7, 2, 4, 4, 3, 3, 4, 3, 4),
        (7, 3, 2, 2, 2, 2, 3, 2, 3),
        (8, 3, 3, 3, 3, 2, 3, 2, 3),
        (-5, 2, -3, -2, -2, -2, -3, -3, -2),
        (6, 3, 2, 2, 2, 2, 2, 2, 2),
    ];
    for (n, d, hu, he, hd, tz, az, fl, ce) in cases {
        assert_eq!(div_round(n, d, HalfUp), hu, "{n}/{d} half up");
        assert_eq!(div_round(n, d, HalfEven), he, "{n}/{d} half even");
        assert_eq!(div_round(n, d, HalfDown), hd, "{n}/{d} half down");
        assert_eq!(div_round(n, d, TowardZero), tz, "{n}/{d} toward zero");
        assert_eq!(div_round(n, d, AwayFromZero), az, "{n}/{d} away");
        assert_eq!(div_round(n, d, Floor), fl, "{n}/{d} floor");
        assert_eq!(div_round(n, d, Ceiling), ce, "{n}/{d} ceiling");
    }
}
