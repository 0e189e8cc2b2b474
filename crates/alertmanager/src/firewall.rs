//! The receivers firewall (`alertmanager.receivers_firewall`): where notifications of tenants'
//! own configurations may connect, like Mimir's `-alertmanager.receivers-firewall-*` with allow
//! lists added. Off by default; the operator's configuration is never filtered.
//!
//! The check is made on the address actually connected to: host names are resolved by
//! [`FirewallResolver`] (reqwest's resolver for tenant notifications) and only permitted
//! addresses are handed to the connector, so a name that resolves to an internal address (or
//! changes its answer between a check and the connection) gets nowhere. URLs with a literal IP
//! and redirect targets are checked too, and tenant requests ignore the environment's proxies
//! (whose address would be the one checked).

use crate::error::AlertmanagerError;
use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

/// `alertmanager.receivers_firewall`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FirewallConfig {
    /// Refuse loopback, private (RFC 1918, RFC 4193), link-local, shared (RFC 6598),
    /// unspecified, broadcast and multicast addresses, unless allowed explicitly.
    pub block_private_addresses: bool,
    /// Networks (CIDR) never connected to.
    pub block_cidr_networks: Vec<String>,
    /// Host names never connected to: `name` or `*.domain` (any subdomain).
    pub block_hosts: Vec<String>,
    /// When this or `allow_hosts` is set, only these networks (or hosts) are connected to.
    /// Also exceptions to `block_private_addresses`.
    pub allow_cidr_networks: Vec<String>,
    /// Host names allowed: `name` or `*.domain`. Also exceptions to `block_private_addresses`.
    pub allow_hosts: Vec<String>,
}

impl FirewallConfig {
    /// Whether anything is filtered.
    pub fn enabled(&self) -> bool {
        self.block_private_addresses
            || !self.block_cidr_networks.is_empty()
            || !self.block_hosts.is_empty()
            || !self.allow_cidr_networks.is_empty()
            || !self.allow_hosts.is_empty()
    }

    pub fn validate(&self) -> Result<(), AlertmanagerError> {
        Firewall::new(self).map(|_| ())
    }
}

/// A host name pattern: exact, or `*.domain` for every subdomain of `domain`.
#[derive(Debug, Clone, PartialEq, Eq)]
enum HostPattern {
    Exact(String),
    Suffix(String),
}

impl HostPattern {
    fn parse(s: &str) -> Option<Self> {
        let s = s.trim().trim_end_matches('.').to_ascii_lowercase();
        let valid = |h: &str| {
            !h.is_empty()
                && h.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | ':'))
        };
        match s.strip_prefix("*.") {
            Some(domain) if valid(domain) => Some(Self::Suffix(format!(".{domain}"))),
            None if valid(&s) => Some(Self::Exact(s)),
            _ => None,
        }
    }

    fn matches(&self, host: &str) -> bool {
        match self {
            Self::Exact(h) => h == host,
            Self::Suffix(d) => host.ends_with(d.as_str()),
        }
    }
}

/// Why a destination was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{host}{} is refused by the receivers firewall (alertmanager.receivers_firewall): {reason}", .ip.map(|ip| format!(" ({ip})")).unwrap_or_default())]
pub struct Blocked {
    pub host: String,
    pub ip: Option<IpAddr>,
    pub reason: &'static str,
}

/// The compiled firewall.
#[derive(Debug, Clone)]
pub struct Firewall {
    block_private: bool,
    block_nets: Vec<IpNet>,
    block_hosts: Vec<HostPattern>,
    allow_nets: Vec<IpNet>,
    allow_hosts: Vec<HostPattern>,
}

fn nets(field: &'static str, list: &[String]) -> Result<Vec<IpNet>, AlertmanagerError> {
    list.iter()
        .map(|s| {
            s.trim()
                .parse::<IpNet>()
                .map_err(|e| AlertmanagerError::Config {
                    field,
                    reason: format!("{s:?} is not a CIDR network (e.g. 10.0.0.0/8, fd00::/8): {e}"),
                })
        })
        .collect()
}

fn hosts(field: &'static str, list: &[String]) -> Result<Vec<HostPattern>, AlertmanagerError> {
    list.iter()
        .map(|s| {
            HostPattern::parse(s).ok_or_else(|| AlertmanagerError::Config {
                field,
                reason: format!("{s:?} is not a host name or *.domain pattern"),
            })
        })
        .collect()
}

