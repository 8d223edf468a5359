//! The SSRF guard: which addresses an HTTP transport may connect to.
//!
//! Webhook URLs come from configuration that is often edited by people who should not be able
//! to reach the machine's own network through it: a URL pointing at `127.0.0.1`, at the
//! office LAN or at a cloud metadata service would turn the sender into a proxy into places
//! the attacker cannot reach directly (server-side request forgery). The guard refuses such
//! addresses unless the endpoint opts in with an [`AddressPolicy`].
//!
//! # What is checked
//!
//! - [`check_ip`] judges one address. Non-global kinds are refused: unspecified, loopback, private
//!   (RFC 1918), link-local, shared address space (CGNAT), IETF protocol assignments, documentation,
//!   benchmarking, 6to4 relay anycast, reserved, broadcast, multicast, unique local, site-local,
//!   discard-only, the dummy prefix, SRv6 SIDs, Teredo and ORCHID. IPv6 forms that carry an IPv4
//!   address (IPv4-mapped, IPv4-compatible, IPv4-translated, NAT64 `64:ff9b::/96` and
//!   `64:ff9b:1::/48`, 6to4 `2002::/16`) are judged by the embedded IPv4 address as well, so
//!   `::ffff:127.0.0.1` and `64:ff9b::7f00:1` are loopback. Not seen through: the IPv4 addresses
//!   inside a Teredo address (refused unless `allow_cidrs` lists it), and a DNS64 network-specific
//!   prefix (a host on an IPv6-only network whose resolver maps IPv4 answers into a prefix of its
//!   operator's own: nothing in the address says so; refuse that prefix in the network, or give the
//!   host a resolver that does not synthesize).
//! - [`check_url`] judges an endpoint URL before anything is sent: only `http` and `https`
//!   (only `https` with `https_only`), no credentials in the URL, and an IP-literal host is
//!   checked with [`check_ip`]. The `url` crate already turns the odd IPv4 spellings
//!   (`http://2130706433/`, `http://0x7f.1/`, `http://127.1/`) into `127.0.0.1`.
//! - [`GuardedResolver`] (the ureq part, for applications that make requests of their own
//!   with ureq) checks every address a host name resolves to, at connection time.
//!
//! # Why at resolution time: DNS rebinding
//!
//! Checking a host name once and connecting later is not enough: the name's owner can answer
//! the check with a public address and the connection with `127.0.0.1`. The resolver
//! therefore vets the very addresses the connection then uses, and refuses the whole name if
//! any one of them is refused (a name that also points inward is not trusted for the rest).
//! It runs again for each request and each redirect hop.
//!
//! # IP literals
//!
//! ureq 3 hands IP-literal hosts to the resolver like any name (its default resolver parses
//! them without a lookup), so the resolver catches `http://127.0.0.1/` too. Transports still
//! call [`check_url`] first: it fails before any work is queued, with a clearer error, and a
//! resolver in another HTTP client may not be consulted for literals at all. Pass the
//! checked [`url::Url`]'s serialization (`url.as_str()`) to the client so both see the same,
//! normalized host.
//!
//! deskhook's own HTTP transports (blocking and async) vet the addresses of each new
//! connection the same way, with [`check_ip`], before they connect. All reuse a vetted
//! answer for [`VETTED_ANSWER_REUSE`] (only addresses that
//! passed are kept, so reuse lets no rebinding through).
//!
//! # Opting in
//!
//! An endpoint reaches only global addresses unless its [`AddressPolicy`] says otherwise:
//! `allow_private = true` lets in loopback, private, link-local, CGNAT and unique local
//! addresses (see [`AddressPolicy::allow_private`](AddressPolicy#structfield.allow_private)),
//! and `allow_cidrs = ["10.20.0.0/16"]` the networks listed. A refusal names the address and
//! the setting that would let it through:
//!
//! ```text
//! refusing to connect to 127.0.0.1 (loopback): set allow_private = true or list it in allow_cidrs for this endpoint
//! ```
//!
//! When the refused address came from looking a name up, deskhook's transports name the name
//! and the kind of address, not the address: attempts and dead letters are read by whoever
//! sees an endpoint's deliveries, in a helpdesk the tenant who typed the URL, and quoting the
//! address would answer their lookups of the internal network's names. The address is in a
//! `debug` record under the `deskhook` target.
//!
//! ```text
//! refusing to connect to db.internal: it resolves to a refused address (private (RFC 1918)): set allow_private = true or list its addresses in allow_cidrs for this endpoint
//! ```
//!
//! # Cloud metadata endpoints
//!
//! Addresses of cloud instance metadata and credential services (`169.254.169.254`,
//! `169.254.170.2`, `169.254.170.23`, `100.100.100.200`, `169.254.0.23`, `168.63.129.16`,
//! `192.0.0.192`, AWS's `fd00:ec2::/32` (`fd00:ec2::254`, `fd00:ec2::23`), `fd20:ce::254`,
//! `fd00:a9fe:a9fe::1`, `fd00:42::42`, `fd00:100::100:200`, and a link-local, unique local
//! or site-local IPv6 address ending in one of the IPv4 ones, such as `fe80::a9fe:a9fe` or
//! `fd00:c1::a9fe:a9fe`)
//! hand out the machine's cloud credentials to anyone who can send it a request. They are
//! refused whatever the policy says: neither `allow_private` nor `allow_cidrs` lets them
//! through, also not in an IPv4-mapped or NAT64 form.
//!
//! # Proxies
//!
//! A proxy resolves the target name itself, out of the guard's sight, so [`agent`] builds
//! agents without one and ignores `ALL_PROXY`/`HTTPS_PROXY`/`HTTP_PROXY` (which ureq 3 would
//! otherwise pick up in `Config::default()` and `Config::builder()`).

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::IpNet;
use url::{Host, Url};

