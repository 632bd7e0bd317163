//! Micro-benchmarks of the vault and the handle index, the CPU work inside every
//! redemption: opening a grant's sealed secret (unwrap the data key, then decrypt), sealing
//! one (a fresh data key, two AES-256-GCM encryptions), and the SHA-256 handle digest the
//! store is searched by. Plaintext is a real `GrantSecret` (an API-key grant, as JSON).
//!
//! `cargo bench --bench crypto`. Under `cargo test --all-targets` Criterion runs each
//! routine once (test mode), so CI stays fast.

use std::collections::BTreeMap;
use std::hint::black_box;

use consent_broker::domain::{Credential, GrantSecret, Handle};
use consent_broker::vault::{Kek, KeyId, Keyring, SealContext, Vault};
use criterion::{Criterion, criterion_group, criterion_main};

fn vault() -> Vault {
    let id: KeyId = "k1".parse().expect("key id");
    let keyring =
        Keyring::new(id.clone(), BTreeMap::from([(id, Kek::generate())])).expect("keyring");
    Vault::new(keyring)
}

fn context() -> SealContext<'static> {
    SealContext {
        grant_id: "grt_7Yh2kQ9xVbN4mP1sLw8rTa",
        service: "svc",
        subject: "bench-user@example.com",
        provider: "acme",
    }
}

fn crypto(c: &mut Criterion) {
    let vault = vault();
    let handle = Handle::generate();
    let secret = GrantSecret {
        handle: handle.expose().to_owned(),
        credential: Credential::ApiKey {
            api_key: "acme_live_4f9a8b7c6d5e4f3a2b1c".into(),
            header: "X-Acme-Key".into(),
        },
    };
    let plain = serde_json::to_vec(&secret).expect("plaintext");
    let sealed = vault.seal(context(), &plain).expect("seal");

    c.bench_function("vault seal (grant secret)", |b| {
        b.iter(|| vault.seal(black_box(context()), black_box(&plain)))
    });
    c.bench_function("vault open (grant secret)", |b| {
        b.iter(|| vault.open(black_box(context()), black_box(&sealed)))
    });
    c.bench_function("vault open + parse GrantSecret", |b| {
        b.iter(|| {
            let plain = vault.open(black_box(context()), black_box(&sealed)).ok()?;
            serde_json::from_slice::<GrantSecret>(&plain).ok()
        })
    });
    let presented = handle.expose().to_owned();
    c.bench_function("handle parse + SHA-256 digest", |b| {
        b.iter(|| Handle::parse(black_box(&presented)).map(|h| h.digest()))
    });
}

criterion_group!(benches, crypto);
criterion_main!(benches);