/// Loopback, private, link-local, shared, unspecified, broadcast or multicast.
pub fn is_private(ip: IpAddr) -> bool {
    match ip.to_canonical() {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            v4.is_private()
                || v4.is_loopback()
                || v4.is_link_local()
                || v4.is_broadcast()
                || v4.is_multicast()
                || a == 0 // "this network", 0.0.0.0/8
                || (a == 100 && (b & 0xc0) == 64) // shared address space 100.64.0.0/10
        }
        IpAddr::V6(v6) => {
            let seg0 = v6.segments()[0];
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (seg0 & 0xfe00) == 0xfc00 // unique local fc00::/7
                || (seg0 & 0xffc0) == 0xfe80 // link-local fe80::/10
                || (seg0 & 0xffc0) == 0xfec0 // site-local fec0::/10 (deprecated)
                || v6 == Ipv6Addr::UNSPECIFIED
        }
    }
}

impl Firewall {
    pub fn new(cfg: &FirewallConfig) -> Result<Self, AlertmanagerError> {
        Ok(Self {
            block_private: cfg.block_private_addresses,
            block_nets: nets(
                "alertmanager.receivers_firewall.block_cidr_networks",
                &cfg.block_cidr_networks,
            )?,
            block_hosts: hosts(
                "alertmanager.receivers_firewall.block_hosts",
                &cfg.block_hosts,
            )?,
            allow_nets: nets(
                "alertmanager.receivers_firewall.allow_cidr_networks",
                &cfg.allow_cidr_networks,
            )?,
            allow_hosts: hosts(
                "alertmanager.receivers_firewall.allow_hosts",
                &cfg.allow_hosts,
            )?,
        })
    }

    fn blocked(host: &str, ip: Option<IpAddr>, reason: &'static str) -> Blocked {
        Blocked {
            host: host.to_string(),
            ip,
            reason,
        }
    }

    /// The checks that need no address: a blocked host name is refused before resolving it.
    pub fn check_name(&self, host: &str) -> Result<(), Blocked> {
        let host = normalize(host);
        if self.block_hosts.iter().any(|p| p.matches(&host)) {
            return Err(Self::blocked(&host, None, "the host is in block_hosts"));
        }
        Ok(())
    }

    /// Whether `host`, resolved to `ip`, may be connected to. Blocks win over allows; an
    /// allow entry lifts `block_private_addresses`; with allow lists, nothing else passes.
    pub fn check(&self, host: &str, ip: IpAddr) -> Result<(), Blocked> {
        self.check_name(host)?;
        let host = normalize(host);
        let ip = ip.to_canonical();
        if self.block_nets.iter().any(|n| n.contains(&ip)) {
            return Err(Self::blocked(
                &host,
                Some(ip),
                "the address is in block_cidr_networks",
            ));
        }
        let allowed = self.allow_hosts.iter().any(|p| p.matches(&host))
            || self.allow_nets.iter().any(|n| n.contains(&ip));
        if self.block_private && is_private(ip) && !allowed {
            return Err(Self::blocked(
                &host,
                Some(ip),
                "private, loopback and link-local addresses are blocked (block_private_addresses)",
            ));
        }
        let allow_lists = !self.allow_hosts.is_empty() || !self.allow_nets.is_empty();
        if allow_lists && !allowed {
            return Err(Self::blocked(
                &host,
                Some(ip),
                "neither the host nor the address is in allow_hosts or allow_cidr_networks",
            ));
        }
        Ok(())
    }

    /// Checks what can be checked of a URL before connecting: a literal IP host (which no
    /// resolver sees) or a blocked host name.
    pub fn check_url(&self, url: &reqwest::Url) -> Result<(), Blocked> {
        let Some(host) = url.host_str() else {
            return Ok(());
        };
        // IPv6 hosts come bracketed.
        match host
            .trim_matches(|c| c == '[' || c == ']')
            .parse::<IpAddr>()
        {
            Ok(ip) => self.check(host, ip),
            Err(_) => self.check_name(host),
        }
    }

    /// Resolves `host:port` and keeps the permitted addresses; none permitted is an error
    /// naming the first refusal.
    pub async fn resolve(&self, host: &str, port: u16) -> std::io::Result<Vec<SocketAddr>> {
        let refused = |b: Blocked| std::io::Error::new(std::io::ErrorKind::PermissionDenied, b);
        if let Ok(ip) = host
            .trim_matches(|c| c == '[' || c == ']')
            .parse::<IpAddr>()
        {
            self.check(host, ip).map_err(refused)?;
            return Ok(vec![SocketAddr::new(ip, port)]);
        }
        self.check_name(host).map_err(refused)?;
        let mut first = None;
        let mut ok = Vec::new();
        for addr in tokio::net::lookup_host((host, port)).await? {
            match self.check(host, addr.ip()) {
                Ok(()) => ok.push(addr),
                Err(b) => {
                    first.get_or_insert(b);
                }
            }
        }
        match (ok.is_empty(), first) {
            (true, Some(b)) => Err(refused(b)),
            (true, None) => Err(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!("{host} has no address"),
            )),
            (false, _) => Ok(ok),
        }
    }
}

fn normalize(host: &str) -> String {
    host.trim_end_matches('.').to_ascii_lowercase()
}