use crate::Error;

// ---------------------------------------------------------------------------------------------
// The pure part: the policy and the address and URL checks. No I/O, shared by every HTTP
// transport.
// ---------------------------------------------------------------------------------------------

/// Which non-global addresses one endpoint may reach.
///
/// The default allows global addresses only. Cloud metadata addresses stay refused whatever
/// is set here (see the [module docs](self#cloud-metadata-endpoints)).
///
/// ```
/// use deskhook_transports::guard::AddressPolicy;
///
/// let policy = AddressPolicy::default()
///     .allow_private(false)
///     .allow_cidr("10.20.0.0/16".parse().unwrap());
/// assert!(deskhook_transports::guard::check_ip("10.20.1.2".parse().unwrap(), &policy).is_ok());
/// assert!(deskhook_transports::guard::check_ip("10.21.1.2".parse().unwrap(), &policy).is_err());
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct AddressPolicy {
    /// Allow the addresses of real local networks: loopback, private (RFC 1918), link-local,
    /// shared address space (CGNAT, `100.64.0.0/10`), unique local (`fc00::/7`), site-local
    /// (`fec0::/10`) and the NAT64 local-use prefix (`64:ff9b:1::/48`). Documentation,
    /// multicast, reserved and similar ranges stay refused; list them in `allow_cidrs` if
    /// you really mean them.
    pub allow_private: bool,
    /// Networks allowed exactly as listed, whatever kind they are (except cloud metadata
    /// addresses). For IPv6 forms that embed an IPv4 address, both the IPv6 address and the
    /// embedded IPv4 address must pass, so list the IPv4 network for those.
    pub allow_cidrs: Vec<IpNet>,
}

impl AddressPolicy {
    /// Sets whether real local networks (loopback, RFC 1918, link-local, CGNAT, ULA, …) are
    /// allowed; see the field [`allow_private`](AddressPolicy#structfield.allow_private).
    ///
    /// Defaults to `false`.
    #[must_use]
    pub fn allow_private(mut self, allow: bool) -> Self {
        self.allow_private = allow;
        self
    }

    /// Adds a network that is allowed whatever its kind (cloud metadata addresses excepted).
    ///
    /// Defaults to none.
    #[must_use]
    pub fn allow_cidr(mut self, net: IpNet) -> Self {
        self.allow_cidrs.push(net);
        self
    }

