//! The answer to one question, with the CoreDNS kubernetes plugin's semantics (it is the
//! reference kube's DNS spec is checked against): names are parsed as
//! `[_port._proto.|endpoint.]service.namespace.svc|pod.<zone>`; a name that maps to no record
//! is NXDOMAIN, a name that exists with no record of the asked type is NODATA, both with the
//! zone's SOA in authority; reverse names of cluster and endpoint IPs answer PTR, any other
//! reverse name and every name outside the zone goes to the upstream resolvers.

use crate::index::{dashed, Index, ServiceKind};
use crate::{Config, PodMode};
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::rdata::{A, AAAA, CNAME, NS, PTR, SOA, SRV, TXT};
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};
use std::net::IpAddr;

/// What to do with a question.
#[derive(Debug, PartialEq)]
pub enum Resolution {
    /// Answered from the index.
    Local(Answer),
    /// Not ours: relay it to the upstream resolvers.
    Forward,
}

#[derive(Debug, Default, PartialEq)]
pub struct Answer {
    pub rcode: ResponseCode,
    pub answers: Vec<Record>,
    pub authority: Vec<Record>,
    pub additional: Vec<Record>,
    /// A CNAME (ExternalName service) to a name outside the cluster: the caller asks the
    /// upstream resolvers for this name (the question's type) and appends what they answer.
    pub chase: Option<Name>,
}

/// The answer's host: an address, or a name (ExternalName).
#[derive(Debug, Clone, PartialEq)]
enum Host {
    Ip(IpAddr),
    Name(Name),
}

/// One record source (CoreDNS's msg.Service): a host, its port, and the name that SRV
/// records target (`svc.ns.svc.zone`, or `endpoint.svc.ns.svc.zone`).
#[derive(Debug, Clone)]
struct Entry {
    host: Host,
    port: Option<u16>,
    target: Name,
}

/// The name maps to nothing (NXDOMAIN).
struct NameError;

fn name_of(labels: &[&str], zone: &Name) -> Name {
    Name::from_labels(labels.iter().map(|l| l.as_bytes()))
        .and_then(|n| n.append_domain(zone))
        .unwrap_or_else(|_| zone.clone())
}

fn strip_underscore(s: &str) -> &str {
    s.strip_prefix('_').unwrap_or(s)
}

fn port_matches(want_port: &str, port: &str, want_proto: &str, proto: &str) -> bool {
    (want_port.is_empty() || want_port == port) && (want_proto.is_empty() || want_proto == proto)
}

/// The records a name stands for (CoreDNS's Records): Ok(empty) is an existing name with
/// no records (NODATA).
fn records(base: &[String], index: &Index, cfg: &Config) -> Result<Vec<Entry>, NameError> {
    let n = base.len();
    if n == 0 || (n == 1 && (base[0] == "svc" || base[0] == "pod")) {
        return Ok(Vec::new());
    }
    let kind = base[n - 1].as_str();
    if kind != "svc" && kind != "pod" {
        return Err(NameError);
    }
    let ns = base[n - 2].as_str();
    if !index.namespace_exists(ns) {
        return Err(NameError);
    }
    if n == 2 {
        return Ok(Vec::new());
    }
    let service = base[n - 3].as_str();
    let (mut endpoint, mut port, mut proto) = ("", "", "");
    match n - 3 {
        0 => {}
        1 => endpoint = base[0].as_str(),
        2 => {
            port = strip_underscore(&base[0]);
            proto = strip_underscore(&base[1]);
        }
        _ => return Err(NameError),
    }
    if kind == "pod" {
        return pod_records(service, ns, index, cfg);
    }
    let svc = index.service(ns, service).ok_or(NameError)?;
    let svc_name = name_of(&[service, ns, "svc"], &cfg.zone);
    let mut out = Vec::new();
    match &svc.kind {
        ServiceKind::ExternalName(ext) => {
            if !endpoint.is_empty() || ext.parse::<IpAddr>().is_ok() {
                return Err(NameError);
            }
            let target = Name::from_ascii(format!("{ext}.")).map_err(|_| NameError)?;
            out.push(Entry {
                host: Host::Name(target.clone()),
                port: None,
                target,
            });
        }
        kind if *kind == ServiceKind::Headless || !endpoint.is_empty() => {
            for a in index.addresses(ns, service) {
                let label = a.label();
                if !endpoint.is_empty() && endpoint != label {
                    continue;
                }
                let target = name_of(&[&label, service, ns, "svc"], &cfg.zone);
                if a.ports.is_empty() {
                    // CoreDNS's sentinel port: addresses without ports still answer A.
                    if port.is_empty() && proto.is_empty() {
                        out.push(Entry {
                            host: Host::Ip(a.ip),
                            port: None,
                            target: target.clone(),
                        });
                    }
                }
                for p in a.ports {
                    if port_matches(port, &p.name, proto, &p.protocol) {
                        out.push(Entry {
                            host: Host::Ip(a.ip),
                            port: Some(p.port),
                            target: target.clone(),
                        });
                    }
                }
            }
        }
        ServiceKind::ClusterIp(ips) => {
            for p in &svc.ports {
                if port_matches(port, &p.name, proto, &p.protocol) {
                    for ip in ips {
                        out.push(Entry {
                            host: Host::Ip(*ip),
                            port: Some(p.port),
                            target: svc_name.clone(),
                        });
                    }
                }
            }
        }
        ServiceKind::Headless => unreachable!("matched above"),
    }
    if out.is_empty() {
        return Err(NameError);
    }
    Ok(out)
}

