//! Two engines wired by hand (sans-IO): a TCP message whose Call-ID the other engine owns is
//! consulted on, judged there against that engine's dialogs, and its connection resumed or
//! reset with the answer.

use super::{ConsultTicket, Engine, Outcome};
use crate::config::EngineConfig;
use crate::fixtures::{self, tcp_flags::ACK, CallParams};
use crate::hash::{shard_of, Keyer};
use crate::hosttable::{HostLimits, HostTable};
use crate::rules::compile::Source;
use crate::stream::{ResetPoint, StreamError};
use crate::verdict::{Action, Cause, Verdict};
use std::net::SocketAddr;
use std::sync::Arc;

const SEC: u64 = 1_000_000_000;
const KEYS: (u64, u64) = (11, 12);

/// What an outcome said, owned so the engines can move on.
#[derive(Debug)]
enum Step {
    Held,
    Judged(Verdict, Vec<u64>, Option<ResetPoint>),
    Consult(usize, ConsultTicket, SocketAddr, SocketAddr, Vec<u8>),
}

fn step(o: Outcome<'_>) -> Step {
    match o {
        Outcome::Held => Step::Held,
        Outcome::Judged(j) => Step::Judged(j.verdict, j.frames.to_vec(), j.reset),
        Outcome::Consult(c) => Step::Consult(c.engine, c.ticket, c.src, c.dst, c.msg.to_vec()),
    }
}

/// Engine `index` of `engines` with the shipped dialog rules.
fn engine(index: usize, engines: usize) -> Engine {
    let text = include_str!("../../rules/40-dialogs.toml").to_string();
    let rs = crate::rules::compile(&[Source { path: "40-dialogs.toml".into(), text }], std::path::Path::new("."), &Default::default()).unwrap();
    let hosts = Arc::new(HostTable::new(HostLimits::default()));
    let mut e = Engine::with_rules(EngineConfig::default(), Keyer::with_keys(KEYS.0, KEYS.1), Arc::new(rs), hosts);
    e.set_shard(index, engines);
    e
}

/// A call whose Call-ID engine `owner` of two owns.
fn call_owned_by(owner: usize) -> CallParams {
    let k = Keyer::with_keys(KEYS.0, KEYS.1);
    let call_id = (0..).map(|i| format!("xdlg-{i}@10.77.0.1")).find(|c| shard_of(k.call_id(c.as_bytes()), 2) == owner).unwrap();
    CallParams { call_id, ..Default::default() }
}

fn tcp(m: &[u8]) -> Vec<u8> {
    String::from_utf8(m.to_vec()).unwrap().replace("SIP/2.0/UDP", "SIP/2.0/TCP").into_bytes()
}

/// A connection's two ends and each end's next sequence number.
struct Conn {
    ends: [SocketAddr; 2],
    seq: [u32; 2],
}

impl Conn {
    fn new(a: &str, b: &str) -> Conn {
        Conn { ends: [a.parse().unwrap(), b.parse().unwrap()], seq: [1_000, 900_000] }
    }

    /// The next segment from end `from` carrying `payload`.
    fn seg(&mut self, from: usize, payload: &[u8]) -> Vec<u8> {
        let f = fixtures::tcp_frame(self.ends[from], self.ends[1 - from], self.seq[from], self.seq[1 - from], ACK, payload);
        self.seq[from] += payload.len() as u32;
        f
    }
}

/// Feeds `frame` to engine `at`, answering every consult with the owner's verdict; returns
/// the final step and how many consults it took.
fn run(e: &mut [Engine], at: usize, now: u64, frame: &[u8], id: u64) -> (Step, usize) {
    let mut s = step(e[at].handle(now, frame, id));
    let mut asked = 0;
    while let Step::Consult(owner, ticket, src, dst, msg) = s {
        assert_ne!(owner, at, "an engine consults only others");
        asked += 1;
        let v = e[owner].judge_consulted(now, src, dst, ticket.transport(), &msg).verdict;
        s = step(e[at].resume(now, ticket, v));
    }
    (s, asked)
}