    /// Whether an address of this kind, at this address, passes the policy.
    fn allows(&self, kind: Kind, addr: IpAddr) -> bool {
        match kind.remedy {
            Remedy::Never => false,
            Remedy::AllowPrivate if self.allow_private => true,
            Remedy::AllowPrivate | Remedy::AllowCidrs => {
                self.allow_cidrs.iter().any(|net| net.contains(&addr))
            }
        }
    }
}

/// Which endpoint setting would let a refused address through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Remedy {
    /// `allow_private = true`, or listing the address in `allow_cidrs`.
    AllowPrivate,
    /// Only listing the address in `allow_cidrs`.
    AllowCidrs,
    /// Nothing: the address is a cloud metadata endpoint.
    Never,
}

/// Why an address was refused: the address, what kind it is and which setting would allow it.
///
/// Its `Display` reads like "refusing to connect to 127.0.0.1 (loopback): set allow_private =
/// true or list it in allow_cidrs for this endpoint".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    addr: IpAddr,
    embedded: Option<Embedded>,
    kind: Kind,
}

impl Refusal {
    /// The refused address, as it was given (for an IPv4-mapped or NAT64 address, the IPv6
    /// form).
    pub fn addr(&self) -> IpAddr {
        self.addr
    }

    /// The IPv4 address embedded in [`addr`](Refusal::addr) when that is what was refused,
    /// e.g. `127.0.0.1` for `::ffff:127.0.0.1`.
    pub fn embedded(&self) -> Option<Ipv4Addr> {
        self.embedded.map(|e| e.v4)
    }

    /// What kind of address it is, in a few words: "loopback", "private (RFC 1918)",
    /// "cloud metadata", …
    pub fn reason(&self) -> &'static str {
        self.kind.reason
    }

    /// Which setting would allow the address, if any.
    pub fn remedy(&self) -> Remedy {
        self.kind.remedy
    }
}

impl Refusal {
    /// What an attempt says when an address that `name` resolved to was refused: the name and
    /// the kind of address, not the address itself.
    ///
    /// Attempts and dead letters are read by whoever may see an endpoint's deliveries — in a
    /// multi-tenant helpdesk, the tenant who typed the URL. Quoting the address would answer
    /// their lookups of the internal network's names. The operator resolves the name, or
    /// reads the `debug` record that [`log_resolved`](Refusal::log_resolved) writes.
    #[cfg(any(feature = "http-blocking", feature = "http-async", test))]
    pub(crate) fn of_name(&self, name: &str) -> String {
        let mut text = format!("refusing to connect to {name}: it resolves to a refused address (");
        if let Some(embedded) = self.embedded {
            text.push_str(embedded.form);
            text.push(' ');
        }
        text.push_str(self.kind.reason);
        text.push(')');
        text.push_str(&self.kind.remedy.advice("its addresses"));
        text
    }

    /// Logs, for the operator, which address `name` resolved to that was refused.
    #[cfg(any(feature = "http-blocking", feature = "http-async"))]
    pub(crate) fn log_resolved(&self, name: &str) {
        log::debug!(target: deskhook::LOG_TARGET, "{name} resolved to a refused address: {self}");
    }
}

impl Remedy {
    /// The advice that ends a refusal, `what` being what to list in `allow_cidrs`.
    fn advice(self, what: &str) -> String {
        match self {
            Remedy::AllowPrivate => format!(
                ": set allow_private = true or list {what} in allow_cidrs for this endpoint"
            ),
            Remedy::AllowCidrs => format!(": list {what} in allow_cidrs for this endpoint"),
            Remedy::Never => ": never allowed".to_owned(),
        }
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "refusing to connect to {} (", self.addr)?;
        if let Some(embedded) = self.embedded {
            write!(f, "{} {}: ", embedded.form, embedded.v4)?;
        }
        write!(f, "{})", self.kind.reason)?;
        // What to list: the embedded IPv4 address is what the check refused.
        let what = match self.embedded {
            Some(embedded) => embedded.v4.to_string(),
            None => "it".to_owned(),
        };
        f.write_str(&self.kind.remedy.advice(&what))
    }
}