/// `a-b-c-d.ns.pod.zone` (or an IPv6 address with dashes): the address itself, in
/// `pods insecure` mode; in `verified` mode only if a pod of that namespace has it.
fn pod_records(
    label: &str,
    ns: &str,
    index: &Index,
    cfg: &Config,
) -> Result<Vec<Entry>, NameError> {
    if cfg.pods == PodMode::Disabled {
        return Err(NameError);
    }
    let text = if label.matches('-').count() == 3 && !label.contains("--") {
        label.replace('-', ".")
    } else {
        label.replace('-', ":")
    };
    let ip: IpAddr = text.parse().map_err(|_| NameError)?;
    if cfg.pods == PodMode::Verified && !index.pod_has_ip(ns, ip) {
        return Err(NameError);
    }
    Ok(vec![Entry {
        host: Host::Ip(ip),
        port: None,
        target: name_of(&[&dashed(ip), ns, "pod"], &cfg.zone),
    }])
}

fn record(name: &Name, ttl: u32, data: RData) -> Record {
    Record::from_rdata(name.clone(), ttl, data)
}

fn address(name: &Name, ttl: u32, ip: IpAddr) -> Record {
    match ip {
        IpAddr::V4(v4) => record(name, ttl, RData::A(A(v4))),
        IpAddr::V6(v6) => record(name, ttl, RData::AAAA(AAAA(v6))),
    }
}

/// The zone's SOA (CoreDNS's: ns.dns.<zone>, hostmaster.<zone>, the index's serial,
/// 7200 1800 86400, minimum the TTL).
pub fn soa(index: &Index, cfg: &Config) -> Record {
    let mname = name_of(&["ns", "dns"], &cfg.zone);
    let rname = name_of(&["hostmaster"], &cfg.zone);
    let data = SOA::new(mname, rname, index.serial, 7200, 1800, 86400, cfg.ttl);
    record(&cfg.zone, cfg.ttl, RData::SOA(data))
}

fn negative(rcode: ResponseCode, index: &Index, cfg: &Config) -> Answer {
    Answer {
        rcode,
        authority: vec![soa(index, cfg)],
        ..Answer::default()
    }
}

/// The answer to (`qname`, `qtype`, `qclass`) from `index`.
pub fn resolve(
    qname: &Name,
    qtype: RecordType,
    qclass: DNSClass,
    index: &Index,
    cfg: &Config,
) -> Resolution {
    let lower = qname.to_lowercase();
    if is_reverse(&lower) {
        return reverse(qname, &lower, qtype, index, cfg);
    }
    if !cfg.zone.zone_of(&lower) {
        return Resolution::Forward;
    }
    if qclass != DNSClass::IN {
        return Resolution::Local(Answer {
            rcode: ResponseCode::Refused,
            ..Answer::default()
        });
    }
    Resolution::Local(in_zone(qname, &lower, qtype, index, cfg, 0))
}

fn is_reverse(name: &Name) -> bool {
    ["in-addr.arpa.", "ip6.arpa."]
        .iter()
        .any(|z| Name::from_ascii(z).is_ok_and(|z| z.zone_of(name)))
}

/// PTR for a service's cluster IP (`svc.ns.svc.zone`) or published endpoint addresses
/// (`endpoint.svc.ns.svc.zone`); everything else in the reverse zones is forwarded (the
/// kubeadm Corefile's `fallthrough in-addr.arpa ip6.arpa`).
fn reverse(
    qname: &Name,
    lower: &Name,
    qtype: RecordType,
    index: &Index,
    cfg: &Config,
) -> Resolution {
    if qtype != RecordType::PTR {
        return Resolution::Forward;
    }
    let Ok(net) = lower.parse_arpa_name() else {
        return Resolution::Forward;
    };
    if net.prefix_len() != net.max_prefix_len() {
        return Resolution::Forward;
    }
    let ip = net.addr();
    let targets: Vec<Name> = match index.service_for_ip(ip) {
        Some((ns, svc)) => vec![name_of(&[svc, ns, "svc"], &cfg.zone)],
        None => index
            .endpoints_for_ip(ip)
            .iter()
            .map(|(ns, svc, label)| name_of(&[label, svc, ns, "svc"], &cfg.zone))
            .collect(),
    };
    if targets.is_empty() {
        return Resolution::Forward;
    }
    Resolution::Local(Answer {
        answers: targets
            .into_iter()
            .map(|t| record(qname, cfg.ttl, RData::PTR(PTR(t))))
            .collect(),
        ..Answer::default()
    })
}

