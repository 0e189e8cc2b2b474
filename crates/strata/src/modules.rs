//! Targets as named modules with declared dependencies (the shape of Mimir's `modules.go`):
//! `--target` names modules, their dependencies start first, and `all` is only the module that
//! depends on everything runnable in one process.

use std::collections::BTreeSet;
use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Module {
    Server,
    RuntimeConfig,
    /// A voter of the Raft-replicated cluster KV.
    Meta,
    /// The cluster KV as this process reaches it: the local voter, or a client of the voters.
    Kv,
    /// A live view of the ingester ring.
    IngesterRing,
    Ingester,
    Distributor,
    Querier,
    /// Splits and caches range queries in front of the querier.
    QueryFrontend,
    Alertmanager,
    /// The bucket client shared by the components that read or write blocks.
    Bucket,
    StoreGateway,
    Compactor,
    /// Recording and alerting rules.
    Ruler,
    All,
}

/// Targets that run as a process of their own.
const TARGETS: &str =
    "all, distributor, ingester, querier, query-frontend, store-gateway, compactor, alertmanager, ruler, meta";

impl Module {
    pub const ALL: [Module; 15] = [
        Module::Server,
        Module::RuntimeConfig,
        Module::Meta,
        Module::Kv,
        Module::IngesterRing,
        Module::Ingester,
        Module::Distributor,
        Module::Querier,
        Module::QueryFrontend,
        Module::Alertmanager,
        Module::Bucket,
        Module::StoreGateway,
        Module::Compactor,
        Module::Ruler,
        Module::All,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Module::Server => "server",
            Module::RuntimeConfig => "runtime-config",
            Module::Meta => "meta",
            Module::Kv => "kv",
            Module::IngesterRing => "ingester-ring",
            Module::Ingester => "ingester",
            Module::Distributor => "distributor",
            Module::Querier => "querier",
            Module::QueryFrontend => "query-frontend",
            Module::Alertmanager => "alertmanager",
            Module::Bucket => "bucket",
            Module::StoreGateway => "store-gateway",
            Module::Compactor => "compactor",
            Module::Ruler => "ruler",
            Module::All => "all",
        }
    }

    pub fn deps(self) -> &'static [Module] {
        match self {
            Module::Server | Module::RuntimeConfig | Module::Bucket => &[],
            Module::Meta => &[Module::Server],
            // The local voter when this process runs `meta` (initialized first, see
            // `resolve`), else a client of the voters.
            Module::Kv => &[Module::Server],
            Module::IngesterRing => &[Module::Kv],
            Module::Ingester => &[
                Module::Server,
                Module::RuntimeConfig,
                Module::Bucket,
                Module::Kv,
            ],
            Module::StoreGateway => &[Module::Server, Module::Bucket, Module::Kv],
            Module::Compactor => &[Module::Server, Module::RuntimeConfig, Module::Bucket],
            // With the ingester in the same process (`all`), the distributor pushes to it and
            // the querier reads it directly; otherwise both go through the ingester ring.
            Module::Distributor => &[
                Module::Server,
                Module::RuntimeConfig,
                Module::Kv,
                Module::IngesterRing,
            ],
            // The querier reads the bucket index to plan which blocks a query needs.
            Module::Querier => &[
                Module::Server,
                Module::Bucket,
                Module::Kv,
                Module::IngesterRing,
            ],
            // In `all` it sits in front of the process's querier (after it); alone it calls a
            // querier over HTTP.
            Module::QueryFrontend => &[Module::Server],
            // The bucket holds a copy of its state; with its ring enabled it also needs the KV
            // (`resolve_with`).
            Module::Alertmanager => &[Module::Server, Module::Bucket],
            // Rules query ingesters and store-gateways and write through a distributor of its
            // own (in `all`, the process's querier view and distributor), so it comes after
            // them; after the Alertmanager, which receives its alerts in `all`.
            Module::Ruler => &[
                Module::Server,
                Module::RuntimeConfig,
                Module::Bucket,
                Module::Kv,
                Module::IngesterRing,
            ],
            // Ingester and store-gateway before the distributor and querier, which use them
            // in-process when present.
            Module::All => &[
                Module::Meta,
                Module::Ingester,
                Module::StoreGateway,
                Module::Distributor,
                Module::Querier,
                Module::QueryFrontend,
                Module::Compactor,
                Module::Alertmanager,
                Module::Ruler,
            ],
        }
    }

    /// Whether the module can be a `--target` of its own.
    fn standalone(self) -> Result<(), String> {
        match self {
            Module::All
            | Module::Meta
            | Module::Ingester
            | Module::Distributor
            | Module::Querier
            | Module::QueryFrontend
            | Module::StoreGateway
            | Module::Alertmanager
            | Module::Ruler
            | Module::Compactor => Ok(()),
            Module::Server
            | Module::RuntimeConfig
            | Module::Bucket
            | Module::Kv
            | Module::IngesterRing => Err(format!(
                "{:?} is an internal module, not a target; targets: {TARGETS}",
                self.name()
            )),
        }
    }
}

