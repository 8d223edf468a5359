//! What signing costs per request, HMAC (`v1`) next to ed25519 (`v1a`), for bodies of 1 KiB
//! and 10 KiB: `cargo bench -p deskhook --bench signature`. The engine signs once per
//! attempt (the timestamp is part of what is signed) with a [`Signer`] made per endpoint.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use deskhook::Secret;
use deskhook::signature::Signer;

fn bench(c: &mut Criterion) {
    let hmac = Signer::new(vec![Secret::generate().unwrap()]).unwrap();
    let ed25519 = Signer::new(vec![Secret::generate_ed25519().unwrap()]).unwrap();
    let mut group = c.benchmark_group("sign");
    for size in [1024, 10 * 1024] {
        let body = vec![b'x'; size];
        group.bench_function(format!("hmac/{size}"), |b| {
            b.iter(|| black_box(hmac.sign("msg_2KWPBgLlAfxdpx2AI54pPJ85f4W", 1674087231, &body)))
        });
        group.bench_function(format!("ed25519/{size}"), |b| {
            b.iter(|| black_box(ed25519.sign("msg_2KWPBgLlAfxdpx2AI54pPJ85f4W", 1674087231, &body)))
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