impl std::error::Error for Refusal {}

/// A refused kind of address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Kind {
    reason: &'static str,
    remedy: Remedy,
}

impl Kind {
    const fn new(reason: &'static str, remedy: Remedy) -> Self {
        Kind { reason, remedy }
    }
}

/// An IPv4 address found inside an IPv6 address, and the form that carried it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Embedded {
    form: &'static str,
    v4: Ipv4Addr,
}

const METADATA: Kind = Kind::new("cloud metadata", Remedy::Never);

/// Cloud instance metadata and credential services: AWS/GCP/Azure/Oracle/OpenStack, AWS ECS
/// task credentials, AWS EKS Pod Identity, Alibaba Cloud, Tencent Cloud, Azure's
/// WireServer (a public address every Azure VM reaches, which serves its platform's
/// configuration and extensions' settings), and Oracle Cloud Classic's.
const METADATA_V4: [Ipv4Addr; 7] = [
    Ipv4Addr::new(169, 254, 169, 254),
    Ipv4Addr::new(169, 254, 170, 2),
    Ipv4Addr::new(169, 254, 170, 23),
    Ipv4Addr::new(100, 100, 100, 200),
    Ipv4Addr::new(169, 254, 0, 23),
    Ipv4Addr::new(168, 63, 129, 16),
    Ipv4Addr::new(192, 0, 0, 192),
];

/// GCP's metadata server for IPv6-only VMs, Linode's and Scaleway's metadata services, and
/// Alibaba Cloud's as deny-lists give it. (The whole of AWS's `fd00:ec2::/32`, where IMDS
/// and EKS Pod Identity answer, and a link-local, unique local or site-local address ending
/// in one of [`METADATA_V4`], such as OpenStack's `fe80::a9fe:a9fe` or Oracle Cloud's
/// `fd00:c1::a9fe:a9fe`, are refused too: see [`classify_v6`].)
const METADATA_V6: [Ipv6Addr; 4] = [
    Ipv6Addr::new(0xfd20, 0xce, 0, 0, 0, 0, 0, 0x254),
    Ipv6Addr::new(0xfd00, 0xa9fe, 0xa9fe, 0, 0, 0, 0, 1),
    Ipv6Addr::new(0xfd00, 0x42, 0, 0, 0, 0, 0, 0x42),
    Ipv6Addr::new(0xfd00, 0x100, 0, 0, 0, 0, 0x100, 0x200),
];

/// Checks one address against the policy. Pure: no lookup, no I/O.
///
/// IPv6 forms that carry an IPv4 address are refused if either the IPv6 address or the
/// embedded IPv4 address is refused. Cloud metadata addresses are refused whatever the policy.
///
/// # Errors
///
/// A [`Refusal`] naming the address, its kind and the setting that would allow it.
///
/// # Examples
///
/// ```
/// use deskhook_transports::guard::{check_ip, AddressPolicy};
///
/// let strict = AddressPolicy::default();
/// let err = check_ip("::ffff:127.0.0.1".parse().unwrap(), &strict).unwrap_err();
/// assert_eq!(err.reason(), "loopback");
/// assert!(check_ip("::ffff:127.0.0.1".parse().unwrap(), &strict.allow_private(true)).is_ok());
/// ```
pub fn check_ip(ip: IpAddr, policy: &AddressPolicy) -> Result<(), Refusal> {
    let refuse = |kind, embedded| Refusal {
        addr: ip,
        embedded,
        kind,
    };
    match ip {
        IpAddr::V4(v4) => match classify_v4(v4) {
            Some(kind) if !policy.allows(kind, ip) => Err(refuse(kind, None)),
            _ => Ok(()),
        },
        IpAddr::V6(v6) => {
            if let Some(kind) = classify_v6(v6)
                && !policy.allows(kind, ip)
            {
                return Err(refuse(kind, None));
            }
            for embedded in embedded_v4(v6) {
                if let Some(kind) = classify_v4(embedded.v4)
                    && !policy.allows(kind, IpAddr::V4(embedded.v4))
                {
                    return Err(refuse(kind, Some(embedded)));
                }
            }
            Ok(())
        }
    }
}

