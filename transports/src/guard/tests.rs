//! The guard's address checks, by table.

use super::*;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn net(s: &str) -> IpNet {
    s.parse().unwrap()
}

/// What a policy says about an address: `None` for allowed, else the remedy.
fn verdict(addr: &str, policy: &AddressPolicy) -> Option<Remedy> {
    check_ip(ip(addr), policy).err().map(|r| r.remedy())
}

use Remedy::{AllowCidrs as C, AllowPrivate as P, Never as N};

/// Address, reason under the default policy ("" = allowed), verdicts under the default
/// policy, `allow_private` and `allow_cidrs`.
type Row = (
    &'static str,
    &'static str,
    Option<Remedy>,
    Option<Remedy>,
    Option<Remedy>,
);

#[test]
fn check_ip_table() {
    let default = AddressPolicy::default();
    let private = AddressPolicy::default().allow_private(true);
    let cidrs = [
        "127.0.0.0/8",
        "169.254.0.0/16",
        "192.0.2.0/24",
        "fd00::/8",
        "2001::/32",
    ]
    .into_iter()
    .chain(["::1/128", "64:ff9b::/96"])
    .fold(AddressPolicy::default(), |p, n| p.allow_cidr(net(n)));

    #[rustfmt::skip]
    let table: &[Row] = &[
        ("127.0.0.1", "loopback", Some(P), None, None),
        ("127.255.255.254", "loopback", Some(P), None, None),
        ("0.0.0.0", "unspecified (this network)", Some(C), Some(C), Some(C)),
        ("10.1.2.3", "private (RFC 1918)", Some(P), None, Some(P)),
        ("172.16.0.1", "private (RFC 1918)", Some(P), None, Some(P)),
        ("172.31.255.255", "private (RFC 1918)", Some(P), None, Some(P)),
        ("172.32.0.1", "", None, None, None),
        ("192.168.1.1", "private (RFC 1918)", Some(P), None, Some(P)),
        ("100.64.0.1", "shared address space (CGNAT)", Some(P), None, Some(P)),
        ("100.128.0.1", "", None, None, None),
        ("169.254.169.254", "cloud metadata", Some(N), Some(N), Some(N)),
        ("169.254.170.2", "cloud metadata", Some(N), Some(N), Some(N)),
        ("100.100.100.200", "cloud metadata", Some(N), Some(N), Some(N)),
        ("169.254.0.23", "cloud metadata", Some(N), Some(N), Some(N)),
        ("168.63.129.16", "cloud metadata", Some(N), Some(N), Some(N)),
        ("169.254.1.1", "link-local", Some(P), None, None),
        ("192.0.0.8", "IETF protocol assignment", Some(C), Some(C), Some(C)),
        ("198.18.0.1", "benchmarking", Some(C), Some(C), Some(C)),
        ("198.19.255.255", "benchmarking", Some(C), Some(C), Some(C)),
        ("192.88.99.1", "6to4 relay anycast (deprecated)", Some(C), Some(C), Some(C)),
        ("::ffff:192.88.99.255", "6to4 relay anycast (deprecated)", Some(C), Some(C), Some(C)),
        ("2002:c058:6301::1", "6to4 relay anycast (deprecated)", Some(C), Some(C), Some(C)),
        ("192.88.98.1", "", None, None, None),
        ("192.0.2.1", "documentation", Some(C), Some(C), None),
        ("198.51.100.7", "documentation", Some(C), Some(C), Some(C)),
        ("203.0.113.9", "documentation", Some(C), Some(C), Some(C)),
        ("224.0.0.1", "multicast", Some(C), Some(C), Some(C)),
        ("255.255.255.255", "broadcast", Some(C), Some(C), Some(C)),
        ("240.0.0.1", "reserved", Some(C), Some(C), Some(C)),
        // Pure checks only: nothing ever connects to these.
        ("8.8.8.8", "", None, None, None),
        ("1.1.1.1", "", None, None, None),
        ("::1", "loopback", Some(P), None, None),
        ("::", "unspecified", Some(C), Some(C), Some(C)),
        ("::ffff:127.0.0.1", "loopback", Some(P), None, None),
        ("::ffff:10.0.0.1", "private (RFC 1918)", Some(P), None, Some(P)),
        ("::ffff:169.254.169.254", "cloud metadata", Some(N), Some(N), Some(N)),
        ("::ffff:8.8.8.8", "", None, None, None),
        ("::ffff:0:127.0.0.1", "loopback", Some(P), None, None),
        ("::127.0.0.1", "loopback", Some(P), None, None),
        ("::0.0.0.2", "unspecified (this network)", Some(C), Some(C), Some(C)),
        ("64:ff9b::7f00:1", "loopback", Some(P), None, None),
        ("64:ff9b::808:808", "", None, None, None),
        ("64:ff9b::a9fe:a9fe", "cloud metadata", Some(N), Some(N), Some(N)),
        ("64:ff9b:1::808:808", "NAT64 local-use", Some(P), None, Some(P)),
        ("64:ff9b:1::a00:1", "NAT64 local-use", Some(P), None, Some(P)),
        ("2002:7f00:1::", "loopback", Some(P), None, None),
        ("2002:c0a8:101::1", "private (RFC 1918)", Some(P), None, Some(P)),
        ("2002:808:808::1", "", None, None, None),
        ("fe80::1", "link-local", Some(P), None, Some(P)),
        ("fc00::1", "unique local (ULA)", Some(P), None, Some(P)),
        ("fd12:3456::1", "unique local (ULA)", Some(P), None, None),
        ("fd00:ec2::254", "cloud metadata", Some(N), Some(N), Some(N)),
        ("fd00:ec2::23", "cloud metadata", Some(N), Some(N), Some(N)),
        ("fd20:ce::254", "cloud metadata", Some(N), Some(N), Some(N)),
        ("fd00:ec2::1", "cloud metadata", Some(N), Some(N), Some(N)),
        ("fd00:ec2:ffff::1", "cloud metadata", Some(N), Some(N), Some(N)),
        ("fd00:ec3::254", "unique local (ULA)", Some(P), None, None),
        ("fd00:a9fe:a9fe::1", "cloud metadata", Some(N), Some(N), Some(N)),
        ("fd00:42::42", "cloud metadata", Some(N), Some(N), Some(N)),
        ("fd00:100::100:200", "cloud metadata", Some(N), Some(N), Some(N)),
        ("fd00:c1::a9fe:a9fe", "cloud metadata", Some(N), Some(N), Some(N)),
        ("fc00::a9fe:a9fe", "cloud metadata", Some(N), Some(N), Some(N)),
        ("fec0::a9fe:a9fe", "cloud metadata", Some(N), Some(N), Some(N)),
        ("fe80::a9fe:a9fe", "cloud metadata", Some(N), Some(N), Some(N)),
        ("fe80::1:a9fe:a9fe", "cloud metadata", Some(N), Some(N), Some(N)),
        ("fe80::a9fe:a9ff", "link-local", Some(P), None, Some(P)),
        ("192.0.0.192", "cloud metadata", Some(N), Some(N), Some(N)),
        ("192.0.0.191", "IETF protocol assignment", Some(C), Some(C), Some(C)),
        ("fec0::1", "site-local", Some(P), None, Some(P)),
        ("ff02::1", "multicast", Some(C), Some(C), Some(C)),
        ("2001:db8::1", "documentation", Some(C), Some(C), Some(C)),
        ("3fff::1", "documentation", Some(C), Some(C), Some(C)),
        ("3fff:1000::1", "", None, None, None),
        ("100::1", "discard-only", Some(C), Some(C), Some(C)),
        ("2001:2::1", "benchmarking", Some(C), Some(C), Some(C)),
        ("2001:10::1", "ORCHID", Some(C), Some(C), Some(C)),
        ("2001:20::1", "ORCHID", Some(C), Some(C), Some(C)),
        ("2001:5::1", "IETF protocol assignment", Some(C), Some(C), Some(C)),
        ("2001:1ff::1", "IETF protocol assignment", Some(C), Some(C), Some(C)),
        ("2001:200::1", "", None, None, None),
        ("100:0:0:1::1", "dummy prefix (RFC 9780)", Some(C), Some(C), Some(C)),
        ("5f00::1", "SRv6 SIDs (RFC 9602)", Some(C), Some(C), Some(C)),
        ("2606:4700:4700::1111", "", None, None, None),
        ("2001::1", "Teredo", Some(C), Some(C), None),
    ];
    for &(addr, reason, d, p, c) in table {
        let got_reason = check_ip(ip(addr), &default)
            .err()
            .map_or("", |r| r.reason());
        assert_eq!(got_reason, reason, "reason for {addr}");
        assert_eq!(
            verdict(addr, &default),
            d,
            "{addr} under the default policy"
        );
        assert_eq!(verdict(addr, &private), p, "{addr} under allow_private");
        assert_eq!(verdict(addr, &cidrs), c, "{addr} under allow_cidrs");
    }
}

