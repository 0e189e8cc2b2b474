//! The routing tree: option inheritance, matching with `continue`, group labels and group keys
//! rendered byte-identically to Alertmanager 0.25.

use crate::amconfig::{AmConfigError, RouteConfig};
use crate::labels::{label_set_string, LabelSet};
use crate::matcher::Matchers;
use std::collections::BTreeSet;
use std::time::Duration;

/// Options a route passes to its aggregation groups.
#[derive(Debug, Clone, PartialEq)]
pub struct RouteOpts {
    pub receiver: String,
    pub group_by: BTreeSet<String>,
    pub group_by_all: bool,
    pub group_wait: Duration,
    pub group_interval: Duration,
    pub repeat_interval: Duration,
    pub mute_time_intervals: Vec<String>,
    pub active_time_intervals: Vec<String>,
}

impl Default for RouteOpts {
    /// Upstream's `DefaultRouteOpts`.
    fn default() -> Self {
        Self {
            receiver: String::new(),
            group_by: BTreeSet::new(),
            group_by_all: false,
            group_wait: Duration::from_secs(30),
            group_interval: Duration::from_secs(300),
            repeat_interval: Duration::from_secs(4 * 3600),
            mute_time_intervals: Vec::new(),
            active_time_intervals: Vec::new(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Route {
    /// Pre-order index in the tree: a stable identity within one configuration.
    pub id: usize,
    /// Upstream's `Route.Key()`: parent key, `/`, matchers (`{}` for the root).
    pub key: String,
    pub matchers: Matchers,
    pub continue_: bool,
    pub opts: RouteOpts,
    pub routes: Vec<Route>,
}

impl Route {
    /// Builds the tree from a validated `route:` section. `matchers` converts a route's legacy
    /// and new-style matchers into one sorted list.
    pub fn build(
        root: &RouteConfig,
        mut matchers: impl FnMut(&str, &RouteConfig) -> Result<Matchers, AmConfigError>,
    ) -> Result<Route, AmConfigError> {
        let mut next_id = 0;
        build_node(
            "route",
            root,
            None,
            &RouteOpts::default(),
            &mut next_id,
            &mut matchers,
        )
    }

    /// Every route an alert lands in: depth first, children left to right, a matching child
    /// without `continue` ends the sibling scan, the node itself if no child matched.
    pub fn match_labels<'a>(&'a self, labels: &LabelSet) -> Vec<&'a Route> {
        let mut out = Vec::new();
        self.match_into(labels, &mut out);
        out
    }

    fn match_into<'a>(&'a self, labels: &LabelSet, out: &mut Vec<&'a Route>) -> bool {
        if !self.matchers.matches(labels) {
            return false;
        }
        let before = out.len();
        for child in &self.routes {
            if child.match_into(labels, out) && !child.continue_ {
                break;
            }
        }
        if out.len() == before {
            out.push(self);
        }
        true
    }

    /// The labels of `labels` this route groups by.
    pub fn group_labels(&self, labels: &LabelSet) -> LabelSet {
        labels
            .iter()
            .filter(|(n, _)| self.opts.group_by_all || self.opts.group_by.contains(*n))
            .map(|(n, v)| (n.clone(), v.clone()))
            .collect()
    }

    /// Upstream's aggregation-group key: `<route key>:<group labels>`.
    pub fn group_key(&self, group_labels: &LabelSet) -> String {
        format!("{}:{}", self.key, label_set_string(group_labels))
    }

    /// All routes in pre-order.
    pub fn walk<'a>(&'a self, out: &mut Vec<&'a Route>) {
        out.push(self);
        for c in &self.routes {
            c.walk(out);
        }
    }
}

fn build_node(
    field: &str,
    cr: &RouteConfig,
    parent: Option<&Route>,
    parent_opts: &RouteOpts,
    next_id: &mut usize,
    matchers_of: &mut impl FnMut(&str, &RouteConfig) -> Result<Matchers, AmConfigError>,
) -> Result<Route, AmConfigError> {
    let mut opts = parent_opts.clone();
    if let Some(r) = cr.receiver.as_deref().filter(|r| !r.is_empty()) {
        opts.receiver = r.to_string();
    }
    if let Some(gb) = &cr.group_by {
        if gb.iter().any(|l| l == "...") {
            // `...` alone: group by all labels (the explicit list stays as inherited).
            opts.group_by_all = true;
        } else if !gb.is_empty() {
            opts.group_by = gb.iter().cloned().collect();
            opts.group_by_all = false;
        }
    }
    if let Some(d) = cr.group_wait {
        opts.group_wait = d.0;
    }
    if let Some(d) = cr.group_interval {
        opts.group_interval = d.0;
    }
    if let Some(d) = cr.repeat_interval {
        opts.repeat_interval = d.0;
    }
    // Not inherited.
    opts.mute_time_intervals = cr.mute_time_intervals.clone().unwrap_or_default();
    opts.active_time_intervals = cr.active_time_intervals.clone().unwrap_or_default();

    let matchers = matchers_of(field, cr)?;
    let key = match parent {
        None => "{}".to_string(),
        Some(p) => format!("{}/{}", p.key, matchers),
    };
    let id = *next_id;
    *next_id += 1;
    let mut node = Route {
        id,
        key,
        matchers,
        continue_: cr.continue_,
        opts,
        routes: Vec::new(),
    };
    let mut children = Vec::new();
    for (i, c) in cr.routes.iter().flatten().enumerate() {
        children.push(build_node(
            &format!("{field}.routes[{i}]"),
            c,
            Some(&node),
            &node.opts,
            next_id,
            matchers_of,
        )?);
    }
    node.routes = children;
    Ok(node)
}

