//! Parser and engine throughput on the realistic message mix of `secsip::fixtures`.
//!
//! `parse` measures the SIP parser with validation on each message of the mix (the cost the
//! engine pays per message before state); `engine` measures the whole per-frame path: L2-L4
//! decode, parse, validate, transaction and dialog tracking, verdict. Criterion reports time
//! per iteration; one iteration is the whole mix, and throughput is in messages.

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use secsip::config::EngineConfig;
use secsip::engine::{Engine, Outcome};
use secsip::fixtures;
use secsip::hash::Keyer;
use secsip::sip::{Limits, Parser};
use std::hint::black_box;

fn bench_parse(c: &mut Criterion) {
    let mix = fixtures::message_mix();
    let mut parser = Parser::new(Limits::default());
    let mut g = c.benchmark_group("parse");
    g.throughput(Throughput::Elements(mix.len() as u64));
    g.bench_function("message_mix", |b| {
        b.iter(|| {
            let mut bad = 0usize;
            for m in &mix {
                let msg = parser.parse(black_box(m));
                bad += (!msg.reasons().is_empty()) as usize;
                black_box(msg.call_id());
            }
            assert_eq!(bad, 0, "the mix must be valid SIP");
        })
    });
    g.finish();
}

fn bench_engine(c: &mut Criterion) {
    let mix = fixtures::message_mix();
    let src = "10.77.0.1:5060".parse().unwrap();
    let dst = "10.77.0.2:5060".parse().unwrap();
    let frames: Vec<Vec<u8>> = mix.iter().map(|m| fixtures::udp_frame(src, dst, m)).collect();
    let mut g = c.benchmark_group("engine");
    g.throughput(Throughput::Elements(frames.len() as u64));
    g.bench_function("message_mix", |b| {
        b.iter_batched_ref(
            || Engine::new(EngineConfig::default(), Keyer::with_keys(1, 2)),
            |engine| {
                let mut now = 1_000_000_000u64;
                for (i, f) in frames.iter().enumerate() {
                    now += 1000;
                    match engine.handle(now, black_box(f), i as u64) {
                        Outcome::Judged(j) => {
                            black_box(j.verdict);
                        }
                        _ => unreachable!("the mix has no fragments"),
                    }
                }
            },
            BatchSize::LargeInput,
        )
    });
    g.finish();
}

criterion_group!(benches, bench_parse, bench_engine);
criterion_main!(benches);
