//! Where creditd may send a webhook: https only, and never to this host, the private network or
//! a cloud metadata service (SSRF), unless the settings say otherwise.
//!
//! Checked when an endpoint is registered and again before every attempt, on the addresses the
//! name resolves to *then*; the attempt connects to the address that was checked (reqwest's
//! `resolve`), so a name that re-resolves to 127.0.0.1 between check and connect (DNS rebinding)
//! reaches nothing.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use url::{Host, Url};

/// What the settings allow.
#[derive(Debug, Clone, Copy)]
pub struct Allow {
    pub http: bool,
    pub private_networks: bool,
}

/// Why a URL or an address was refused; shown to the operator, so it names the rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("must be an https URL (OUTBOUND_ALLOW_HTTP allows http)")]
    Scheme,
    #[error("must be an absolute URL with a host and no user name or password")]
    Shape,
    #[error(
        "{0} is a loopback, private, link-local, CGNAT, multicast or metadata address (OUTBOUND_ALLOW_PRIVATE_NETWORKS allows it)"
    )]
    Private(IpAddr),
    #[error("the host does not resolve: {0}")]
    Unresolved(String),
}

/// Checks a URL's form: scheme, host, no credentials. Does not resolve.
pub fn check_url(url: &Url, allow: Allow) -> Result<(), Refused> {
    match url.scheme() {
        "https" => {}
        "http" if allow.http => {}
        _ => return Err(Refused::Scheme),
    }
    if url.host().is_none() || !url.username().is_empty() || url.password().is_some() {
        return Err(Refused::Shape);
    }
    Ok(())
}

/// Resolves the URL's host and returns the addresses to connect to, all of them checked.
/// Refuses when any address is forbidden: a name that also points inside is not trusted at all.
pub async fn resolve(url: &Url, allow: Allow) -> Result<Vec<SocketAddr>, Refused> {
    check_url(url, allow)?;
    let port = url.port_or_known_default().ok_or(Refused::Shape)?;
    let addresses: Vec<SocketAddr> = match url.host().ok_or(Refused::Shape)? {
        Host::Ipv4(ip) => vec![SocketAddr::new(IpAddr::V4(ip), port)],
        Host::Ipv6(ip) => vec![SocketAddr::new(IpAddr::V6(ip), port)],
        Host::Domain(name) => tokio::net::lookup_host((name, port))
            .await
            .map_err(|e| Refused::Unresolved(e.to_string()))?
            .collect(),
    };
    if addresses.is_empty() {
        return Err(Refused::Unresolved("no addresses".into()));
    }
    if !allow.private_networks
        && let Some(bad) = addresses.iter().find(|a| is_forbidden(a.ip()))
    {
        return Err(Refused::Private(bad.ip()));
    }
    Ok(addresses)
}

/// Addresses no merchant endpoint can legitimately be at.
pub fn is_forbidden(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => forbidden_v4(v4),
        IpAddr::V6(v6) => forbidden_v6(v6),
    }
}

fn forbidden_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local() // 169.254/16, with 169.254.169.254 (metadata)
        || ip.is_multicast()
        || ip.is_broadcast()
        || a == 0 // "this network"
        || (a == 100 && (64..128).contains(&b)) // CGNAT 100.64/10, with Alibaba's metadata
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments
        || (a == 198 && (b == 18 || b == 19)) // benchmarking
        || a >= 240 // reserved
}

fn forbidden_v6(ip: Ipv6Addr) -> bool {
    let segments = ip.segments();
    // IPv4 inside IPv6 (mapped ::ffff:a.b.c.d, compatible ::a.b.c.d, NAT64 64:ff9b::/96) reaches
    // the IPv4 address: judge that.
    if let Some(v4) = ip.to_ipv4_mapped() {
        return forbidden_v4(v4);
    }
    if segments[..6] == [0x64, 0xff9b, 0, 0, 0, 0] || segments[..6] == [0; 6] {
        let v4 = Ipv4Addr::new(
            (segments[6] >> 8) as u8,
            segments[6] as u8,
            (segments[7] >> 8) as u8,
            segments[7] as u8,
        );
        return forbidden_v4(v4);
    }
    ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_multicast()
        || (segments[0] & 0xfe00) == 0xfc00 // unique local fc00::/7, with AWS's fd00:ec2::254
        || (segments[0] & 0xffc0) == 0xfe80 // link-local fe80::/10
        || (segments[0] & 0xffc0) == 0xfec0 // deprecated site-local fec0::/10
        || segments[0] == 0x2002 && forbidden_v4(Ipv4Addr::new(
            (segments[1] >> 8) as u8,
            segments[1] as u8,
            (segments[2] >> 8) as u8,
            segments[2] as u8,
        )) // 6to4 of a forbidden IPv4 address
}

#[cfg(test)]
mod tests {
    use super::*;

    fn forbidden(text: &str) -> bool {
        is_forbidden(text.parse().unwrap())
    }

    #[test]
    fn inside_addresses_are_forbidden() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "100.100.100.200",
            "0.0.0.0",
            "224.0.0.1",
            "255.255.255.255",
            "240.0.0.1",
            "::1",
            "::",
            "fe80::1",
            "fd00:ec2::254",
            "fc00::1",
            "ff02::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "::127.0.0.1",
            "64:ff9b::a9fe:a9fe",
            "2002:7f00:1::",
        ] {
            assert!(forbidden(ip), "{ip} must be forbidden");
        }
    }

    #[test]
    fn public_addresses_are_allowed() {
        for ip in [
            "93.184.216.34",
            "8.8.8.8",
            "100.128.0.1",
            "2606:4700::1111",
            "::ffff:8.8.8.8",
        ] {
            assert!(!forbidden(ip), "{ip} must be allowed");
        }
    }

    #[test]
    fn only_https_unless_http_is_allowed() {
        let strict = Allow {
            http: false,
            private_networks: false,
        };
        let lax = Allow {
            http: true,
            private_networks: false,
        };
        let http: Url = "http://example.com/hook".parse().unwrap();
        assert_eq!(check_url(&http, strict), Err(Refused::Scheme));
        assert_eq!(check_url(&http, lax), Ok(()));
        let ftp: Url = "ftp://example.com/".parse().unwrap();
        assert_eq!(check_url(&ftp, lax), Err(Refused::Scheme));
        let creds: Url = "https://user:pw@example.com/".parse().unwrap();
        assert_eq!(check_url(&creds, strict), Err(Refused::Shape));
    }

    #[tokio::test]
    async fn literal_and_resolved_private_addresses_are_refused() {
        let strict = Allow {
            http: true,
            private_networks: false,
        };
        for url in [
            "http://127.0.0.1:9/",
            "http://[::ffff:169.254.169.254]/",
            "http://localhost:9/",
        ] {
            let refused = resolve(&url.parse().unwrap(), strict).await;
            assert!(
                matches!(refused, Err(Refused::Private(_))),
                "{url}: {refused:?}"
            );
        }
        let open = Allow {
            http: true,
            private_networks: true,
        };
        assert!(
            resolve(&"http://127.0.0.1:9/".parse().unwrap(), open)
                .await
                .is_ok()
        );
    }
}