fn in_zone(
    qname: &Name,
    lower: &Name,
    qtype: RecordType,
    index: &Index,
    cfg: &Config,
    depth: usize,
) -> Answer {
    let base: Vec<String> = lower
        .iter()
        .take(lower.num_labels().saturating_sub(cfg.zone.num_labels()) as usize)
        .map(|l| String::from_utf8_lossy(l).into_owned())
        .collect();
    let apex = base.is_empty();
    match qtype {
        RecordType::AXFR | RecordType::IXFR => {
            return Answer {
                rcode: ResponseCode::Refused,
                ..Answer::default()
            }
        }
        RecordType::SOA if apex => {
            return Answer {
                answers: vec![soa(index, cfg)],
                ..Answer::default()
            }
        }
        RecordType::NS if apex => {
            let ns = name_of(&["ns", "dns"], &cfg.zone);
            return Answer {
                answers: vec![record(qname, cfg.ttl, RData::NS(NS(ns)))],
                ..Answer::default()
            };
        }
        RecordType::TXT if base == ["dns-version"] => {
            // The kube DNS specification's version record.
            let txt = TXT::new(vec!["1.1.0".to_string()]);
            return Answer {
                answers: vec![record(qname, cfg.ttl, RData::TXT(txt))],
                ..Answer::default()
            };
        }
        _ => {}
    }
    let entries = match records(&base, index, cfg) {
        Ok(e) => e,
        Err(NameError) => return negative(ResponseCode::NXDomain, index, cfg),
    };
    let mut answer = Answer::default();
    match qtype {
        RecordType::A | RecordType::AAAA => {
            for e in &entries {
                match &e.host {
                    Host::Ip(ip) if ip.is_ipv4() == (qtype == RecordType::A) => {
                        let r = address(qname, cfg.ttl, *ip);
                        if !answer.answers.contains(&r) {
                            answer.answers.push(r);
                        }
                    }
                    Host::Ip(_) => {}
                    Host::Name(target) => {
                        answer.answers.push(record(
                            qname,
                            cfg.ttl,
                            RData::CNAME(CNAME(target.clone())),
                        ));
                        if cfg.zone.zone_of(target) && depth < 8 {
                            let more = in_zone(target, target, qtype, index, cfg, depth + 1);
                            answer.answers.extend(more.answers);
                            answer.chase = more.chase;
                        } else if !cfg.zone.zone_of(target) {
                            answer.chase = Some(target.clone());
                        }
                    }
                }
            }
        }
        RecordType::CNAME => {
            for e in &entries {
                if let Host::Name(target) = &e.host {
                    let data = RData::CNAME(CNAME(target.clone()));
                    answer.answers.push(record(qname, cfg.ttl, data));
                }
            }
        }
        RecordType::SRV => srv(qname, &entries, cfg, &mut answer),
        _ => {}
    }
    if answer.answers.is_empty() {
        return negative(ResponseCode::NoError, index, cfg);
    }
    answer
}

/// SRV records (priority 0, weight 100 split evenly, as CoreDNS) targeting the service or
/// endpoint names, with their addresses in the additional section.
fn srv(qname: &Name, entries: &[Entry], cfg: &Config, answer: &mut Answer) {
    let mut seen: Vec<(Name, u16)> = Vec::new();
    let mut extra: Vec<(Name, IpAddr)> = Vec::new();
    for e in entries {
        let port = match (&e.host, e.port) {
            (_, Some(p)) => p,
            (Host::Name(_), None) => 0,
            (Host::Ip(_), None) => continue,
        };
        if !seen.contains(&(e.target.clone(), port)) {
            seen.push((e.target.clone(), port));
        }
        if let Host::Ip(ip) = e.host {
            if !extra.contains(&(e.target.clone(), ip)) {
                extra.push((e.target.clone(), ip));
            }
        }
    }
    let weight = if seen.is_empty() {
        0
    } else {
        (100 / seen.len()) as u16
    };
    for (target, port) in seen {
        let data = SRV::new(0, weight, port, target);
        answer
            .answers
            .push(record(qname, cfg.ttl, RData::SRV(data)));
    }
    for (target, ip) in extra {
        answer.additional.push(address(&target, cfg.ttl, ip));
    }
}