/// The refused kind of an IPv4 address, or `None` for a global address.
fn classify_v4(ip: Ipv4Addr) -> Option<Kind> {
    use Remedy::{AllowCidrs, AllowPrivate};

    if METADATA_V4.contains(&ip) {
        return Some(METADATA);
    }
    let kind = match ip.octets() {
        [0, ..] => Kind::new("unspecified (this network)", AllowCidrs),
        [127, ..] => Kind::new("loopback", AllowPrivate),
        [10, ..] | [172, 16..=31, _, _] | [192, 168, _, _] => {
            Kind::new("private (RFC 1918)", AllowPrivate)
        }
        [169, 254, _, _] => Kind::new("link-local", AllowPrivate),
        [100, 64..=127, _, _] => Kind::new("shared address space (CGNAT)", AllowPrivate),
        [192, 0, 0, _] => Kind::new("IETF protocol assignment", AllowCidrs),
        [192, 0, 2, _] | [198, 51, 100, _] | [203, 0, 113, _] => {
            Kind::new("documentation", AllowCidrs)
        }
        [198, 18 | 19, _, _] => Kind::new("benchmarking", AllowCidrs),
        // RFC 7526: where it is still routed, it reaches a 6to4 relay of one's own network.
        [192, 88, 99, _] => Kind::new("6to4 relay anycast (deprecated)", AllowCidrs),
        [224..=239, ..] => Kind::new("multicast", AllowCidrs),
        [255, 255, 255, 255] => Kind::new("broadcast", AllowCidrs),
        [240..=255, ..] => Kind::new("reserved", AllowCidrs),
        _ => return None,
    };
    Some(kind)
}

/// The refused kind of an IPv6 address as such, or `None`. Forms that embed an IPv4 address
/// are judged by [`embedded_v4`] on top of this.
fn classify_v6(ip: Ipv6Addr) -> Option<Kind> {
    use Remedy::{AllowCidrs, AllowPrivate};

    let [.., high, low] = ip.segments();
    let low_v4 = Ipv4Addr::from((u32::from(high) << 16) | u32::from(low));
    let [first, second, ..] = ip.segments();
    let local = ip.is_unicast_link_local()
        || ip.is_unique_local()
        || first & 0xffc0 == 0xfec0 /* site-local, deprecated */;
    if METADATA_V6.contains(&ip)
        || [first, second] == [0xfd00, 0xec2]
        || (local && METADATA_V4.contains(&low_v4))
    {
        return Some(METADATA);
    }
    if ip.is_unspecified() {
        return Some(Kind::new("unspecified", AllowCidrs));
    }
    if ip.is_loopback() {
        return Some(Kind::new("loopback", AllowPrivate));
    }
    let kind = match ip.segments() {
        [0x64, 0xff9b, 1, ..] => Kind::new("NAT64 local-use", AllowPrivate),
        [0x100, 0, 0, 0, ..] => Kind::new("discard-only", AllowCidrs),
        [0x100, 0, 0, 1, ..] => Kind::new("dummy prefix (RFC 9780)", AllowCidrs),
        [0x2001, 0, ..] => Kind::new("Teredo", AllowCidrs),
        [0x2001, 2, 0, ..] => Kind::new("benchmarking", AllowCidrs),
        [0x2001, b, ..] if b & 0xfff0 == 0x10 || b & 0xfff0 == 0x20 => {
            Kind::new("ORCHID", AllowCidrs)
        }
        [0x2001, b, ..] if b < 0x200 => Kind::new("IETF protocol assignment", AllowCidrs),
        [0x2001, 0xdb8, ..] => Kind::new("documentation", AllowCidrs),
        [0x3fff, b, ..] if b < 0x1000 => Kind::new("documentation", AllowCidrs),
        [0x5f00, ..] => Kind::new("SRv6 SIDs (RFC 9602)", AllowCidrs),
        [a, ..] if a & 0xfe00 == 0xfc00 => Kind::new("unique local (ULA)", AllowPrivate),
        [a, ..] if a & 0xffc0 == 0xfe80 => Kind::new("link-local", AllowPrivate),
        [a, ..] if a & 0xffc0 == 0xfec0 => Kind::new("site-local", AllowPrivate),
        [a, ..] if a & 0xff00 == 0xff00 => Kind::new("multicast", AllowCidrs),
        _ => return None,
    };
    Some(kind)
}

