//! Normalised and every-occurrence matching, end to end: spellings of a premium number the
//! PBX behind would dial, a second Contact pointing at a protected gateway, SQL in a later
//! Contact or header, each sent as a crafted UDP datagram from the client namespace through
//! the appliance with the shipped rules, next to its honest twin. The server's `eth0` is
//! sniffed, so a test sees exactly which messages crossed.
//!
//! One testbed at a time (a static lock); without root they print SKIPPED unless
//! `SECSIP_REQUIRE_NETNS=1`.

#[path = "common/appliance.rs"]
mod appliance;
#[path = "common/craft.rs"]
mod craft;

use appliance::{config_text, root, Daemon, Side, Testbed};
use craft::{FrameSpec, Ip, RawPort, Sniffer, L4};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner())
}

const CLIENT: &str = "10.99.0.1";
const SERVER: &str = "10.99.0.2";

/// The shipped rules with the server listed as a protected gateway.
fn shipped_rules_protecting_the_server(work: &Path) -> PathBuf {
    let dir = work.join("rules-normalise");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("lists")).unwrap();
    for sub in ["", "lists"] {
        for e in std::fs::read_dir(root().join("rules").join(sub)).unwrap() {
            let p = e.unwrap().path();
            if p.is_file() {
                std::fs::copy(&p, dir.join(sub).join(p.file_name().unwrap())).unwrap();
            }
        }
    }
    std::fs::write(dir.join("lists/protected-gateways.txt"), format!("{SERVER}\n")).unwrap();
    dir
}

/// A request from the client whose Subject is `token` (unique per message, so the sniffer
/// tells them apart); `extra` is inserted as header lines.
fn request(method: &str, ruri: &str, token: &str, extra: &str) -> Vec<u8> {
    format!(
        "{method} {ruri} SIP/2.0\r\n\
Via: SIP/2.0/UDP {CLIENT}:5060;branch=z9hG4bK-{token}\r\n\
Max-Forwards: 70\r\n\
From: <sip:alice@{CLIENT}>;tag=t-{token}\r\n\
To: <sip:bob@{SERVER}>\r\n\
Call-ID: {token}@{CLIENT}\r\n\
CSeq: 1 {method}\r\n\
Subject: {token}\r\n\
{extra}User-Agent: Linphone/5.2\r\n\
Content-Length: 0\r\n\r\n"
    )
    .into_bytes()
}

/// One case: a message, whether it must cross, and the rule that must stop it otherwise.
/// `token` is its Subject line, which only the request carries (a 403 the appliance sends
/// back, and the client's ICMP for it, copy Via, From, To and Call-ID but not Subject).
struct Case {
    token: String,
    payload: Vec<u8>,
    stopped_by: Option<&'static str>,
}

fn attack(token: &str, payload: Vec<u8>, rule: &'static str) -> Case {
    Case { token: format!("Subject: {token}\r\n"), payload, stopped_by: Some(rule) }
}

fn honest(token: &str, payload: Vec<u8>) -> Case {
    Case { token: format!("Subject: {token}\r\n"), payload, stopped_by: None }
}

/// Sends every case through the appliance and checks each: honest twins cross, attacks do
/// not, and each attack's rule fired.
fn run(name: &str, cases: &[Case]) {
    let _g = serial();
    let Some(tb) = Testbed::up(name) else { return };
    let rules = shipped_rules_protecting_the_server(&tb.work);
    let d = Daemon::start(&tb, name, &config_text(&rules, ""), &[]);
    let sniff = Sniffer::start(&tb, Side::Server, "eth0");
    let tx = RawPort::open(&tb, Side::Client, "eth0");
    for c in cases {
        tx.send(&FrameSpec::client_to_server(Ip::v4(CLIENT, SERVER), L4::udp(5060, 5060, &c.payload)).build());
        std::thread::sleep(Duration::from_millis(20));
    }
    for c in cases.iter().filter(|c| c.stopped_by.is_none()) {
        assert!(sniff.wait_for(c.token.as_bytes(), Duration::from_secs(3)), "honest {} did not cross:\n{}", c.token, String::from_utf8_lossy(&c.payload));
    }
    std::thread::sleep(Duration::from_millis(500));
    for c in cases.iter().filter(|c| c.stopped_by.is_some()) {
        let crossed = sniff.with(c.token.as_bytes());
        assert!(crossed.is_empty(), "attack {} crossed:\n{}\nframes: {:?}", c.token, String::from_utf8_lossy(&c.payload), crossed.iter().map(|f| String::from_utf8_lossy(f).into_owned()).collect::<Vec<_>>());
    }
    let s = d.stats();
    let hits = &s["rule_hits"];
    for c in cases {
        if let Some(rule) = c.stopped_by {
            let n = hits.get(rule).and_then(Value::as_u64).unwrap_or(0);
            assert!(n > 0, "{}: rule {rule} never fired: {hits}", c.token);
        }
    }
    let (st, log) = d.stop();
    assert!(st.success(), "{log}");
}

