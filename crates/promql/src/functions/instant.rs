//! Kernels of functions applied to each float sample of an instant vector: math, rounding,
//! clamping, trigonometry and calendar fields.
//!
//! Semantics follow Prometheus 3.x `promql/functions.go`. The engine applies a kernel to float
//! samples only (upstream skips histogram samples for all of these) and drops the metric name
//! from the result. Extra scalar arguments arrive in `params` in call order.

use super::InstantFn;
use chrono::{DateTime, Datelike, Timelike, Utc};

/// The kernel of the named function, or `None` if `name` is not implemented here.
pub fn lookup(name: &str) -> Option<InstantFn> {
    let f: InstantFn = match name {
        "abs" => |v, _| v.abs(),
        "ceil" => |v, _| v.ceil(),
        "floor" => |v, _| v.floor(),
        "exp" => |v, _| v.exp(),
        "ln" => |v, _| v.ln(),
        "log2" => |v, _| v.log2(),
        "log10" => |v, _| v.log10(),
        "sqrt" => |v, _| v.sqrt(),
        "sgn" => sgn,
        "round" => round,
        "clamp" => clamp,
        "clamp_min" => clamp_min,
        "clamp_max" => clamp_max,
        "sin" => |v, _| v.sin(),
        "cos" => |v, _| v.cos(),
        "tan" => |v, _| v.tan(),
        "asin" => |v, _| v.asin(),
        "acos" => |v, _| v.acos(),
        "atan" => |v, _| v.atan(),
        "sinh" => |v, _| v.sinh(),
        "cosh" => |v, _| v.cosh(),
        "tanh" => |v, _| v.tanh(),
        "asinh" => |v, _| v.asinh(),
        "acosh" => |v, _| v.acosh(),
        "atanh" => |v, _| v.atanh(),
        "deg" => |v, _| v * 180.0 / std::f64::consts::PI,
        "rad" => |v, _| v * std::f64::consts::PI / 180.0,
        "day_of_month" => |v, _| date_field(v, |t| t.day() as f64),
        "day_of_week" => |v, _| date_field(v, |t| t.weekday().num_days_from_sunday() as f64),
        "day_of_year" => |v, _| date_field(v, |t| t.ordinal() as f64),
        "days_in_month" => |v, _| date_field(v, |t| days_in_month(t.year(), t.month()) as f64),
        "hour" => |v, _| date_field(v, |t| t.hour() as f64),
        "minute" => |v, _| date_field(v, |t| t.minute() as f64),
        "month" => |v, _| date_field(v, |t| t.month() as f64),
        "year" => |v, _| date_field(v, |t| t.year() as f64),
        _ => return None,
    };
    Some(f)
}

/// Go's `math.Max`: +Inf if either is +Inf, else NaN if either is NaN, +0 over -0.
fn go_max(x: f64, y: f64) -> f64 {
    if x == f64::INFINITY || y == f64::INFINITY {
        return f64::INFINITY;
    }
    if x.is_nan() || y.is_nan() {
        return f64::NAN;
    }
    if x == 0.0 && y == 0.0 {
        return if x.is_sign_negative() { y } else { x };
    }
    if x > y {
        x
    } else {
        y
    }
}

/// Go's `math.Min`: -Inf if either is -Inf, else NaN if either is NaN, -0 over +0.
fn go_min(x: f64, y: f64) -> f64 {
    if x == f64::NEG_INFINITY || y == f64::NEG_INFINITY {
        return f64::NEG_INFINITY;
    }
    if x.is_nan() || y.is_nan() {
        return f64::NAN;
    }
    if x == 0.0 && y == 0.0 {
        return if x.is_sign_negative() { x } else { y };
    }
    if x < y {
        x
    } else {
        y
    }
}

/// `sgn`: -1 for negative, 1 for positive, the value itself for ±0 and NaN.
fn sgn(v: f64, _: &[f64]) -> f64 {
    if v < 0.0 {
        -1.0
    } else if v > 0.0 {
        1.0
    } else {
        v
    }
}

/// `round(v, to_nearest=1)`: rounds to the nearest multiple of `params[0]` (1 when absent),
/// ties up (towards +Inf). Computed via the inverse, as upstream, to limit rounding error.
fn round(v: f64, params: &[f64]) -> f64 {
    let to_nearest = params.first().copied().unwrap_or(1.0);
    let inverse = 1.0 / to_nearest;
    (v * inverse + 0.5).floor() / inverse
}