/// The IPv4 address an IPv6 address carries, for the forms that reach (or stand for) it.
///
/// The NAT64 local-use prefix (`64:ff9b:1::/48`) may be deployed as any prefix length of
/// RFC 6052 (/48, /56, /64 or /96), each of which puts the IPv4 address elsewhere: every
/// such reading is returned, so that no layout hides a refused address (the other readings
/// are then bits of the sender's choosing). Readings in `0.0.0.0/8` are left out: they are
/// the zero bits of another layout, and no NAT64 translates to them. (A reading can still
/// refuse an address that a deployment with another layout would allow, say one whose
/// /64 reading ends in .127: the guard errs on the side of refusing.)
fn embedded_v4(ip: Ipv6Addr) -> Vec<Embedded> {
    let o = ip.octets();
    let at = |a: usize, b: usize, c: usize, d: usize| Ipv4Addr::new(o[a], o[b], o[c], o[d]);
    let last = at(12, 13, 14, 15);
    let one = |form, v4| vec![Embedded { form, v4 }];
    match ip.segments() {
        [0, 0, 0, 0, 0, 0xffff, _, _] => one("IPv4-mapped", last),
        [0, 0, 0, 0, 0xffff, 0, _, _] => one("IPv4-translated", last),
        [0, 0, 0, 0, 0, 0, _, _] if !ip.is_unspecified() && !ip.is_loopback() => {
            one("IPv4-compatible", last)
        }
        [0x64, 0xff9b, 0, 0, 0, 0, _, _] => one("NAT64", last),
        // RFC 6052 section 2.2: octet 8 (bits 64 to 71) is always skipped.
        [0x64, 0xff9b, 1, ..] => [at(6, 7, 9, 10), at(7, 9, 10, 11), at(9, 10, 11, 12), last]
            .into_iter()
            .filter(|v4| v4.octets()[0] != 0)
            .map(|v4| Embedded { form: "NAT64", v4 })
            .collect(),
        [0x2002, ..] => one("6to4", at(2, 3, 4, 5)),
        _ => Vec::new(),
    }
}

/// Checks an endpoint URL before anything is sent to it. Pure: no lookup, no I/O.
///
/// Only `http` and `https` are accepted (only `https` when `https_only`); credentials in the
/// URL are refused (they belong in a header); an IP-literal host is checked with
/// [`check_ip`]. A host name passes here: its addresses are checked when it is resolved, by
/// [`GuardedResolver`].
///
/// # Errors
///
/// - [`Error::InvalidUrl`] for a wrong scheme, credentials in the URL or a missing host. The
///   URL in it is cut down to scheme, host and port, so nothing secret is repeated.
/// - [`Error::Refused`] for a refused IP-literal host.
///
/// # Examples
///
/// ```
/// use deskhook_transports::guard::{check_url, AddressPolicy};
///
/// let policy = AddressPolicy::default();
/// let url = url::Url::parse("http://0x7f.1/hook").unwrap(); // 127.0.0.1
/// assert!(check_url(&url, &policy, false).is_err());
/// let url = url::Url::parse("https://hooks.example.com/hook").unwrap();
/// assert!(check_url(&url, &policy, true).is_ok());
/// ```
pub fn check_url(url: &Url, policy: &AddressPolicy, https_only: bool) -> Result<(), Error> {
    let invalid = |reason: String| Error::InvalidUrl {
        url: redacted(url),
        reason,
    };
    match url.scheme() {
        "https" => {}
        "http" if !https_only => {}
        "http" => {
            return Err(invalid(
                "https_only is set for this endpoint; use an https URL".to_owned(),
            ));
        }
        _ if credentials_without_scheme(url) => {
            return Err(invalid(
                "it has no scheme, and what is before '@' looks like a user and password; \
                 write https:// before the host, and send credentials in a header (such as \
                 Authorization) rather than in the URL"
                    .to_owned(),
            ));
        }
        other => {
            // "localhost:8080" parses as the scheme "localhost" and the path "8080". Only a
            // port is repeated: "user:password@host" parses as the scheme "user" too.
            let port = url.path();
            let hint = if url.cannot_be_a_base()
                && !port.is_empty()
                && port.bytes().all(|b| b.is_ascii_digit())
            {
                format!(" (write http://{other}:{}?)", url.path())
            } else {
                String::new()
            };
            return Err(invalid(format!(
                "scheme '{other}' is not supported; use http or https{hint}"
            )));
        }
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(invalid(
            "credentials in the URL are refused; move them to a header such as Authorization"
                .to_owned(),
        ));
    }
    match url.host() {
        None => Err(invalid("the URL has no host".to_owned())),
        Some(Host::Ipv4(v4)) => check_ip(IpAddr::V4(v4), policy).map_err(Error::Refused),
        Some(Host::Ipv6(v6)) => check_ip(IpAddr::V6(v6), policy).map_err(Error::Refused),
        Some(Host::Domain(_)) => Ok(()),
    }
}

