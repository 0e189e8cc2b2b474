//! Reads stop at the limits the querier passes down.

use crate::{open, push_round, tenant};
use strata_model::{Limits, Matcher};
use strata_storage::{LimitExceeded, QueryError, Queryable, ReadLimit, ReadLimits, SelectHints};

#[tokio::test]
async fn reads_stop_at_their_limits_without_walking_the_head() {
    let dir = tempfile::tempdir().unwrap();
    let ing = open(dir.path(), Limits::default());
    push_round(&ing, "m", 2000, 1000).await;
    let m = [Matcher::equal("__name__", "m")];
    let hints = SelectHints {
        limits: ReadLimits {
            max_series: 100,
            ..Default::default()
        },
        ..SelectHints::default()
    };
    let e = ing
        .select_chunks_hinted(&tenant(), &m, 0, 2000, &hints)
        .await
        .unwrap_err();
    assert!(
        matches!(
            e,
            QueryError::LimitExceeded(LimitExceeded {
                limit: ReadLimit::Series,
                max: 100
            })
        ),
        "{e}"
    );
    let e = ing.series(&tenant(), &m, 0, 2000, 100).await.unwrap_err();
    assert!(
        matches!(e, QueryError::LimitExceeded(l) if l.limit == ReadLimit::Series),
        "{e}"
    );
    let e = ing
        .label_values(&tenant(), "id", &m, 0, 2000, 100)
        .await
        .unwrap_err();
    assert!(
        matches!(e, QueryError::LimitExceeded(l) if l.limit == ReadLimit::LabelValues),
        "{e}"
    );
    let visited = ing.query_series_visited(&tenant());
    assert!(
        visited <= 3 * 101,
        "{visited} series visited for three reads of 2000"
    );
    // The message names the setting to raise.
    assert!(
        e.to_string()
            .contains("querier.max_label_values_per_request"),
        "{e}"
    );

    // Under the limits: complete answers.
    assert_eq!(
        ing.series(&tenant(), &m, 0, 2000, 2000)
            .await
            .unwrap()
            .len(),
        2000
    );
    let hints = SelectHints {
        limits: ReadLimits {
            max_series: 2000,
            max_samples: 2000,
            max_bytes: 0,
        },
        ..SelectHints::default()
    };
    let got = ing
        .select_chunks_hinted(&tenant(), &m, 0, 2000, &hints)
        .await
        .unwrap();
    assert_eq!(got.len(), 2000);
}