impl fmt::Display for Module {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Parses a comma-separated `--target` into modules, with errors that say what exists.
pub fn parse_targets(s: &str) -> Result<Vec<Module>, String> {
    let mut out = Vec::new();
    for name in s.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        if let Some(m) = Module::ALL.iter().find(|m| m.name() == name) {
            m.standalone()?;
            out.push(*m);
        } else {
            return Err(format!("unknown target {name:?}; valid targets: {TARGETS}"));
        }
    }
    if out.is_empty() {
        return Err("no target given".into());
    }
    // The local voter must exist before the KV module picks it; a querier named with the
    // query-frontend must be built first, so that the frontend goes in front of it.
    out.sort_by_key(|m| match m {
        Module::Meta => 0,
        Module::Querier => 1,
        _ => 2,
    });
    Ok(out)
}

/// Every module the targets need, dependencies first, with the default settings.
#[cfg(test)]
pub fn resolve(targets: &[Module]) -> Vec<Module> {
    resolve_with(targets, false)
}

/// [`resolve`], with the dependencies that only some settings add: with
/// `alertmanager_ring` (`alertmanager.ring.enabled`) the Alertmanager keeps its ring in the
/// cluster KV.
pub fn resolve_with(targets: &[Module], alertmanager_ring: bool) -> Vec<Module> {
    fn visit(m: Module, ring: bool, seen: &mut BTreeSet<Module>, order: &mut Vec<Module>) {
        if seen.insert(m) {
            let extra: &[Module] = match m {
                Module::Alertmanager if ring => &[Module::Kv],
                _ => &[],
            };
            for d in m.deps().iter().chain(extra) {
                visit(*d, ring, seen, order);
            }
            order.push(m);
        }
    }
    let mut seen = BTreeSet::new();
    let mut order = Vec::new();
    for t in targets {
        visit(*t, alertmanager_ring, &mut seen, &mut order);
    }
    order
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_pulls_in_everything_in_dependency_order() {
        let order = resolve(&[Module::All]);
        let pos = |m| order.iter().position(|x| *x == m).unwrap();
        assert!(pos(Module::Server) < pos(Module::Ingester));
        assert!(pos(Module::Ingester) < pos(Module::Distributor));
        assert!(pos(Module::Ingester) < pos(Module::Querier));
        assert!(pos(Module::StoreGateway) < pos(Module::Querier));
        assert!(pos(Module::Kv) < pos(Module::IngesterRing));
        assert!(pos(Module::Bucket) < pos(Module::Ingester));
        // The ruler uses the process's querier view, distributor and Alertmanager.
        assert!(pos(Module::Querier) < pos(Module::Ruler));
        assert!(pos(Module::Distributor) < pos(Module::Ruler));
        assert!(pos(Module::Alertmanager) < pos(Module::Ruler));
        assert_eq!(*order.last().unwrap(), Module::All);
        assert_eq!(order.len(), Module::ALL.len());
    }

    #[test]
    fn target_errors_are_clear() {
        assert_eq!(parse_targets("all").unwrap(), vec![Module::All]);
        for t in [
            "alertmanager",
            "compactor",
            "distributor",
            "ingester",
            "querier",
            "query-frontend",
            "store-gateway",
            "ruler",
            "meta",
        ] {
            assert_eq!(parse_targets(t).unwrap().len(), 1, "{t}");
        }
        let e = parse_targets("kv").unwrap_err();
        assert!(e.contains("internal module"), "{e}");
        let e = parse_targets("frobnicator").unwrap_err();
        assert!(e.contains("unknown target"), "{e}");
        assert!(parse_targets("").is_err());
    }

    #[test]
    fn a_querier_named_with_the_query_frontend_comes_first() {
        let t = parse_targets("query-frontend,querier").unwrap();
        let order = resolve(&t);
        let pos = |m| order.iter().position(|x| *x == m).unwrap();
        assert!(
            pos(Module::Querier) < pos(Module::QueryFrontend),
            "{order:?}"
        );
        let order = resolve(&[Module::All]);
        let pos = |m| order.iter().position(|x| *x == m).unwrap();
        assert!(
            pos(Module::Querier) < pos(Module::QueryFrontend),
            "{order:?}"
        );
    }

    #[test]
    fn the_alertmanager_ring_needs_the_kv() {
        let alone = resolve(&[Module::Alertmanager]);
        assert!(!alone.contains(&Module::Kv), "{alone:?}");
        let ringed = resolve_with(&[Module::Alertmanager], true);
        let pos = |m| ringed.iter().position(|x| *x == m).unwrap();
        assert!(pos(Module::Kv) < pos(Module::Alertmanager), "{ringed:?}");
        let t = parse_targets("alertmanager,meta").unwrap();
        let order = resolve_with(&t, true);
        let pos = |m| order.iter().position(|x| *x == m).unwrap();
        assert!(pos(Module::Meta) < pos(Module::Kv));
        assert!(pos(Module::Kv) < pos(Module::Alertmanager));
    }

    #[test]
    fn a_voter_comes_before_the_kv_it_serves() {
        let t = parse_targets("ingester,meta").unwrap();
        assert_eq!(t[0], Module::Meta);
        let order = resolve(&t);
        let pos = |m| order.iter().position(|x| *x == m).unwrap();
        assert!(pos(Module::Meta) < pos(Module::Kv));
        let order = resolve(&[Module::All]);
        let pos = |m| order.iter().position(|x| *x == m).unwrap();
        assert!(pos(Module::Meta) < pos(Module::Kv));
        assert!(pos(Module::Ingester) < pos(Module::Distributor));
        assert!(pos(Module::StoreGateway) < pos(Module::Querier));
    }
}
