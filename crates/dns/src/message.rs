//! Wire handling around [`resolve`]: parse a query, echo its ID, RD and CD bits and
//! question, answer with EDNS0 when asked with it, and keep a UDP reply within the size the
//! client accepts (512 bytes without EDNS; the additional section goes first, then the
//! reply is cut to its question with TC set, so the client retries over TCP).

use crate::answer::{resolve, Answer, Resolution};
use crate::index::Index;
use crate::Config;
use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::Record;

/// The largest UDP reply sent, whatever the client advertises (the DNS flag day 2020 size).
pub const MAX_UDP_PAYLOAD: u16 = 1232;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Udp,
    Tcp,
}

#[derive(Debug, PartialEq)]
pub enum Plan {
    /// Send these bytes back.
    Reply(Vec<u8>),
    /// Relay the query as received to the upstream resolvers and their reply back.
    Forward,
    /// Ask the upstream resolvers `query`, then [`finish`] with their answer records.
    Chase {
        request: Box<Message>,
        answer: Box<Answer>,
        query: Box<Query>,
    },
    /// Not a query (a response, or too short to carry an ID): no reply.
    Drop,
}

/// What to do with the message `bytes` received over `transport`.
pub fn plan(bytes: &[u8], transport: Transport, index: &Index, cfg: &Config) -> Plan {
    let request = match Message::from_vec(bytes) {
        Ok(m) => m,
        Err(_) if bytes.len() >= 12 => {
            let id = u16::from_be_bytes([bytes[0], bytes[1]]);
            if bytes[2] & 0x80 != 0 {
                return Plan::Drop;
            }
            let m = Message::error_msg(id, OpCode::Query, ResponseCode::FormErr);
            return m.to_vec().map(Plan::Reply).unwrap_or(Plan::Drop);
        }
        Err(_) => return Plan::Drop,
    };
    if request.message_type() != MessageType::Query {
        return Plan::Drop;
    }
    if request.op_code() != OpCode::Query {
        return reply(&request, error(ResponseCode::NotImp), transport);
    }
    let [q] = request.queries() else {
        return reply(&request, error(ResponseCode::FormErr), transport);
    };
    match resolve(q.name(), q.query_type(), q.query_class(), index, cfg) {
        Resolution::Forward => Plan::Forward,
        Resolution::Local(mut answer) => match answer.chase.take() {
            Some(target) => {
                let mut query = Query::query(target, q.query_type());
                query.set_query_class(q.query_class());
                Plan::Chase {
                    request: Box::new(request),
                    answer: Box::new(answer),
                    query: Box::new(query),
                }
            }
            None => reply(&request, answer, transport),
        },
    }
}

fn error(rcode: ResponseCode) -> Answer {
    Answer {
        rcode,
        ..Answer::default()
    }
}

fn reply(request: &Message, answer: Answer, transport: Transport) -> Plan {
    match encode(request, answer, transport) {
        Some(b) => Plan::Reply(b),
        None => Plan::Drop,
    }
}

/// The reply to a chased query: the local answer with the upstream's `records` appended
/// (none when the upstream failed: the CNAME alone, as CoreDNS answers then).
pub fn finish(request: &Message, mut answer: Answer, records: Vec<Record>, t: Transport) -> Plan {
    answer.answers.extend(records);
    reply(request, answer, t)
}

/// The reply's bytes, within the client's size over UDP.
pub fn encode(request: &Message, answer: Answer, transport: Transport) -> Option<Vec<u8>> {
    let mut m = Message::new();
    m.set_id(request.id())
        .set_message_type(MessageType::Response)
        .set_op_code(request.op_code())
        .set_authoritative(answer.rcode != ResponseCode::Refused)
        .set_recursion_desired(request.recursion_desired())
        .set_recursion_available(true)
        .set_checking_disabled(request.checking_disabled())
        .set_response_code(answer.rcode);
    m.add_queries(request.queries().iter().cloned());
    if request.extensions().is_some() {
        let mut edns = Edns::new();
        edns.set_max_payload(MAX_UDP_PAYLOAD).set_version(0);
        m.set_edns(edns);
    }
    let limit = match (transport, request.extensions()) {
        (Transport::Tcp, _) => usize::from(u16::MAX),
        (Transport::Udp, None) => 512,
        (Transport::Udp, Some(e)) => usize::from(e.max_payload().clamp(512, MAX_UDP_PAYLOAD)),
    };
    let bare = m.clone();
    m.add_answers(answer.answers)
        .add_name_servers(answer.authority);
    let without_extra = m.clone();
    m.add_additionals(answer.additional);
    for candidate in [m, without_extra] {
        let bytes = candidate.to_vec().ok()?;
        if bytes.len() <= limit {
            return Some(bytes);
        }
    }
    let mut cut = bare;
    cut.set_truncated(true);
    cut.to_vec().ok()
}