#[test]
fn allow_cidrs_allow_exactly_the_listed_nets() {
    let policy = AddressPolicy::default().allow_cidr(net("10.1.0.0/16"));
    assert_eq!(verdict("10.1.255.255", &policy), None);
    assert_eq!(verdict("10.2.0.1", &policy), Some(P));
    assert_eq!(verdict("::ffff:10.1.0.1", &policy), None);
    // A net wider than the metadata address does not let it through.
    let wide = AddressPolicy::default()
        .allow_private(true)
        .allow_cidr(net("0.0.0.0/0"))
        .allow_cidr(net("::/0"));
    for never in [
        "169.254.169.254",
        "100.100.100.200",
        "192.0.0.192",
        "fd00:ec2::254",
        "fd20:ce::254",
        "fe80::a9fe:a9fe",
    ] {
        assert_eq!(verdict(never, &wide), Some(N), "{never}");
    }
    assert_eq!(verdict("0.0.0.0", &wide), None);
    // Listing the NAT64 prefix allows the IPv6 form, not what it embeds.
    let nat64 = AddressPolicy::default().allow_cidr(net("64:ff9b:1::/48"));
    assert_eq!(verdict("64:ff9b:1::808:808", &nat64), None);
    assert_eq!(verdict("64:ff9b:1::7f00:1", &nat64), Some(P));
    // In a /48 layout the IPv4 address sits in octets 6, 7, 9 and 10 (octet 8 is
    // skipped), and the last 32 bits are the sender's: metadata there is still refused,
    // whatever those last bits say.
    let wide_nat64 = nat64.clone().allow_private(true);
    for layout in [
        "64:ff9b:1:a9fe:a9:fe00:808:808", // /48
        "64:ff9b:1:a9:fe:a9fe:808:808",   // /56
        "64:ff9b:1:0:a9:fea9:fe08:808",   // /64
    ] {
        assert_eq!(verdict(layout, &wide_nat64), Some(N), "{layout}");
    }
    assert_eq!(verdict("64:ff9b:1::808:808", &wide_nat64), None);
    // And 8.8.8.8 behind a /48 or /56 prefix passes (its other readings are zeros).
    for layout in ["64:ff9b:1:808:8:800::", "64:ff9b:1:8:8:808::"] {
        assert_eq!(verdict(layout, &wide_nat64), None, "{layout}");
    }
}