/// INVITE, 180, 200 over connection `c` (client end 0) framed by engine `at`, all passed.
fn set_up(e: &mut [Engine], at: usize, c: &mut Conn, p: &CallParams) {
    let inv = tcp(&fixtures::invite_with_sdp(p));
    let msgs = [
        (0, inv.clone()),
        (1, tcp(&fixtures::response(&inv, 180, "Ringing", Some(&p.to_tag)))),
        (1, tcp(&fixtures::response(&inv, 200, "OK", Some(&p.to_tag)))),
        (0, tcp(&fixtures::ack(p, p.cseq, &p.to_tag))),
    ];
    for (i, (from, m)) in msgs.into_iter().enumerate() {
        let f = c.seg(from, &m);
        match run(e, at, SEC + i as u64, &f, 10 + i as u64) {
            (Step::Judged(v, frames, None), _) => assert_eq!((v.action, frames), (Action::Forward, vec![10 + i as u64]), "message {i}"),
            s => panic!("message {i}: {s:?}"),
        }
    }
}

#[test]
fn a_callee_bye_on_its_own_connection_is_judged_with_the_dialog_of_the_owner() {
    let p = call_owned_by(1);
    let mut e = [engine(0, 2), engine(1, 2)];
    let mut c1 = Conn::new("10.77.0.1:40000", "10.77.0.2:5060");
    set_up(&mut e, 0, &mut c1, &p);
    assert_eq!((e[0].dialogs().len(), e[1].dialogs().len()), (0, 1), "the dialog lives with the Call-ID's owner");
    // The callee's honest BYE on a connection of its own, framed by engine 0.
    let mut c2 = Conn::new("10.77.0.2:41000", "10.77.0.1:5060");
    let (s, asked) = run(&mut e, 0, 2 * SEC, &c2.seg(0, &tcp(&fixtures::callee_bye(&p))), 20);
    assert!(matches!(s, Step::Judged(v, ref f, None) if v.action == Action::Forward && f == &[20]), "{s:?}");
    assert_eq!(asked, 1);
    // A forged BYE (a dialog nobody set up) on another connection: dropped, reset.
    let honest = String::from_utf8(fixtures::callee_bye(&p)).unwrap();
    let forged = honest.replace(&format!("tag={}", p.from_tag), "tag=forged").into_bytes();
    let mut c3 = Conn::new("10.77.0.2:41001", "10.77.0.1:5060");
    let (s, _) = run(&mut e, 0, 2 * SEC, &c3.seg(0, &tcp(&forged)), 30);
    match s {
        Step::Judged(v, frames, Some(_)) => assert_eq!((v.action, matches!(v.cause, Cause::Rule(_)), frames), (Action::Drop, true, vec![30])),
        s => panic!("forged BYE: {s:?}"),
    }
    assert_eq!(e[0].streams().flows(), 2, "the forged BYE's connection is forgotten");
    let (a, b) = (&e[0].stats().consults, &e[1].stats().consults);
    assert_eq!((a.asked, a.answered, a.refused, b.judged), (6, 6, 0, 6), "{a:?} {b:?}");
    assert_eq!(e[0].stats().tcp_resets, 1);
}

#[test]
fn alone_the_framing_engine_would_drop_the_honest_bye() {
    // The twin that shows the consult matters: an engine without the dialog drops it.
    let p = call_owned_by(1);
    let mut e = [engine(0, 1)];
    let mut c2 = Conn::new("10.77.0.2:41000", "10.77.0.1:5060");
    let (s, asked) = run(&mut e, 0, 2 * SEC, &c2.seg(0, &tcp(&fixtures::callee_bye(&p))), 20);
    assert!(matches!(s, Step::Judged(v, _, Some(_)) if v.action == Action::Drop), "{s:?}");
    assert_eq!(asked, 0);
}

