//! `for` state restoration: a group started afresh on the same data (a ruler restart, or the
//! group moved to another ruler) reads back `ALERTS_FOR_STATE` and neither re-waits the whole
//! `for` of an alert that was firing nor forgets the pending time of one that was pending.

use crate::common::{load, Store};
use std::collections::BTreeMap;
use strata_model::TenantId;
use strata_promql::Engine;
use strata_ruler::group::{EvalEnv, Group, RestoreSettings};
use strata_ruler::metrics::Metrics;
use strata_ruler::rulefmt::RuleGroup;
use strata_ruler::rules::{AlertContext, AlertState};

const MIN: i64 = 60_000;

const GROUP: &str = r#"
name: g
interval: 1m
rules:
  - alert: Down
    expr: up == 0
    for: 30m
  - alert: Quick
    expr: up == 0
    for: 5m
"#;

const SETTINGS: RestoreSettings = RestoreSettings {
    outage_tolerance_ms: 60 * MIN,
    grace_period_ms: 10 * MIN,
};

struct World {
    store: Store,
    engine: Engine,
    tenant: TenantId,
    metrics: Metrics,
    ctx: AlertContext,
    source: RuleGroup,
}

impl World {
    /// `up{job="a"}` is 0 every minute for four hours.
    fn new() -> Self {
        let store = Store::default();
        load(&store, MIN, "up{job=\"a\"} 0x240\n");
        Self {
            store,
            engine: Engine::default(),
            tenant: TenantId::new("t").unwrap(),
            metrics: Metrics::default(),
            ctx: AlertContext {
                external_labels: BTreeMap::new(),
                external_url: String::new(),
            },
            source: serde_yaml::from_str(GROUP).unwrap(),
        }
    }

    fn env(&self) -> EvalEnv<'_> {
        EvalEnv {
            engine: &self.engine,
            queryable: &self.store,
            pusher: &self.store,
            tenant: &self.tenant,
            alert_ctx: &self.ctx,
            metrics: &self.metrics,
            resend_delay_ms: MIN,
        }
    }

    /// Evaluates `g` every minute over `[from, to]`, restoring when due (as the ruler's loop
    /// does, with "now" = the evaluation time); returns the `ALERTS*` samples written.
    async fn run(&self, g: &mut Group, from: i64, to: i64) -> Vec<String> {
        let mut written = Vec::new();
        let mut ts = from;
        while ts <= to {
            self.store.take_written();
            g.eval(self.env(), ts).await;
            written.extend(
                self.store
                    .take_written()
                    .into_iter()
                    .map(|w| format!("{} {} @{}", w.labels, w.v, w.t / MIN)),
            );
            if g.restore_due() {
                g.restore_for_state(self.env(), ts, SETTINGS).await;
            }
            ts += MIN;
        }
        written
    }

    fn fresh(&self) -> Group {
        let mut g = Group::new("ns", &self.source, MIN, 0);
        g.begin_restore();
        g
    }
}

fn state(g: &Group, alert: &str) -> Option<AlertState> {
    g.alerting_rules()
        .find(|r| r.name == alert)
        .and_then(|r| r.alerts().into_iter().next().map(|a| a.state))
}

fn active_at(g: &Group, alert: &str) -> Option<i64> {
    g.alerting_rules()
        .find(|r| r.name == alert)
        .and_then(|r| r.alerts().into_iter().next().map(|a| a.active_at))
}

#[tokio::test]
async fn a_firing_alert_fires_again_right_after_the_restore() {
    let w = World::new();
    let mut first = w.fresh();
    let written = w.run(&mut first, 0, 35 * MIN).await;
    assert_eq!(state(&first, "Down"), Some(AlertState::Firing));
    // Nothing before the (empty) restore after the second evaluation, then both series.
    assert!(!written
        .iter()
        .any(|s| s.ends_with("@0") || s.ends_with("@1")));
    assert!(written
        .iter()
        .any(|s| s.starts_with("ALERTS_FOR_STATE{alertname=\"Down\"") && s.ends_with(" 0 @2")));

    // Down from 35m to 40m: a new group (another ruler) on the same data.
    let mut second = w.fresh();
    let written = w.run(&mut second, 40 * MIN, 41 * MIN).await;
    assert!(
        written.is_empty(),
        "no ALERTS before the restore: {written:?}"
    );
    assert_eq!(state(&second, "Down"), Some(AlertState::Pending));
    assert_eq!(active_at(&second, "Down"), Some(0), "activeAt came back");
    w.run(&mut second, 42 * MIN, 42 * MIN).await;
    assert_eq!(
        state(&second, "Down"),
        Some(AlertState::Firing),
        "firing at the first evaluation after the restore, not 30 minutes later"
    );
}

#[tokio::test]
async fn a_pending_alert_keeps_its_pending_time() {
    let w = World::new();
    let mut first = w.fresh();
    w.run(&mut first, 0, 20 * MIN).await;
    assert_eq!(state(&first, "Down"), Some(AlertState::Pending));

    // Down from 20m to 25m, restored at 26m: 10m of `for` were left (not under the grace
    // period), so the 6 minutes of downtime move activeAt to 6m and it fires at 36m.
    let mut second = w.fresh();
    w.run(&mut second, 25 * MIN, 26 * MIN).await;
    assert_eq!(active_at(&second, "Down"), Some(6 * MIN));
    w.run(&mut second, 27 * MIN, 35 * MIN).await;
    assert_eq!(state(&second, "Down"), Some(AlertState::Pending));
    w.run(&mut second, 36 * MIN, 36 * MIN).await;
    assert_eq!(state(&second, "Down"), Some(AlertState::Firing));
}

#[tokio::test]
async fn short_for_rules_and_old_state_are_not_restored() {
    let w = World::new();
    let mut first = w.fresh();
    w.run(&mut first, 0, 35 * MIN).await;
    assert_eq!(state(&first, "Quick"), Some(AlertState::Firing));

    // `for: 5m` is under the 10m grace period: not restored, pending from the restart.
    let mut second = w.fresh();
    w.run(&mut second, 40 * MIN, 41 * MIN).await;
    assert_eq!(active_at(&second, "Quick"), Some(40 * MIN));

    // Back after more than the outage tolerance: the old state is out of reach.
    let mut third = w.fresh();
    w.run(&mut third, 100 * MIN, 101 * MIN).await;
    assert_eq!(active_at(&third, "Down"), Some(100 * MIN));
    assert_eq!(state(&third, "Down"), Some(AlertState::Pending));
}

#[tokio::test]
async fn a_reloaded_group_keeps_its_state_without_restoring() {
    let w = World::new();
    let mut first = w.fresh();
    w.run(&mut first, 0, 35 * MIN).await;
    let mut reloaded = Group::new("ns", &w.source, MIN, 0);
    reloaded.copy_state_from(&first);
    assert!(!reloaded.restore_due());
    let written = w.run(&mut reloaded, 36 * MIN, 36 * MIN).await;
    assert!(
        written.iter().any(|s| s.starts_with("ALERTS{")),
        "a reloaded group writes ALERTS at once: {written:?}"
    );
    assert_eq!(state(&reloaded, "Down"), Some(AlertState::Firing));
}