#[test]
fn premium_numbers_in_every_spelling_are_rejected_and_ordinary_numbers_cross() {
    let inv = |token: &str, ruri: &str| request("INVITE", ruri, token, "");
    let fraud = "toll-fraud-destination";
    run(
        "nm-numbers",
        &[
            attack("num-plain-a", inv("num-plain-a", &format!("sip:+88216012345@{SERVER}")), fraud),
            attack("num-pct-a", inv("num-pct-a", &format!("sip:%2B88216012345@{SERVER}")), fraud),
            attack("num-phone-a", inv("num-phone-a", &format!("sip:+882-16-012-345@{SERVER};user=phone")), fraud),
            attack("num-tel-a", inv("num-tel-a", "tel:+882-16-(012)-345"), fraud),
            attack("num-ctx-a", inv("num-ctx-a", "tel:16-012-345;phone-context=+882"), fraud),
            attack("num-011-a", inv("num-011-a", &format!("sip:011.882.16.012.345@{SERVER}")), fraud),
            attack("num-enc-a", inv("num-enc-a", &format!("sip:%0d882@{SERVER}")), "malformed-encoding"),
            attack("num-nul-a", inv("num-nul-a", &format!("sip:+88216012345%00x@{SERVER}")), fraud),
            honest("num-plain-h", inv("num-plain-h", &format!("sip:+33123456789@{SERVER}"))),
            honest("num-pct-h", inv("num-pct-h", &format!("sip:%2B33123456789@{SERVER}"))),
            honest("num-phone-h", inv("num-phone-h", &format!("sip:+33-1-23-45-67-89@{SERVER};user=phone"))),
            honest("num-tel-h", inv("num-tel-h", "tel:+33-1-(23)-45-67-89")),
            honest("num-utf8-h", inv("num-utf8-h", &format!("sip:caf%C3%A9@{SERVER}"))),
        ],
    );
}

#[test]
fn a_later_contact_or_header_is_judged_like_the_first() {
    let reg = |token: &str, contacts: &str| request("REGISTER", &format!("sip:{SERVER}"), token, contacts);
    let opt = |token: &str, extra: &str| request("OPTIONS", &format!("sip:100@{SERVER}"), token, extra);
    let hijack = "register-contact-hijack";
    let sqli = "sql-injection";
    run(
        "nm-occur",
        &[
            attack("reg-line-a", reg("reg-line-a", &format!("Contact: <sip:alice@{CLIENT}>\r\nContact: <sip:alice@{SERVER}:5060>\r\n")), hijack),
            attack("reg-comma-a", reg("reg-comma-a", &format!("Contact: <sip:alice@{CLIENT}>, <sip:alice@{SERVER}>;expires=60\r\n")), hijack),
            honest("reg-two-h", reg("reg-two-h", &format!("Contact: <sip:alice@{CLIENT}>\r\nContact: <sip:alice@10.99.0.7:5062>\r\n"))),
            attack("sql-contact-a", opt("sql-contact-a", &format!("Contact: <sip:alice@{CLIENT}>\r\nContact: <sip:x'%20or%20'1'='1@{CLIENT}>\r\n")), sqli),
            honest("sql-contact-h", opt("sql-contact-h", &format!("Contact: <sip:alice@{CLIENT}>\r\nContact: \"O'Brien\" <sip:obrien@{CLIENT}>\r\n"))),
            attack("sql-header-a", opt("sql-header-a", "X-Account: 42' union select password from subscriber --\r\n"), sqli),
            honest("sql-header-h", opt("sql-header-h", "X-Account: 42, O'Neil's line\r\n")),
            honest("ua-second-h", opt("ua-second-h", "User-Agent: polite-phone\r\n")),
            // Last: a scanner is banned, and so would be every message after it.
            attack("ua-second-a", opt("ua-second-a", "User-Agent: polite-phone\r\nUser-Agent: friendly-scanner\r\n"), "scanner-user-agent"),
        ],
    );
}
