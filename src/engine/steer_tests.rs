//! The engine's side of steering: what the decoder cannot open follows a named policy.

use super::*;
use crate::verdict::Policy;
use etherparse::{IpNumber, Ipv4Header};

const SEC: u64 = 1_000_000_000;

fn judged(e: &mut Engine, f: &[u8]) -> Verdict {
    match e.handle(SEC, f, 1) {
        Outcome::Judged(j) => j.verdict,
        _ => panic!("held"),
    }
}

fn v4(proto: u8, more_fragments: bool, payload: &[u8]) -> Vec<u8> {
    let mut h = Ipv4Header::new(payload.len() as u16, 64, IpNumber(proto), [10, 0, 0, 1], [10, 0, 0, 2]).unwrap();
    h.more_fragments = more_fragments;
    h.header_checksum = h.calc_header_checksum();
    let mut f = [&crate::wire::testutil::DST_MAC[..], &crate::wire::testutil::SRC_MAC[..], &[8, 0]].concat();
    h.write(&mut f).unwrap();
    f.extend_from_slice(payload);
    f
}

fn count(e: &Engine, d: DecodeError) -> u64 {
    e.stats().decode_errors[DecodeError::ALL.iter().position(|x| *x == d).unwrap()]
}

#[test]
fn esp_follows_its_own_policy_and_counter() {
    let esp = v4(50, false, &[0, 0, 1, 0, 0, 0, 0, 1, 9, 9, 9, 9]);
    let mut e = Engine::new(EngineConfig::default(), Keyer::with_keys(1, 2));
    assert_eq!(judged(&mut e, &esp), Verdict::drop(Cause::Decode(DecodeError::Esp)));
    assert_eq!(count(&e, DecodeError::Esp), 1);
    // `undecodable = forward` does not open ESP: only `esp` does.
    let cfg = EngineConfig { undecodable: Policy::Forward, ..Default::default() };
    let mut e = Engine::new(cfg, Keyer::with_keys(1, 2));
    assert_eq!(judged(&mut e, &esp).action, Action::Drop);
    let cfg = EngineConfig { esp: Policy::Forward, ..Default::default() };
    let mut e = Engine::new(cfg, Keyer::with_keys(1, 2));
    assert_eq!(judged(&mut e, &esp), Verdict::forward(Cause::Decode(DecodeError::Esp)));
    assert_eq!(count(&e, DecodeError::Esp), 1);
}

#[test]
fn fragments_the_engine_cannot_reassemble_are_undecodable_and_others_pass() {
    let mut e = Engine::new(EngineConfig::default(), Keyer::with_keys(1, 2));
    let tcp = v4(6, true, &[0x9c, 0x40, 0x13, 0xc4, 0, 0, 0, 1]);
    assert_eq!(judged(&mut e, &tcp), Verdict::drop(Cause::Decode(DecodeError::FragmentedTcp)));
    let ah = v4(51, true, &[17, 4, 0, 0, 0, 0, 0, 1]);
    assert_eq!(judged(&mut e, &ah), Verdict::drop(Cause::Decode(DecodeError::FragmentedAh)));
    let icmp = v4(1, true, &[8, 0, 0, 0, 0, 1, 0, 1]);
    assert_eq!(judged(&mut e, &icmp), Verdict::forward(Cause::NotSip));
    assert_eq!((count(&e, DecodeError::FragmentedTcp), count(&e, DecodeError::FragmentedAh)), (1, 1));
}

#[test]
fn decode_limits_come_from_the_config() {
    let p = crate::fixtures::CallParams::default();
    let (c, s) = (SocketAddr::new(p.client_ip, p.client_port), SocketAddr::new(p.server_ip, p.server_port));
    let one_tag = crate::fixtures::udp_frame_vlan(c, s, b"OPTIONS sip:a@b SIP/2.0\r\n\r\n", 7);
    let cfg = EngineConfig { decode: crate::wire::DecodeLimits { max_vlan_tags: 0, max_ext_headers: 8 }, ..Default::default() };
    let mut e = Engine::new(cfg, Keyer::with_keys(1, 2));
    assert_eq!(judged(&mut e, &one_tag), Verdict::drop(Cause::Decode(DecodeError::TooManyVlans)));
    let mut e = Engine::new(EngineConfig::default(), Keyer::with_keys(1, 2));
    assert_ne!(judged(&mut e, &one_tag).cause, Cause::Decode(DecodeError::TooManyVlans));
}