/// `clamp(v, min, max)`, `params = [min, max]`: `max(min, min(max, v))` with Go's NaN rules
/// (a NaN bound yields NaN).
///
/// Upstream returns an **empty vector** when `max < min`; the engine must check that per step
/// and emit nothing. The kernel assumes `min <= max` (or a NaN bound).
fn clamp(v: f64, params: &[f64]) -> f64 {
    let min = params.first().copied().unwrap_or(f64::NEG_INFINITY);
    let max = params.get(1).copied().unwrap_or(f64::INFINITY);
    go_max(min, go_min(max, v))
}

/// `clamp_min(v, min)`, `params = [min]`: `clamp(v, min, +Inf)`.
fn clamp_min(v: f64, params: &[f64]) -> f64 {
    let min = params.first().copied().unwrap_or(f64::NEG_INFINITY);
    go_max(min, go_min(f64::INFINITY, v))
}

/// `clamp_max(v, max)`, `params = [max]`: `clamp(v, -Inf, max)`.
fn clamp_max(v: f64, params: &[f64]) -> f64 {
    let max = params.first().copied().unwrap_or(f64::INFINITY);
    go_max(f64::NEG_INFINITY, go_min(max, v))
}

/// A calendar field of `v` read as Unix seconds in UTC, truncated towards zero to whole
/// seconds (as upstream's `time.Unix(int64(v), 0)`).
///
/// NaN and ±Inf give NaN (upstream converts them with Go's `int64()`, whose result is
/// platform-dependent garbage). Instants outside chrono's range (about ±262,000 years) also
/// give NaN, where Go would still return a (far-away) calendar date.
fn date_field(v: f64, field: fn(&DateTime<Utc>) -> f64) -> f64 {
    if !v.is_finite() {
        return f64::NAN;
    }
    match DateTime::from_timestamp(v as i64, 0) {
        Some(t) => field(&t),
        None => f64::NAN,
    }
}