#[cfg(test)]
mod tests {
    use crate::amconfig::AmConfig;
    use crate::labels::LabelSet;

    fn ls(pairs: &[(&str, &str)]) -> LabelSet {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn lab_group_keys_are_byte_identical() {
        let c = AmConfig::load(include_str!("../testdata/lab_alertmanager.yml")).unwrap();
        let alert = ls(&[
            ("alertname", "HighLatency"),
            ("team", "db"),
            ("cluster", "c2"),
            ("severity", "warning"),
        ]);
        let routes = c.route.match_labels(&alert);
        let keys: Vec<String> = routes
            .iter()
            .map(|r| r.group_key(&r.group_labels(&alert)))
            .collect();
        // Values captured from Alertmanager 0.25 webhook payloads.
        assert_eq!(
            keys,
            vec![
                r#"{}/{team="db"}:{alertname="HighLatency", cluster="c2"}"#,
                r#"{}/{team=~"db|web"}:{alertname="HighLatency"}"#,
            ]
        );
        assert_eq!(routes[0].opts.receiver, "db");
        assert_eq!(routes[1].opts.receiver, "truncated");
        let node_down = ls(&[
            ("alertname", "NodeDown"),
            ("cluster", "c1"),
            ("severity", "critical"),
        ]);
        let routes = c.route.match_labels(&node_down);
        assert_eq!(routes.len(), 1);
        assert_eq!(
            routes[0].group_key(&routes[0].group_labels(&node_down)),
            r#"{}:{alertname="NodeDown"}"#
        );
    }

    #[test]
    fn continue_inheritance_and_legacy_matchers() {
        let c = AmConfig::load(
            r#"
route:
  receiver: root
  group_by: [alertname]
  group_wait: 10s
  routes:
    - match: {team: db}
      match_re: {env: "prod|stage"}
      receiver: db
      continue: true
      routes:
        - matchers: ['severity="critical"']
          receiver: db-crit
          group_by: ['...']
          repeat_interval: 1h
    - matchers: ['team=~"db|web"']
      receiver: web
      group_by: []
    - matchers: ['team="db"']
      receiver: never
receivers: [{name: root}, {name: db}, {name: db-crit}, {name: web}, {name: never}]
"#,
        )
        .unwrap();
        let a = ls(&[
            ("alertname", "A"),
            ("team", "db"),
            ("env", "prod"),
            ("severity", "critical"),
        ]);
        let rs = c.route.match_labels(&a);
        let names: Vec<&str> = rs.iter().map(|r| r.opts.receiver.as_str()).collect();
        assert_eq!(names, vec!["db-crit", "web"]);
        // Legacy match_re keeps its anchored form in the key, as Alertmanager 0.25 renders it.
        assert_eq!(
            rs[0].key,
            r#"{}/{env=~"^(?:prod|stage)$",team="db"}/{severity="critical"}"#
        );
        assert_eq!(rs[0].opts.group_wait, std::time::Duration::from_secs(10));
        assert_eq!(
            rs[0].opts.repeat_interval,
            std::time::Duration::from_secs(3600)
        );
        assert_eq!(
            rs[0].group_key(&rs[0].group_labels(&a)),
            r#"{}/{env=~"^(?:prod|stage)$",team="db"}/{severity="critical"}:{alertname="A", env="prod", severity="critical", team="db"}"#
        );
        // An empty group_by list inherits the parent's, like upstream.
        assert_eq!(rs[1].group_labels(&a), ls(&[("alertname", "A")]));
        // No child matches: the root.
        let b = ls(&[("alertname", "B")]);
        let rs = c.route.match_labels(&b);
        assert_eq!(rs.len(), 1);
        assert_eq!(rs[0].id, 0);
        // Matching the db route but not its child: the db route itself, then continue.
        let d = ls(&[("alertname", "D"), ("team", "db"), ("env", "stage")]);
        let names: Vec<String> = c
            .route
            .match_labels(&d)
            .iter()
            .map(|r| r.opts.receiver.clone())
            .collect();
        assert_eq!(names, vec!["db", "web"]);
    }
}