#[test]
fn refusal_display_names_address_and_setting() {
    let strict = AddressPolicy::default();
    let text = |addr| check_ip(ip(addr), &strict).unwrap_err().to_string();
    assert_eq!(
        text("127.0.0.1"),
        "refusing to connect to 127.0.0.1 (loopback): set allow_private = true or list it \
         in allow_cidrs for this endpoint"
    );
    assert_eq!(
        text("169.254.169.254"),
        "refusing to connect to 169.254.169.254 (cloud metadata): never allowed"
    );
    assert_eq!(
        text("192.0.2.1"),
        "refusing to connect to 192.0.2.1 (documentation): list it in allow_cidrs for this \
         endpoint"
    );
    assert_eq!(
        text("::ffff:127.0.0.1"),
        "refusing to connect to ::ffff:127.0.0.1 (IPv4-mapped 127.0.0.1: loopback): set \
         allow_private = true or list 127.0.0.1 in allow_cidrs for this endpoint"
    );
    let refusal = check_ip(ip("64:ff9b::7f00:1"), &strict).unwrap_err();
    assert_eq!(refusal.addr(), ip("64:ff9b::7f00:1"));
    assert_eq!(refusal.embedded(), Some(Ipv4Addr::LOCALHOST));
    assert_eq!(
        Error::Refused(refusal.clone()).to_string(),
        refusal.to_string()
    );
}

#[test]
fn a_refused_lookup_names_the_name_and_the_kind_not_the_address() {
    let strict = AddressPolicy::default();
    let text = |addr| {
        check_ip(ip(addr), &strict)
            .unwrap_err()
            .of_name("db.internal")
    };
    assert_eq!(
        text("10.1.2.3"),
        "refusing to connect to db.internal: it resolves to a refused address (private (RFC \
         1918)): set allow_private = true or list its addresses in allow_cidrs for this endpoint"
    );
    assert_eq!(
        text("::ffff:169.254.169.254"),
        "refusing to connect to db.internal: it resolves to a refused address (IPv4-mapped \
         cloud metadata): never allowed"
    );
    assert_eq!(
        text("198.18.0.1"),
        "refusing to connect to db.internal: it resolves to a refused address (benchmarking): \
         list its addresses in allow_cidrs for this endpoint"
    );
}

