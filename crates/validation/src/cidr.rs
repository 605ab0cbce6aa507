//! IPv4 CIDRs and CIDR rule lists (`10.0.0.0/8,!10.1.0.0/16`, OpenShift's
//! ExternalIPNetworkCIDRs syntax: a leading `!` rejects).

use std::net::Ipv4Addr;

/// An IPv4 CIDR (the base address masked to the prefix).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    pub base: u32,
    pub prefix: u8,
}

fn mask(prefix: u8) -> u32 {
    if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - prefix)
    }
}

impl Cidr {
    pub fn parse(s: &str) -> Result<Cidr, String> {
        let bad = || format!("invalid CIDR address: {s}");
        let (ip, len) = s.trim().split_once('/').ok_or_else(bad)?;
        let ip: Ipv4Addr = ip.parse().map_err(|_| bad())?;
        let prefix: u8 = len.parse().map_err(|_| bad())?;
        if prefix > 32 {
            return Err(bad());
        }
        Ok(Cidr {
            base: u32::from(ip) & mask(prefix),
            prefix,
        })
    }

    /// Number of addresses (2^(32-prefix)), saturated for /0.
    pub fn size(&self) -> u64 {
        1u64 << (32 - self.prefix)
    }

    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        u32::from(ip) & mask(self.prefix) == self.base
    }

    /// The address at `offset` from the base (1 = first usable).
    pub fn nth(&self, offset: u32) -> Ipv4Addr {
        Ipv4Addr::from(self.base.wrapping_add(offset))
    }

    /// Offset of `ip` from the base, when inside.
    pub fn offset(&self, ip: Ipv4Addr) -> Option<u32> {
        self.contains(ip).then(|| u32::from(ip) - self.base)
    }

    /// Whether `ip` may be handed out from this range: inside, and neither the network
    /// address nor (for prefixes up to /30) the broadcast address, as kube's IP allocator.
    pub fn usable(&self, ip: Ipv4Addr) -> bool {
        match self.offset(ip) {
            None => false,
            Some(_) if self.prefix >= 31 => true,
            Some(o) => o != 0 && (o as u64) < self.size() - 1,
        }
    }
}

impl std::fmt::Display for Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", Ipv4Addr::from(self.base), self.prefix)
    }
}

/// Admit and reject CIDRs from a comma-separated list (`!` rejects); empty admits nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CidrRules {
    pub admit: Vec<Cidr>,
    pub reject: Vec<Cidr>,
}

impl CidrRules {
    pub fn parse(s: &str) -> Result<CidrRules, String> {
        let mut r = CidrRules::default();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            match part.strip_prefix('!') {
                Some(neg) => r.reject.push(Cidr::parse(neg)?),
                None => r.admit.push(Cidr::parse(part)?),
            }
        }
        Ok(r)
    }

    /// Inside an admitted CIDR and no rejected one.
    pub fn allows(&self, ip: Ipv4Addr) -> bool {
        self.admit.iter().any(|c| c.contains(ip)) && !self.reject.iter().any(|c| c.contains(ip))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidr_math() {
        let c = Cidr::parse("10.43.0.0/16").unwrap();
        assert_eq!(c.nth(1).to_string(), "10.43.0.1");
        assert_eq!(c.nth(10).to_string(), "10.43.0.10");
        assert!(c.contains("10.43.255.1".parse().unwrap()));
        assert!(!c.contains("10.44.0.1".parse().unwrap()));
        assert_eq!(c.size(), 65536);
        assert!(!c.usable("10.43.0.0".parse().unwrap()));
        assert!(!c.usable("10.43.255.255".parse().unwrap()));
        assert!(c.usable("10.43.255.254".parse().unwrap()));
        assert_eq!(
            Cidr::parse("10.42.7.9/24").unwrap().to_string(),
            "10.42.7.0/24"
        );
        let one = Cidr::parse("192.168.1.7/32").unwrap();
        assert!(one.usable("192.168.1.7".parse().unwrap()));
        for bad in [
            "nope",
            "10.0.0.0",
            "10.0.0.0/33",
            "10.0.0/8",
            "::1/64",
            "10.0.0.0/x",
        ] {
            assert!(Cidr::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(Cidr::parse("x/8").unwrap_err(), "invalid CIDR address: x/8");
    }

    #[test]
    fn rules() {
        let cases: &[(&str, &str, bool)] = &[
            ("", "1.2.3.4", false),
            ("1.2.3.0/24", "1.2.3.4", true),
            ("1.2.3.0/24", "1.2.4.4", false),
            ("1.2.0.0/16,!1.2.3.0/24", "1.2.3.4", false),
            ("1.2.0.0/16,!1.2.3.0/24", "1.2.4.4", true),
            ("!1.2.3.0/24", "9.9.9.9", false),
            (" 10.0.0.0/8 , 192.168.0.0/16 ", "192.168.9.9", true),
        ];
        for (rules, ip, want) in cases {
            let r = CidrRules::parse(rules).unwrap();
            assert_eq!(r.allows(ip.parse().unwrap()), *want, "{rules} {ip}");
        }
        assert!(CidrRules::parse("1.2.3.0/24,bad").is_err());
    }
}
