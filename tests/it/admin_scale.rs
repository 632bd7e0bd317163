//! How the admin grant list behaves with 100 000 grants on the embedded store: a page is
//! one range read of an index, so it stays fast. Prints the time of a few pages; run with
//! `cargo test --release --test it admin_scale -- --ignored --nocapture` (it is slow to set
//! up, so it is not part of the default run). It asserts the results always, and the
//! time budget (docs/performance.md) per page in release builds only (a debug build is many times slower).

use std::sync::Arc;
use std::time::{Duration, Instant};

use consent_broker::domain::{
    Elicitation, ElicitationId, ElicitationStatus, Grant, GrantId, GrantStatus, Handle, ProviderId,
    ProviderKind, Scopes, ServiceId, Subject,
};
use consent_broker::store::admin::GrantFilter;
use consent_broker::store::{Settlement, Stores};
use consent_broker::vault::{Kek, KeyId, Keyring, SealContext, Vault};

const GRANTS: usize = 100_000;

/// The most one page of the grant list may take (docs/performance.md, "Admin grant list"), in a release build.
const PAGE_BUDGET: Duration = Duration::from_millis(20);

/// Asserts `took` is within [`PAGE_BUDGET`] in a release build; a debug build only prints.
fn assert_within_budget(what: &str, took: Duration) {
    if cfg!(not(debug_assertions)) {
        assert!(
            took < PAGE_BUDGET,
            "{what} took {took:?}, over its budget of {PAGE_BUDGET:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "sets up 100 000 grants; run on demand"]
async fn a_page_of_grants_stays_fast_with_100k_grants() {
    let dir = tempfile::tempdir().unwrap();
    let store =
        consent_broker::store::embedded::EmbeddedStore::open(&dir.path().join("t.redb")).unwrap();
    let s = Stores::from_backend(Arc::new(store));
    let kid = KeyId::try_from("k1".to_owned()).unwrap();
    let vault = Arc::new(Vault::new(
        Keyring::new(kid.clone(), [(kid, Kek::generate())].into()).unwrap(),
    ));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for worker in 0..8 {
        let (s, vault) = (s.clone(), vault.clone());
        tasks.push(tokio::spawn(async move {
            for i in (worker..GRANTS).step_by(8) {
                let now = consent_broker::domain::now();
                let e = Elicitation {
                    id: ElicitationId::generate(),
                    service: ServiceId::parse(["svc-a", "svc-b"][i % 2]).unwrap(),
                    subject: Subject::parse(format!("user{}", i % 5_000)).unwrap(),
                    provider: ProviderId::parse(["acme", "github", "jira"][i % 3]).unwrap(),
                    scopes: Scopes::default(),
                    message: None,
                    created_at: now,
                    expires_at: now + time::Duration::minutes(10),
                    status: ElicitationStatus::Pending,
                    grant_id: None,
                    reason: None,
                };
                s.elicitations.insert_elicitation(&e).await.unwrap();
                let id = GrantId::generate();
                let ctx = SealContext {
                    grant_id: id.as_str(),
                    service: e.service.as_str(),
                    subject: e.subject.as_str(),
                    provider: e.provider.as_str(),
                };
                let grant = Grant {
                    id: id.clone(),
                    handle_digest: Handle::generate().digest(),
                    service: e.service.clone(),
                    subject: e.subject.clone(),
                    provider: e.provider.clone(),
                    kind: ProviderKind::ApiKey,
                    scopes: Scopes::default(),
                    status: GrantStatus::Active,
                    created_at: now,
                    last_used_at: None,
                    use_count: 0,
                    revoked_at: None,
                    terms_version: None,
                    sealed: vault.seal(ctx, b"secret").unwrap(),
                    superseded_by: None,
                    reauth_elicitation: None,
                    upstream_revocation: None,
                    metadata: Default::default(),
                    expires_at: None,
                    elicitation: None,
                };
                s.elicitations
                    .settle(&e.id, Settlement::Completed(Box::new(grant)), now)
                    .await
                    .unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    println!("stored {GRANTS} grants in {:?}", started.elapsed());

    let cases = [
        ("all grants", GrantFilter::default()),
        (
            "one provider",
            GrantFilter {
                provider: Some(ProviderId::parse("github").unwrap()),
                ..Default::default()
            },
        ),
        (
            "one user",
            GrantFilter {
                subject: Some(Subject::parse("user42").unwrap()),
                ..Default::default()
            },
        ),
        (
            "revoked (none: the scan budget ends the page)",
            GrantFilter {
                status: Some(GrantStatus::Revoked),
                ..Default::default()
            },
        ),
    ];
    for (name, filter) in cases {
        let t = Instant::now();
        let first = s.admin.list_grants(&filter, None, 50).await.unwrap();
        let first_time = t.elapsed();
        let t = Instant::now();
        let second = s
            .admin
            .list_grants(&filter, first.next.as_ref(), 50)
            .await
            .unwrap();
        let second_time = t.elapsed();
        println!(
            "{name}: first page {} grants in {first_time:?}, second page {} in {second_time:?}",
            first.grants.len(),
            second.grants.len(),
        );
        assert!(first.grants.iter().all(|g| filter.matches(g)));
        assert_within_budget(&format!("{name}: first page"), first_time);
        assert_within_budget(&format!("{name}: second page"), second_time);
    }
    let t = Instant::now();
    let counts = s.admin.count_grants().await.unwrap();
    println!("counts in {:?}", t.elapsed());
    assert_eq!(counts.iter().map(|c| c.count).sum::<u64>(), GRANTS as u64);
}