/// Days in `month` (1-12) of the proleptic Gregorian `year`.
fn days_in_month(year: i32, month: u32) -> u32 {
    match month {
        4 | 6 | 9 | 11 => 30,
        2 => {
            if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 {
                29
            } else {
                28
            }
        }
        _ => 31,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(name: &str, v: f64) -> f64 {
        lookup(name).expect("function exists")(v, &[])
    }

    fn call_p(name: &str, v: f64, p: &[f64]) -> f64 {
        lookup(name).expect("function exists")(v, p)
    }

    /// Same value (NaN equals NaN), or within 1e-6 relative: promqltest's tolerance, which the
    /// expectations copied from the upstream test files rely on (trig_functions.test lists
    /// cosh(10) = 11013.232920103324 as sinh(10) too; the exact value is 11013.2328747034).
    fn same(a: f64, b: f64) -> bool {
        (a.is_nan() && b.is_nan()) || a == b || ((a - b).abs() / (a.abs() + b.abs())) < 1e-6
    }

    fn check(name: &str, cases: &[(f64, f64)]) {
        for &(v, want) in cases {
            let got = call(name, v);
            assert!(same(got, want), "{name}({v}) = {got}, want {want}");
        }
    }

    const INF: f64 = f64::INFINITY;
    const NAN: f64 = f64::NAN;

    #[test]
    fn lookup_knows_all_and_only_instant_functions() {
        for name in [
            "abs",
            "ceil",
            "floor",
            "exp",
            "ln",
            "log2",
            "log10",
            "sqrt",
            "sgn",
            "round",
            "clamp",
            "clamp_min",
            "clamp_max",
            "sin",
            "cos",
            "tan",
            "asin",
            "acos",
            "atan",
            "sinh",
            "cosh",
            "tanh",
            "asinh",
            "acosh",
            "atanh",
            "deg",
            "rad",
            "day_of_month",
            "day_of_week",
            "day_of_year",
            "days_in_month",
            "hour",
            "minute",
            "month",
            "year",
        ] {
            assert!(lookup(name).is_some(), "{name}");
        }
        assert!(lookup("rate").is_none());
        assert!(lookup("pi").is_none());
    }

    #[test]
    fn abs_ceil_floor_round() {
        // functions.test:1665-1721
        let input = [2.5, 2., -2.5, -2., 0., -0., INF, -INF, NAN];
        let expect = |name: &str, out: [f64; 9]| {
            for (v, want) in input.iter().zip(out) {
                let got = call(name, *v);
                assert!(same(got, want), "{name}({v}) = {got}, want {want}");
            }
        };
        expect("abs", [2.5, 2., 2.5, 2., 0., 0., INF, INF, NAN]);
        expect("ceil", [3., 2., -2., -2., 0., 0., INF, -INF, NAN]);
        expect("floor", [2., 2., -3., -2., 0., 0., INF, -INF, NAN]);
        expect("round", [3., 2., -2., -2., 0., 0., INF, -INF, NAN]);
        assert!(call("abs", -0.0).is_sign_positive());
    }

    #[test]
    fn round_to_nearest() {
        assert_eq!(call_p("round", 5.3, &[2.0]), 6.0);
        assert_eq!(call_p("round", 12.345, &[0.1]), 12.3);
        assert_eq!(call_p("round", 12.25, &[0.1]), 12.3);
        assert_eq!(call_p("round", -12.25, &[0.1]), -12.2);
        assert_eq!(call_p("round", 1234., &[100.]), 1200.);
        assert_eq!(call_p("round", 0.5, &[]), 1.0);
        assert_eq!(call_p("round", -0.5, &[]), 0.0);
    }

    #[test]
    fn clamp_family() {
        // functions.test:610-657
        let vals = [-50., 0., 100.];
        let run = |name: &str, p: &[f64], want: [f64; 3]| {
            for (v, w) in vals.iter().zip(want) {
                let got = call_p(name, *v, p);
                assert!(same(got, w), "{name}({v}, {p:?}) = {got}, want {w}");
            }
        };
        run("clamp_max", &[75.], [-50., 0., 75.]);
        run("clamp_min", &[-25.], [-25., 0., 100.]);
        run("clamp", &[-25., 75.], [-25., 0., 75.]);
        run("clamp", &[0., NAN], [NAN, NAN, NAN]);
        run("clamp", &[NAN, 0.], [NAN, NAN, NAN]);
        // clamp_max(clamp_min(x, -20), 70)
        for (v, w) in vals.iter().zip([-20., 0., 70.]) {
            assert_eq!(
                call_p("clamp_max", call_p("clamp_min", *v, &[-20.]), &[70.]),
                w
            );
        }
        // Go's Max/Min: NaN input stays NaN, infinite bounds win over NaN.
        assert!(call_p("clamp", NAN, &[0., 1.]).is_nan());
        assert_eq!(call_p("clamp_min", NAN, &[INF]), INF);
        assert_eq!(call_p("clamp_max", NAN, &[-INF]), -INF);
        assert!(call_p("clamp_min", 0.0, &[-0.0]).is_sign_positive());
    }

    #[test]
    fn sgn_values() {
        // functions.test:669-686
        check(
            "sgn",
            &[
                (-INF, -1.),
                (INF, 1.),
                (NAN, NAN),
                (-50., -1.),
                (0., 0.),
                (100., 1.),
            ],
        );
    }

    #[test]
    fn exp_ln_log_sqrt() {
        // functions.test:1949-2035
        check(
            "exp",
            &[
                (10., 22026.465794806718),
                (20., 485165195.4097903),
                (0., 1.),
                (-10., 4.5399929762484854e-05),
            ],
        );
        check(
            "ln",
            &[
                (10., std::f64::consts::LN_10),
                (20., 2.995732273553991),
                (0., -INF),
                (-10., NAN),
            ],
        );
        check(
            "sqrt",
            &[(10., 3.1622776601683795), (20., 4.47213595499958)],
        );
        check(
            "log2",
            &[
                (10., 3.3219280948873626),
                (20., 4.321928094887363),
                (0., -INF),
                (-10., NAN),
                (8., 3.),
            ],
        );
        check(
            "log10",
            &[(10., 1.), (20., 1.301029995663981), (0., -INF), (-10., NAN)],
        );
        assert!(same(call("exp", call("ln", 20.)), 20.));
    }

    #[test]
    fn trigonometry() {
        // trig_functions.test
        check(
            "sin",
            &[
                (10., -0.5440211108893699),
                (20., 0.9129452507276277),
                (NAN, NAN),
            ],
        );
        check(
            "cos",
            &[
                (10., -0.8390715290764524),
                (20., 0.40808206181339196),
                (NAN, NAN),
            ],
        );
        check(
            "tan",
            &[
                (10., 0.6483608274590867),
                (20., 2.2371609442247427),
                (NAN, NAN),
            ],
        );
        check(
            "asin",
            &[
                (10. - 10.1, -0.10016742116155944),
                (20. - 10.1, NAN),
                (NAN, NAN),
            ],
        );
        check(
            "acos",
            &[
                (10. - 10.1, 1.670963747956456),
                (20. - 10.1, NAN),
                (NAN, NAN),
            ],
        );
        check(
            "atan",
            &[
                (10., 1.4711276743037345),
                (20., 1.5208379310729538),
                (NAN, NAN),
            ],
        );
        check(
            "sinh",
            &[
                (10., 11013.232920103324),
                (20., 2.4258259770489514e+08),
                (NAN, NAN),
            ],
        );
        check(
            "cosh",
            &[
                (10., 11013.232920103324),
                (20., 2.4258259770489514e+08),
                (NAN, NAN),
            ],
        );
        check("tanh", &[(10., 0.9999999958776927), (20., 1.), (NAN, NAN)]);
        check(
            "asinh",
            &[
                (10., 2.99822295029797),
                (20., 3.6895038689889055),
                (NAN, NAN),
            ],
        );
        check(
            "acosh",
            &[
                (10., 2.993222846126381),
                (20., 3.6882538673612966),
                (NAN, NAN),
            ],
        );
        check(
            "atanh",
            &[
                (10. - 10.1, -0.10033534773107522),
                (20. - 10.1, NAN),
                (NAN, NAN),
            ],
        );
        check(
            "rad",
            &[
                (10., 0.17453292519943295),
                (20., 0.3490658503988659),
                (0., 0.),
                (-10., -0.17453292519943295),
            ],
        );
        check(
            "deg",
            &[
                (10., 572.9577951308232),
                (20., 1145.9155902616465),
                (0., 0.),
                (-10., -572.9577951308232),
            ],
        );
        check("deg", &[(NAN, NAN)]);
    }

    #[test]
    fn date_functions() {
        // functions.test:1453-1533
        check(
            "year",
            &[
                (0., 1970.),
                (1136239445., 2006.),
                (1230767999., 2008.),
                (1230768000., 2009.),
            ],
        );
        check("month", &[(0., 1.), (1136239445., 1.)]);
        check("day_of_month", &[(0., 1.), (1136239445., 2.)]);
        check(
            "day_of_year",
            &[
                (0., 1.),
                (1136239445., 2.),
                (1483191420., 366.),
                (1672493820., 365.),
            ],
        );
        check("day_of_week", &[(0., 4.), (1136239445., 1.)]);
        check("hour", &[(0., 0.), (1136239445., 22.)]);
        check("minute", &[(0., 0.), (1136239445., 4.)]);
        assert!(same(
            call("month", 1456790399.) + call("day_of_month", 1456790399.) / 100.,
            2.29
        ));
        assert!(same(
            call("month", 1456790400.) + call("day_of_month", 1456790400.) / 100.,
            3.01
        ));
        check(
            "days_in_month",
            &[
                (1454284800., 29.),
                (1485907200., 28.),
                (0., 31.),
                (951782400., 29.),
            ],
        );
        // 1900 is not a leap year, 2000 is.
        check("days_in_month", &[(-2206310400., 28.)]);
        // Fractions truncate towards zero: -0.5 s is still 1970-01-01 00:00:00.
        check("year", &[(-0.5, 1970.), (-1., 1969.)]);
        check("hour", &[(-1., 23.), (3599.999, 0.)]);
        check("day_of_week", &[(-86400., 3.)]);
        for name in [
            "year",
            "month",
            "day_of_month",
            "day_of_week",
            "day_of_year",
            "days_in_month",
            "hour",
            "minute",
        ] {
            assert!(call(name, NAN).is_nan(), "{name}");
            assert!(call(name, INF).is_nan(), "{name}");
            assert!(call(name, -INF).is_nan(), "{name}");
            assert!(call(name, 1e300).is_nan(), "{name}");
        }
    }
}
