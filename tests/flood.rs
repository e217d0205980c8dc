//! State-holding floods must not grow memory past the configured caps.

use secsip::config::EngineConfig;
use secsip::engine::{Engine, Outcome};
use secsip::fixtures::{self, CallParams};
use secsip::hash::Keyer;
use secsip::verdict::Action;
use std::net::SocketAddr;

#[test]
fn a_million_fresh_call_ids_stay_within_the_dialog_and_transaction_caps() {
    let mut cfg = EngineConfig::default();
    cfg.dialogs.max_entries = 10_000;
    cfg.dialogs.max_bytes = 4 << 20;
    cfg.transactions.max_entries = 1_000_000;
    cfg.transactions.max_bytes = 2 << 20; // the byte cap is the tighter one here
    let mut e = Engine::new(cfg.clone(), Keyer::with_keys(9, 9));
    let dialog_cap = e.dialogs().capacity();
    let tx_cap = e.transactions().capacity();
    assert!(dialog_cap <= 10_000);
    assert!(tx_cap < 1_000_000, "the byte cap must bound the entry count");

    let p = CallParams { call_id: "00000000-flood@attacker".into(), ..Default::default() };
    let template = fixtures::complete_call(&p)[4].1.clone();
    let at = template.windows(8).position(|w| w == b"00000000").expect("call-id in template");
    let branch_at = template.windows(7).position(|w| w == b"z9hG4bK").expect("branch") + 7;
    let src: SocketAddr = "10.77.0.1:5060".parse().unwrap();
    let dst: SocketAddr = "10.77.0.2:5060".parse().unwrap();
    let mut frame = fixtures::udp_frame(src, dst, &template);
    let off = frame.len() - template.len();
    let n = 1_000_000u64;
    for i in 0..n {
        // Fresh Call-ID and branch per INVITE: a new dialog and a new transaction each time.
        let hex = format!("{i:08x}");
        frame[off + at..off + at + 8].copy_from_slice(hex.as_bytes());
        frame[off + branch_at..off + branch_at + 8].copy_from_slice(hex.as_bytes());
        match e.handle(1_000_000_000 + i * 1000, &frame, i) {
            Outcome::Judged(j) => assert_eq!(j.verdict.action, Action::Forward),
            _ => unreachable!(),
        }
        if i % 100_000 == 0 {
            assert!(e.dialogs().len() <= dialog_cap);
            assert!(e.transactions().len() <= tx_cap);
        }
    }
    let st = e.state_stats();
    assert_eq!(st.dialogs, n, "every INVITE created a dialog");
    assert_eq!(e.dialogs().len(), dialog_cap);
    assert_eq!(e.transactions().len(), tx_cap);
    assert_eq!(st.dialog_table.evicted, n - dialog_cap as u64);
    assert_eq!(st.transaction_table.evicted, n - tx_cap as u64);
    assert!(e.dialogs().memory_bytes() <= cfg.dialogs.max_bytes);
    assert!(e.transactions().memory_bytes() <= cfg.transactions.max_bytes);
}