/// The firewall in a refusal found anywhere in an error's chain (reqwest wraps what the
/// resolver or the redirect policy returned).
pub fn blocked_in(e: &(dyn std::error::Error + 'static)) -> Option<Blocked> {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if let Some(b) = err.downcast_ref::<Blocked>() {
            return Some(b.clone());
        }
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            if let Some(b) = io.get_ref().and_then(|i| i.downcast_ref::<Blocked>()) {
                return Some(b.clone());
            }
        }
        cur = err.source();
    }
    None
}

/// reqwest's resolver for tenant notifications: only permitted addresses reach the connector.
#[derive(Debug, Clone)]
pub struct FirewallResolver(pub Arc<Firewall>);

impl reqwest::dns::Resolve for FirewallResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let fw = self.0.clone();
        Box::pin(async move {
            let addrs = fw.resolve(name.as_str(), 0).await.map_err(|e| {
                // The refusal itself, not the I/O wrapper, so that it is found in the chain.
                match e.get_ref().and_then(|i| i.downcast_ref::<Blocked>()) {
                    Some(b) => Box::new(b.clone()) as Box<dyn std::error::Error + Send + Sync>,
                    None => Box::new(e),
                }
            })?;
            Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fw(yaml: &str) -> Firewall {
        let cfg: FirewallConfig = serde_yaml::from_str(yaml).unwrap();
        cfg.validate().unwrap();
        Firewall::new(&cfg).unwrap()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn private_addresses() {
        let f = fw("block_private_addresses: true");
        for a in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
        ] {
            let e = f.check("h", ip(a)).unwrap_err();
            assert!(
                e.to_string().contains("block_private_addresses"),
                "{a}: {e}"
            );
        }
        for a in ["8.8.8.8", "2001:4860:4860::8888", "172.32.0.1"] {
            f.check("h", ip(a)).unwrap();
        }
        // Off by default.
        assert!(!FirewallConfig::default().enabled());
        fw("{}").check("h", ip("127.0.0.1")).unwrap();
    }

    #[test]
    fn lists_and_precedence() {
        let f = fw("block_private_addresses: true\nallow_cidr_networks: ['10.0.0.0/24']\nallow_hosts: ['*.hooks.example', 'relay.internal']\nblock_hosts: ['bad.hooks.example']\nblock_cidr_networks: ['10.0.0.128/25']\n");
        // Allow lists: only listed destinations, and they lift the private block.
        f.check("x", ip("10.0.0.5")).unwrap();
        f.check("relay.internal", ip("192.168.3.3")).unwrap();
        f.check("a.hooks.example", ip("203.0.113.9")).unwrap();
        assert!(f.check("hooks.example", ip("203.0.113.9")).is_err());
        assert!(f.check("other.example", ip("203.0.113.9")).is_err());
        // Blocks win.
        assert!(f.check("x", ip("10.0.0.200")).is_err());
        let e = f
            .check("BAD.hooks.example.", ip("203.0.113.9"))
            .unwrap_err();
        assert!(e.to_string().contains("block_hosts"), "{e}");
        assert!(f.check_name("bad.hooks.example").is_err());
    }

    #[test]
    fn validation_names_the_field() {
        for (yaml, field) in [
            (
                "block_cidr_networks: ['10.0.0.0/33']",
                "block_cidr_networks",
            ),
            ("allow_cidr_networks: [nope]", "allow_cidr_networks"),
            ("block_hosts: ['a b']", "block_hosts"),
            ("allow_hosts: ['*.']", "allow_hosts"),
        ] {
            let cfg: FirewallConfig = serde_yaml::from_str(yaml).unwrap();
            let e = cfg.validate().unwrap_err().to_string();
            assert!(
                e.contains(&format!("alertmanager.receivers_firewall.{field}")),
                "{yaml}: {e}"
            );
        }
        assert!(serde_yaml::from_str::<FirewallConfig>("block_privat_addresses: true").is_err());
    }

    #[tokio::test]
    async fn resolution_keeps_only_permitted_addresses() {
        let f = fw("block_private_addresses: true");
        let e = f.resolve("localhost", 80).await.unwrap_err();
        let b = blocked_in(&e).expect("a firewall refusal");
        assert!(b.ip.is_some_and(|ip| ip.is_loopback()), "{b}");
        let e = f.resolve("127.0.0.1", 80).await.unwrap_err();
        assert!(blocked_in(&e).is_some(), "{e}");
        let open = fw("{}");
        assert!(!open.resolve("127.0.0.1", 80).await.unwrap().is_empty());
        let url = reqwest::Url::parse("http://[::1]:9/x").unwrap();
        assert!(f.check_url(&url).is_err());
        let url = reqwest::Url::parse("http://169.254.169.254/latest").unwrap();
        assert!(f.check_url(&url).is_err());
    }
}
