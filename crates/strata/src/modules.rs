//! Targets as named modules with declared dependencies (the shape of Mimir's `modules.go`):
//! `--target` names modules, their dependencies start first, and `all` is only the module that
//! depends on everything runnable in one process.

use std::collections::BTreeSet;
use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Module {
    Server,
    RuntimeConfig,
    Ingester,
    Distributor,
    Querier,
    Alertmanager,
    /// The bucket client shared by the components that read or write blocks.
    Bucket,
    StoreGateway,
    Compactor,
    All,
}

/// Components of the design that this build does not contain yet.
const PLANNED: &[(&str, &str)] = &[
    ("query-frontend", "the query path"),
    ("ruler", "rule evaluation"),
    ("meta", "the Raft-replicated cluster state"),
];

impl Module {
    pub const ALL: [Module; 10] = [
        Module::Server,
        Module::RuntimeConfig,
        Module::Ingester,
        Module::Distributor,
        Module::Querier,
        Module::Alertmanager,
        Module::Bucket,
        Module::StoreGateway,
        Module::Compactor,
        Module::All,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Module::Server => "server",
            Module::RuntimeConfig => "runtime-config",
            Module::Ingester => "ingester",
            Module::Distributor => "distributor",
            Module::Querier => "querier",
            Module::Alertmanager => "alertmanager",
            Module::Bucket => "bucket",
            Module::StoreGateway => "store-gateway",
            Module::Compactor => "compactor",
            Module::All => "all",
        }
    }

    pub fn deps(self) -> &'static [Module] {
        match self {
            Module::Server | Module::RuntimeConfig | Module::Bucket => &[],
            Module::Ingester => &[Module::Server, Module::RuntimeConfig, Module::Bucket],
            Module::StoreGateway => &[Module::Server, Module::Bucket],
            Module::Compactor => &[Module::Server, Module::RuntimeConfig, Module::Bucket],
            // In one process the distributor pushes to, and the querier reads from, the local
            // ingester through the storage traits; across processes they will use the ring.
            Module::Distributor => &[Module::Server, Module::RuntimeConfig, Module::Ingester],
            Module::Querier => &[Module::Server, Module::Ingester, Module::StoreGateway],
            // The bucket holds a copy of its state.
            Module::Alertmanager => &[Module::Server, Module::Bucket],
            Module::All => &[
                Module::Distributor,
                Module::Querier,
                Module::Ingester,
                Module::StoreGateway,
                Module::Compactor,
                Module::Alertmanager,
            ],
        }
    }

    /// Whether the module can be a `--target` of its own in this build.
    fn standalone(self) -> Result<(), String> {
        match self {
            // The alertmanager and the compactor need only the bucket.
            Module::All | Module::Alertmanager | Module::Compactor => Ok(()),
            Module::Distributor | Module::Querier | Module::Ingester | Module::StoreGateway => Err(format!(
                "target {:?} cannot run as a separate process yet: components reach each other in-process only until the ingester ring and gRPC clients exist; run --target=all",
                self.name()
            )),
            Module::Server | Module::RuntimeConfig | Module::Bucket => Err(format!(
                "{:?} is an internal module, not a target",
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
        } else if let Some((_, what)) = PLANNED.iter().find(|(n, _)| *n == name) {
            return Err(format!(
                "target {name:?} is part of the design but not built yet (it arrives with {what}); available: all, alertmanager, compactor"
            ));
        } else {
            return Err(format!(
                "unknown target {name:?}; valid targets: all, alertmanager, compactor, distributor, ingester, querier, store-gateway (planned: {})",
                PLANNED.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", ")
            ));
        }
    }
    if out.is_empty() {
        return Err("no target given".into());
    }
    Ok(out)
}

/// Every module the targets need, dependencies first.
pub fn resolve(targets: &[Module]) -> Vec<Module> {
    fn visit(m: Module, seen: &mut BTreeSet<Module>, order: &mut Vec<Module>) {
        if seen.insert(m) {
            for d in m.deps() {
                visit(*d, seen, order);
            }
            order.push(m);
        }
    }
    let mut seen = BTreeSet::new();
    let mut order = Vec::new();
    for t in targets {
        visit(*t, &mut seen, &mut order);
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
        assert!(pos(Module::Bucket) < pos(Module::Ingester));
        assert_eq!(*order.last().unwrap(), Module::All);
        assert_eq!(order.len(), Module::ALL.len());
    }

    #[test]
    fn target_errors_are_clear() {
        assert_eq!(parse_targets("all").unwrap(), vec![Module::All]);
        assert_eq!(
            parse_targets("alertmanager").unwrap(),
            vec![Module::Alertmanager]
        );
        assert_eq!(parse_targets("compactor").unwrap(), vec![Module::Compactor]);
        let e = parse_targets("ruler").unwrap_err();
        assert!(e.contains("not built yet"), "{e}");
        let e = parse_targets("store-gateway").unwrap_err();
        assert!(e.contains("--target=all"), "{e}");
        let e = parse_targets("frobnicator").unwrap_err();
        assert!(e.contains("unknown target"), "{e}");
        let e = parse_targets("distributor").unwrap_err();
        assert!(e.contains("--target=all"), "{e}");
        assert!(parse_targets("").is_err());
    }
}
