//! Replays the kept fuzz corpus and every recorded crash (`fuzz/corpus/<target>`,
//! `fuzz/regressions/<target>`) through the fuzz targets' bodies, so a crash once found stays
//! fixed on the stable toolchain without libFuzzer.

use std::path::Path;

fn replay(target: &str, run: fn(&[u8])) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let mut n = 0;
    for dir in ["corpus", "regressions"] {
        let d = root.join(dir).join(target);
        let Ok(entries) = std::fs::read_dir(&d) else { continue };
        for e in entries {
            let p = e.unwrap().path();
            if p.file_name().is_some_and(|n| n.to_string_lossy().starts_with('.')) {
                continue;
            }
            let data = std::fs::read(&p).unwrap();
            let r = std::panic::catch_unwind(|| run(&data));
            assert!(r.is_ok(), "{} panics the {target} target", p.display());
            n += 1;
        }
    }
    assert!(n > 0, "no corpus for {target} under {}", root.display());
    eprintln!("fuzz corpus: {n} inputs of {target} replayed");
}

#[test]
fn frame_corpus_and_regressions() {
    replay("frame", secsip::fuzz::frame);
}

#[test]
fn sip_corpus_and_regressions() {
    replay("sip", secsip::fuzz::sip);
}

#[test]
fn engine_corpus_and_regressions() {
    replay("engine", secsip::fuzz::engine);
}

#[test]
fn stream_corpus_and_regressions() {
    replay("stream", secsip::fuzz::stream);
}

#[test]
fn normal_corpus_and_regressions() {
    replay("normal", secsip::fuzz::normal);
}

#[test]
fn websocket_corpus_and_regressions() {
    replay("websocket", secsip::fuzz::websocket);
}
