//! Where a range query is cut: its evaluation grid (`start + k·step`, up to `end`) divided at
//! multiples of the split interval, every grid point in exactly one piece. Each piece is a
//! range query of its own whose grid is a run of the original's, so the pieces' answers
//! together are the original answer (PromQL evaluates every step on its own).

/// A range of a query's grid: evaluation times `start, start + step, …, end`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Piece {
    pub start: i64,
    pub end: i64,
}

/// Moves `start` and `end` down to multiples of `step` (Mimir's `align_queries_with_step`).
pub fn align(start: i64, end: i64, step: i64) -> (i64, i64) {
    (start - start.rem_euclid(step), end - end.rem_euclid(step))
}

/// The pieces of the grid `start..=end` by `step`, cut at multiples of `interval` (0: one
/// piece). `step` and `interval` must be positive for a cut; `end >= start`.
pub fn split(start: i64, end: i64, step: i64, interval: i64) -> Vec<Piece> {
    if interval <= 0 || step <= 0 {
        return vec![Piece { start, end }];
    }
    // The last grid point: `end` itself need not be on the grid.
    let last = start + (end - start) / step * step;
    let mut out = Vec::new();
    let mut s = start;
    while s <= last {
        let boundary = (s.div_euclid(interval) + 1).saturating_mul(interval);
        // The last grid point before the boundary.
        let e = (s + (boundary - 1 - s) / step * step).min(last);
        out.push(Piece { start: s, end: e });
        match e.checked_add(step) {
            Some(next) => s = next,
            None => break,
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 86_400_000;

    fn grid(start: i64, end: i64, step: i64) -> Vec<i64> {
        (0..)
            .map(|k| start + k * step)
            .take_while(|&t| t <= end)
            .collect()
    }

    #[test]
    fn pieces_cover_the_grid_exactly_once_and_stay_within_a_day() {
        for (start, end, step) in [
            (0, 3 * DAY, 60_000),
            (DAY / 3, 2 * DAY + 17, 7_000),
            (5, DAY + 5, DAY),
            (-DAY - 1, DAY, 3_600_000),
            (10, 10, 15_000),
            (DAY - 15_000, DAY + 15_000, 15_000),
        ] {
            let pieces = split(start, end, step, DAY);
            let got: Vec<i64> = pieces
                .iter()
                .flat_map(|p| grid(p.start, p.end, step))
                .collect();
            assert_eq!(got, grid(start, end, step), "{start} {end} {step}");
            for p in &pieces {
                assert_eq!(p.start.div_euclid(DAY), p.end.div_euclid(DAY), "{p:?}");
                assert_eq!((p.start - start) % step, 0);
            }
        }
        assert_eq!(split(0, DAY * 3, 60_000, DAY).len(), 4);
        assert_eq!(
            split(0, DAY * 3, 60_000, 0),
            vec![Piece {
                start: 0,
                end: DAY * 3
            }]
        );
    }

    #[test]
    fn alignment_moves_down_to_the_step() {
        assert_eq!(align(61_000, 179_999, 60_000), (60_000, 120_000));
        assert_eq!(align(-1, 0, 1000), (-1000, 0));
    }
}