/// The URL as scheme, host and port only: user-info, path and query may carry secrets
/// (webhook tokens often sit in the path). "/…" marks that something was left out.
fn redacted(url: &Url) -> String {
    if url.cannot_be_a_base() {
        // "user:password@host": the scheme is a user name.
        if credentials_without_scheme(url) {
            return "…".to_owned();
        }
        // "localhost:8080" and "mailto:…": a scheme and a path, no host.
        return format!("{}:…", url.scheme());
    }
    let mut out = format!("{}://{}", url.scheme(), url.host_str().unwrap_or(""));
    if let Some(port) = url.port() {
        out.push_str(&format!(":{port}"));
    }
    if !matches!(url.path(), "" | "/") || url.query().is_some() || url.fragment().is_some() {
        out.push_str("/…");
    }
    out
}

/// Whether `url` is `user:password@host` written without a scheme: it parses as the scheme
/// `user` and a path (or a query, or a fragment, when the password holds `?` or `#`) with
/// an `@` in it. Not `mailto:`, whose address has one.
fn credentials_without_scheme(url: &Url) -> bool {
    let rest = url.as_str().get(url.scheme().len() + 1..).unwrap_or("");
    url.cannot_be_a_base() && url.scheme() != "mailto" && rest.contains('@')
}

/// How long a vetted answer for a name is reused. ureq resolves before every request (even on
/// a kept-alive connection) and, with a timeout set, on a thread of its own; both HTTP
/// transports resolve for each new connection. The system resolver does not tell the record's
/// TTL, so a short fixed time is used. Only addresses that passed the check are kept, so reuse
/// cannot let a rebinding through.
pub const VETTED_ANSWER_REUSE: std::time::Duration = std::time::Duration::from_secs(30);

/// How long an origin's lookup under way is shared by the attempts that need its answer
/// before another is begun: two connect timeouts, and 10 s at least. A resolver that never
/// answers (a stuck name-service module; the system resolver waits 5 s a try) costs an
/// origin one lookup thread per this long, not one per attempt: with an endpoint's connect
/// timeout of a millisecond, two of them began a thread for nearly every attempt, each left
/// waiting. An attempt waits for the answer until its own connect timeout all the same.
#[cfg(any(feature = "http-blocking", feature = "http-async"))]
pub(crate) fn lookup_stuck_after(connect_timeout: std::time::Duration) -> std::time::Duration {
    connect_timeout
        .saturating_mul(2)
        .max(std::time::Duration::from_secs(10))
}

#[cfg(feature = "http-blocking")]
mod resolver;
#[cfg(feature = "http-blocking")]
pub use resolver::{GuardedResolver, agent, refusal_of};

#[cfg(test)]
mod tests;