fn url(s: &str) -> Url {
    Url::parse(s).unwrap()
}

#[test]
fn check_url_sees_through_ipv4_spellings() {
    let strict = AddressPolicy::default();
    for odd in [
        "http://2130706433/",
        "http://0x7f.1/",
        "http://127.1/",
        "http://0177.0.0.1/",
    ] {
        let parsed = url(odd);
        assert_eq!(
            parsed.host(),
            Some(Host::Ipv4(Ipv4Addr::LOCALHOST)),
            "{odd}"
        );
        match check_url(&parsed, &strict, false) {
            Err(Error::Refused(r)) => {
                assert_eq!(r.addr(), ip("127.0.0.1"), "{odd}");
                assert_eq!(r.reason(), "loopback", "{odd}");
            }
            other => panic!("{odd}: {other:?}"),
        }
        let private = strict.clone().allow_private(true);
        assert!(check_url(&parsed, &private, false).is_ok(), "{odd}");
    }
    match check_url(&url("http://[::ffff:127.0.0.1]/"), &strict, false) {
        Err(Error::Refused(r)) => assert_eq!(r.embedded(), Some(Ipv4Addr::LOCALHOST)),
        other => panic!("{other:?}"),
    }
    match check_url(&url("https://169.254.169.254/latest/"), &strict, false) {
        Err(Error::Refused(r)) => assert_eq!(r.remedy(), Remedy::Never),
        other => panic!("{other:?}"),
    }
}

#[test]
fn check_url_refuses_credentials_without_repeating_them() {
    let strict = AddressPolicy::default();
    for with_creds in [
        "http://user:pass@example.com/",
        "https://user@example.com/hook?token=abc",
        "https://:pass@example.com/",
    ] {
        let err = check_url(&url(with_creds), &strict, false).unwrap_err();
        assert!(matches!(err, Error::InvalidUrl { .. }), "{with_creds}");
        let text = err.to_string();
        assert!(text.contains("header"), "{text}");
        assert!(text.contains("example.com"), "{text}");
        for secret in ["pass", "user", "token", "abc"] {
            assert!(!text.contains(secret), "{secret} in {text}");
            assert!(!format!("{err:?}").contains(secret), "{secret} in {err:?}");
        }
    }
}

#[test]
fn a_url_with_credentials_and_no_scheme_repeats_neither() {
    // It parses as the scheme "alice" and the path "hunter2@example.com"; with '?' or '#'
    // in the password, the '@' is in the query or the fragment.
    let policy = AddressPolicy::default();
    for written in [
        "alice:hunter2@example.com",
        "alice:hun?ter2@example.com",
        "alice:hun#ter2@example.com",
        "alice:1234?@example.com",
    ] {
        let text = check_url(&url(written), &policy, false)
            .unwrap_err()
            .to_string();
        assert!(text.contains("it has no scheme"), "{text}");
        assert!(text.contains("credentials in a header"), "{text}");
        for secret in ["alice", "hun", "ter2", "1234"] {
            assert!(!text.contains(secret), "{secret} in {text}");
        }
    }
    // A mailto: address is not taken for one.
    let err = check_url(&url("mailto:ops@example.com"), &policy, false)
        .unwrap_err()
        .to_string();
    assert!(err.contains("scheme 'mailto' is not supported"), "{err}");
}

#[test]
fn check_url_schemes_and_names() {
    let strict = AddressPolicy::default();
    let err = check_url(&url("ftp://x/"), &strict, false).unwrap_err();
    assert!(matches!(err, Error::InvalidUrl { .. }));
    assert!(err.to_string().contains("'ftp'"), "{err}");

    // A name passes here; the resolver judges its addresses.
    assert!(check_url(&url("http://localhost/"), &strict, false).is_ok());
    assert!(check_url(&url("https://hooks.example.com/x"), &strict, true).is_ok());

    let err = check_url(&url("http://hooks.example.com/x?k=v"), &strict, true).unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid endpoint URL 'http://hooks.example.com/…': https_only is set for this \
         endpoint; use an https URL"
    );
    let err = check_url(&url("http://[::1]:8080/"), &strict, false).unwrap_err();
    assert!(
        err.to_string()
            .contains("refusing to connect to ::1 (loopback)")
    );
    assert!(
        check_url(
            &url("http://[::1]:8080/"),
            &strict.allow_private(true),
            false
        )
        .is_ok()
    );
}