#[test]
fn framing_waits_for_the_answer_and_keeps_order() {
    let p = call_owned_by(1);
    let mut e = [engine(0, 2), engine(1, 2)];
    let mut c = Conn::new("10.77.0.1:40000", "10.77.0.2:5060");
    // Two pipelined requests, the first owned by engine 1, the second local.
    let local = call_owned_by(0);
    let (a, b) = (tcp(&fixtures::options(&p, 1)), tcp(&fixtures::options(&local, 2)));
    let first = c.seg(0, &[a.clone(), b[..20].to_vec()].concat());
    let Step::Consult(1, ticket, ..) = step(e[0].handle(SEC, &first, 10)) else { panic!("not consulted") };
    // The rest of b arrives while the answer is out: held, not framed.
    assert!(matches!(step(e[0].handle(SEC, &c.seg(0, &b[20..]), 11)), Step::Held));
    assert_eq!(e[0].stats().sip_messages, 0, "nothing judged past the consulted message");
    match step(e[0].resume(SEC, ticket, Verdict::forward(Cause::Valid))) {
        Step::Judged(v, frames, None) => assert_eq!((v, frames), (Verdict::forward(Cause::Valid), vec![10, 11])),
        s => panic!("{s:?}"),
    }
    assert_eq!(e[0].stats().sip_messages, 1, "b judged here, after a");
    // A late or repeated answer finds nothing to resume.
    assert!(matches!(step(e[0].resume(SEC, ticket, Verdict::forward(Cause::Valid))), Step::Held));
    assert_eq!(e[0].stats().consults.unmatched, 1);
}

#[test]
fn a_refused_consult_resets_and_an_unanswered_one_times_out() {
    let p = call_owned_by(1);
    let mut e = engine(0, 2);
    let mut c = Conn::new("10.77.0.1:40000", "10.77.0.2:5060");
    let Step::Consult(_, ticket, ..) = step(e.handle(SEC, &c.seg(0, &tcp(&fixtures::options(&p, 1))), 10)) else { panic!() };
    match step(e.refuse(SEC, ticket)) {
        Step::Judged(v, frames, Some(r)) => {
            assert_eq!((v, frames), (Verdict::drop(Cause::Stream(StreamError::ConsultRefused)), vec![10]));
            assert_eq!(r.to_receiver, 1_000, "reset at the first byte not released");
        }
        s => panic!("{s:?}"),
    }
    assert_eq!((e.stats().consults.refused, e.stats().tcp.errors[StreamError::ConsultRefused.index()]), (1, 1));
    // No answer at all: the connection's reassembly timeout drops the held frames.
    let mut c = Conn::new("10.77.0.1:40001", "10.77.0.2:5060");
    let Step::Consult(_, ticket, ..) = step(e.handle(SEC, &c.seg(0, &tcp(&fixtures::options(&p, 2))), 20)) else { panic!() };
    e.tick(SEC + 7 * SEC);
    let mut out = vec![];
    e.drain_dropped(&mut out);
    assert_eq!(out, vec![(20, Verdict::drop(Cause::Stream(StreamError::Timeout)))]);
    assert_eq!(e.stats().consults.abandoned, 1);
    assert!(matches!(step(e.resume(SEC * 9, ticket, Verdict::forward(Cause::Valid))), Step::Held));
}

#[test]
fn a_restarted_connection_voids_the_answer_about_its_old_stream() {
    let p = call_owned_by(1);
    let mut e = engine(0, 2);
    let mut c = Conn::new("10.77.0.1:40000", "10.77.0.2:5060");
    let Step::Consult(_, ticket, ..) = step(e.handle(SEC, &c.seg(0, &tcp(&fixtures::options(&p, 1))), 10)) else { panic!() };
    // The same ports open a new connection.
    let syn = fixtures::tcp_frame(c.ends[0], c.ends[1], 50_000, 0, fixtures::tcp_flags::SYN, b"");
    assert!(matches!(step(e.handle(SEC, &syn, 11)), Step::Judged(..)));
    // Its first message is framed at once (it need not wait for an answer about the old one).
    let m = tcp(&fixtures::options(&call_owned_by(0), 2));
    let f = fixtures::tcp_frame(c.ends[0], c.ends[1], 50_001, 0, ACK, &m);
    match step(e.handle(SEC, &f, 12)) {
        Step::Judged(v, frames, None) => assert_eq!((v, frames), (Verdict::forward(Cause::Valid), vec![12])),
        s => panic!("{s:?}"),
    }
    // The answer about the old stream comes late: it must not move the new stream on.
    assert!(matches!(step(e.resume(SEC, ticket, Verdict::forward(Cause::Valid))), Step::Held));
    assert_eq!(e.stats().consults.unmatched, 1);
    assert_eq!(e.stats().sip_messages, 1);
}
