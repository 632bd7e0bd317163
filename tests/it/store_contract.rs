//! The contract every store backend keeps, written once and run against each backend
//! (`contract_tests!` below): the embedded store, a single Redis server and a 3-node Redis
//! Cluster, each test on its own fresh store (Redis tests start their own servers).

use crate::common;

use std::sync::Arc;
use std::time::Instant;

use common::redis::{RedisCluster, RedisServer};
use consent_broker::config::settings::{RedisSettings, RedisTarget, RedisUrl};

use consent_broker::domain::service::{mint, prefixes};
use consent_broker::domain::{
    Actor, AuditAction, AuditEvent, Elicitation, ElicitationId, ElicitationStatus, FlowRecord,
    Grant, GrantChange, GrantId, GrantStatus, Handle, InitialAccessToken, Outcome, ProviderId,
    ProviderKind, RegisteredBy, RegisteredService, Scope, ScopeGrants, Scopes, ServiceId,
    ServiceStatus, Subject, SubjectProof, TokenDigest,
};
use consent_broker::store::admin::{AuditFilter, GrantFilter, created_ms};
use consent_broker::store::redis::RedisStore;
use consent_broker::store::{LockToken, SeenKey, Settled, Settlement, Stores, Updated};
use consent_broker::vault::{Kek, KeyId, Keyring, SealContext, Vault};
use time::Duration;

fn elicitation(subject: &str, expires_in: Duration) -> Elicitation {
    let now = consent_broker::domain::now();
    Elicitation {
        id: ElicitationId::generate(),
        service: ServiceId::parse("svc").unwrap(),
        subject: Subject::parse(subject).unwrap(),
        provider: ProviderId::parse("acme").unwrap(),
        scopes: Scopes::default(),
        message: Some("hello".into()),
        created_at: now,
        expires_at: now + expires_in,
        status: ElicitationStatus::Pending,
        grant_id: None,
        reason: None,
    }
}

fn grant_for(e: &Elicitation) -> (Grant, Handle) {
    let keyring = Keyring::new(
        KeyId::try_from("k1".to_owned()).unwrap(),
        [(KeyId::try_from("k1".to_owned()).unwrap(), Kek::generate())].into(),
    )
    .unwrap();
    let id = GrantId::generate();
    let handle = Handle::generate();
    let ctx = SealContext {
        grant_id: id.as_str(),
        service: e.service.as_str(),
        subject: e.subject.as_str(),
        provider: e.provider.as_str(),
    };
    let sealed = Vault::new(keyring).seal(ctx, b"secret").unwrap();
    let grant = Grant {
        id,
        handle_digest: handle.digest(),
        service: e.service.clone(),
        subject: e.subject.clone(),
        provider: e.provider.clone(),
        kind: ProviderKind::ApiKey,
        scopes: e.scopes.clone(),
        status: GrantStatus::Active,
        created_at: consent_broker::domain::now(),
        last_used_at: None,
        use_count: 0,
        revoked_at: None,
        terms_version: None,
        sealed,
        superseded_by: None,
        reauth_elicitation: None,
        upstream_revocation: None,
        metadata: Default::default(),
        expires_at: None,
        elicitation: None,
    };
    (grant, handle)
}

pub async fn an_elicitation_reads_back_as_stored(s: Stores) {
    let e = elicitation("alice", Duration::minutes(10));
    s.elicitations.insert_elicitation(&e).await.unwrap();
    assert_eq!(s.elicitations.elicitation(&e.id).await.unwrap(), Some(e));
    assert_eq!(
        s.elicitations
            .elicitation(&ElicitationId::generate())
            .await
            .unwrap(),
        None
    );
}

pub async fn completing_stores_the_grant_atomically_and_only_once(s: Stores) {
    let e = elicitation("alice", Duration::minutes(10));
    s.elicitations.insert_elicitation(&e).await.unwrap();
    let (grant, handle) = grant_for(&e);
    let now = consent_broker::domain::now();
    let Settled::Now(done) = s
        .elicitations
        .settle(&e.id, Settlement::Completed(Box::new(grant.clone())), now)
        .await
        .unwrap()
    else {
        panic!("first settle settles");
    };
    assert_eq!(done.status, ElicitationStatus::Completed);
    assert_eq!(done.grant_id.as_ref(), Some(&grant.id));
    assert_eq!(
        s.grants.grant(&grant.id).await.unwrap(),
        Some(grant.clone())
    );
    assert_eq!(
        s.grants.grant_by_handle(&handle.digest()).await.unwrap(),
        Some(grant.clone())
    );

    // A second settlement changes nothing and stores no second grant.
    let (other, other_handle) = grant_for(&e);
    let again = s
        .elicitations
        .settle(&e.id, Settlement::Completed(Box::new(other.clone())), now)
        .await
        .unwrap();
    assert!(matches!(again, Settled::Already(ref x) if x.status == ElicitationStatus::Completed));
    assert_eq!(s.grants.grant(&other.id).await.unwrap(), None);
    assert_eq!(
        s.grants
            .grant_by_handle(&other_handle.digest())
            .await
            .unwrap(),
        None
    );
    assert!(matches!(
        s.elicitations
            .settle(&e.id, Settlement::Declined(None), now)
            .await
            .unwrap(),
        Settled::Already(_)
    ));
}

pub async fn an_expired_elicitation_cannot_be_settled(s: Stores) {
    let e = elicitation("alice", Duration::minutes(10));
    s.elicitations.insert_elicitation(&e).await.unwrap();
    let later = e.expires_at + Duration::seconds(1);
    let (grant, _) = grant_for(&e);
    let r = s
        .elicitations
        .settle(&e.id, Settlement::Completed(Box::new(grant.clone())), later)
        .await
        .unwrap();
    assert!(
        matches!(r, Settled::Already(ref x) if x.status_at(later) == ElicitationStatus::Expired)
    );
    assert_eq!(s.grants.grant(&grant.id).await.unwrap(), None);
    assert!(matches!(
        s.elicitations
            .settle(
                &ElicitationId::generate(),
                Settlement::Declined(None),
                later
            )
            .await
            .unwrap(),
        Settled::NotFound
    ));
}

pub async fn declining_and_failing_record_the_outcome(s: Stores) {
    let now = consent_broker::domain::now();
    let a = elicitation("alice", Duration::minutes(10));
    let b = elicitation("alice", Duration::minutes(10));
    s.elicitations.insert_elicitation(&a).await.unwrap();
    s.elicitations.insert_elicitation(&b).await.unwrap();
    s.elicitations
        .settle(&a.id, Settlement::Declined(None), now)
        .await
        .unwrap();
    s.elicitations
        .settle(&b.id, Settlement::Failed("access_denied".into()), now)
        .await
        .unwrap();
    assert_eq!(
        s.elicitations
            .elicitation(&a.id)
            .await
            .unwrap()
            .unwrap()
            .status,
        ElicitationStatus::Declined
    );
    let b = s.elicitations.elicitation(&b.id).await.unwrap().unwrap();
    assert_eq!(
        (b.status, b.reason.as_deref()),
        (ElicitationStatus::Failed, Some("access_denied"))
    );
}

pub async fn a_request_waiting_for_approval_keeps_its_grant_unusable_until_approved(s: Stores) {
    let e = elicitation("alice", Duration::minutes(10));
    s.elicitations.insert_elicitation(&e).await.unwrap();
    let (grant, _) = grant_for(&e);
    let grant = Grant {
        status: GrantStatus::AwaitingApproval,
        ..grant
    };
    let now = consent_broker::domain::now();
    // Approval before the user consented is not a transition.
    assert!(matches!(
        s.elicitations
            .settle(&e.id, Settlement::Approved, now)
            .await
            .unwrap(),
        Settled::Already(_)
    ));
    let until = now + Duration::days(3);
    let waiting = Settlement::AwaitingApproval {
        grant: Box::new(grant.clone()),
        until,
    };
    let Settled::Now(w) = s.elicitations.settle(&e.id, waiting, now).await.unwrap() else {
        panic!("a pending elicitation starts waiting");
    };
    assert_eq!(w.status, ElicitationStatus::AwaitingApproval);
    assert_eq!(
        w.expires_at, until,
        "the approval window replaces the link's expiry"
    );
    assert_eq!(
        s.grants.grant(&grant.id).await.unwrap(),
        Some(grant.clone())
    );
    // Past the link's own expiry it is still open, and the sweep keeps it.
    let after_link = e.expires_at + Duration::hours(1);
    let stored = s.elicitations.elicitation(&e.id).await.unwrap().unwrap();
    assert_eq!(
        stored.status_at(after_link),
        ElicitationStatus::AwaitingApproval
    );
    s.elicitations
        .sweep_elicitations(e.expires_at + Duration::hours(1))
        .await
        .unwrap();
    assert!(s.elicitations.elicitation(&e.id).await.unwrap().is_some());
    // The user cannot settle it again; an administrator's approval completes it.
    let (other, _) = grant_for(&e);
    assert!(matches!(
        s.elicitations
            .settle(&e.id, Settlement::Completed(Box::new(other)), after_link)
            .await
            .unwrap(),
        Settled::Already(_)
    ));
    let Settled::Now(done) = s
        .elicitations
        .settle(&e.id, Settlement::Approved, after_link)
        .await
        .unwrap()
    else {
        panic!("an administrator's approval settles it");
    };
    assert_eq!(done.status, ElicitationStatus::Completed);
    assert_eq!(done.grant_id.as_ref(), Some(&grant.id));
    let approved = s
        .grants
        .update_grant(&grant.id, GrantChange::Approve)
        .await
        .unwrap();
    assert!(matches!(approved, Updated::Applied(ref g) if g.status == GrantStatus::Active));
    assert!(matches!(
        s.grants
            .update_grant(&grant.id, GrantChange::Approve)
            .await
            .unwrap(),
        Updated::Unchanged(_)
    ));
}

pub async fn grants_are_listed_per_subject_newest_first(s: Stores) {
    let now = consent_broker::domain::now();
    let mut ids = Vec::new();
    for _ in 0..3 {
        let e = elicitation("grace", Duration::minutes(10));
        s.elicitations.insert_elicitation(&e).await.unwrap();
        let (g, _) = grant_for(&e);
        ids.push(g.id.clone());
        s.elicitations
            .settle(&e.id, Settlement::Completed(Box::new(g)), now)
            .await
            .unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    }
    // A subject that is a prefix of another must not see the other's grants.
    let e = elicitation("grace2", Duration::minutes(10));
    s.elicitations.insert_elicitation(&e).await.unwrap();
    s.elicitations
        .settle(&e.id, Settlement::Completed(Box::new(grant_for(&e).0)), now)
        .await
        .unwrap();
    let listed: Vec<GrantId> = s
        .grants
        .grants_of_subject(&Subject::parse("grace").unwrap())
        .await
        .unwrap()
        .into_iter()
        .map(|g| g.id)
        .collect();
    ids.reverse();
    assert_eq!(listed, ids);
}

pub async fn revoking_and_using_a_grant_update_it_in_place(s: Stores) {
    let e = elicitation("heidi", Duration::minutes(10));
    s.elicitations.insert_elicitation(&e).await.unwrap();
    let (g, handle) = grant_for(&e);
    let now = consent_broker::domain::now();
    s.elicitations
        .settle(&e.id, Settlement::Completed(Box::new(g.clone())), now)
        .await
        .unwrap();
    s.grants.record_use(&g.id, now).await.unwrap();
    s.grants.record_use(&g.id, now).await.unwrap();
    let used = s.grants.grant(&g.id).await.unwrap().unwrap();
    assert_eq!((used.use_count, used.last_used_at), (2, Some(now)));
    let revoked = s.grants.revoke_grant(&g.id, now).await.unwrap().unwrap();
    assert_eq!(
        (revoked.status, revoked.revoked_at),
        (GrantStatus::Revoked, Some(now))
    );
    let later = now + Duration::minutes(1);
    let again = s.grants.revoke_grant(&g.id, later).await.unwrap().unwrap();
    assert_eq!(
        again.revoked_at,
        Some(now),
        "revoking twice keeps the first time"
    );
    assert_eq!(
        s.grants
            .grant_by_handle(&handle.digest())
            .await
            .unwrap()
            .unwrap()
            .status,
        GrantStatus::Revoked
    );
    assert_eq!(
        s.grants
            .revoke_grant(&GrantId::generate(), now)
            .await
            .unwrap(),
        None
    );
}

/// A grant whose record already carries uses (as records written before use counts got
/// their own table on the embedded store do) keeps counting from them, and a later change
/// to the grant neither loses nor doubles them.
pub async fn a_grant_stored_with_uses_keeps_counting_from_them(s: Stores) {
    let e = elicitation("ivan", Duration::minutes(10));
    s.elicitations.insert_elicitation(&e).await.unwrap();
    let (mut g, _) = grant_for(&e);
    let now = consent_broker::domain::now();
    (g.use_count, g.last_used_at) = (7, Some(now - Duration::days(1)));
    s.elicitations
        .settle(&e.id, Settlement::Completed(Box::new(g.clone())), now)
        .await
        .unwrap();
    let stored = s.grants.grant(&g.id).await.unwrap().unwrap();
    assert_eq!((stored.use_count, stored.last_used_at), (7, g.last_used_at));

    s.grants.record_use(&g.id, now).await.unwrap();
    let revoked = s.grants.revoke_grant(&g.id, now).await.unwrap().unwrap();
    assert_eq!((revoked.use_count, revoked.last_used_at), (8, Some(now)));
    s.grants.record_use(&g.id, now).await.unwrap();
    let listed = s.grants.grants_of_subject(&g.subject).await.unwrap();
    assert_eq!(
        listed
            .iter()
            .map(|g| (g.use_count, g.last_used_at))
            .collect::<Vec<_>>(),
        [(9, Some(now))]
    );
}

pub async fn the_sweep_removes_only_what_expired_before_the_cutoff(s: Stores) {
    let old = elicitation("ivan", Duration::minutes(-120));
    let fresh = elicitation("ivan", Duration::minutes(10));
    s.elicitations.insert_elicitation(&old).await.unwrap();
    s.elicitations.insert_elicitation(&fresh).await.unwrap();
    let removed = s
        .elicitations
        .sweep_elicitations(consent_broker::domain::now() - Duration::minutes(60))
        .await
        .unwrap();
    assert_eq!(removed, 1);
    assert_eq!(s.elicitations.elicitation(&old.id).await.unwrap(), None);
    assert!(
        s.elicitations
            .elicitation(&fresh.id)
            .await
            .unwrap()
            .is_some()
    );
}

pub async fn audit_events_come_back_newest_first(s: Stores) {
    for action in ["one", "two", "three"] {
        s.audit
            .append(&AuditEvent::new(
                Actor::System,
                AuditAction::parse(action),
                Outcome::Success,
            ))
            .await
            .unwrap();
    }
    let recent: Vec<String> = s
        .audit
        .recent(2)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.action.to_string())
        .collect();
    assert_eq!(recent, ["three", "two"]);
}

pub async fn concurrent_settlements_let_exactly_one_win(s: Stores) {
    let e = elicitation("judy", Duration::minutes(10));
    s.elicitations.insert_elicitation(&e).await.unwrap();
    let now = consent_broker::domain::now();
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let (s, id, (g, _)) = (s.clone(), e.id.clone(), grant_for(&e));
            tokio::spawn(async move {
                s.elicitations
                    .settle(&id, Settlement::Completed(Box::new(g)), now)
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut winners = 0;
    for t in tasks {
        winners += usize::from(matches!(t.await.unwrap(), Settled::Now(_)));
    }
    assert_eq!(winners, 1);
    assert_eq!(
        s.grants.grants_of_subject(&e.subject).await.unwrap().len(),
        1
    );
}

pub async fn concurrent_uses_are_all_counted(s: Stores) {
    let e = elicitation("kim", Duration::minutes(10));
    s.elicitations.insert_elicitation(&e).await.unwrap();
    let (g, _) = grant_for(&e);
    let now = consent_broker::domain::now();
    s.elicitations
        .settle(&e.id, Settlement::Completed(Box::new(g.clone())), now)
        .await
        .unwrap();
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let (s, id) = (s.clone(), g.id.clone());
            tokio::spawn(async move { s.grants.record_use(&id, now).await.unwrap() })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    // A revocation meanwhile keeps the count, and the count keeps the revocation.
    s.grants.revoke_grant(&g.id, now).await.unwrap();
    s.grants.record_use(&g.id, now).await.unwrap();
    let stored = s.grants.grant(&g.id).await.unwrap().unwrap();
    assert_eq!(
        (stored.use_count, stored.status),
        (21, GrantStatus::Revoked)
    );
}

pub async fn a_redemption_counts_its_use_and_is_audited_together(s: Stores) {
    let e = elicitation("lee", Duration::minutes(10));
    s.elicitations.insert_elicitation(&e).await.unwrap();
    let (g, _) = grant_for(&e);
    let now = consent_broker::domain::now();
    s.elicitations
        .settle(&e.id, Settlement::Completed(Box::new(g.clone())), now)
        .await
        .unwrap();
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let (s, g) = (s.clone(), g.clone());
            tokio::spawn(async move {
                let event =
                    AuditEvent::new(Actor::System, AuditAction::GrantRedeemed, Outcome::Success)
                        .grant(&g);
                s.redemptions
                    .record_redemption(&g.id, now, &event)
                    .await
                    .unwrap()
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let stored = s.grants.grant(&g.id).await.unwrap().unwrap();
    assert_eq!((stored.use_count, stored.last_used_at), (20, Some(now)));
    let audited = s.audit.recent(100).await.unwrap();
    assert_eq!(
        audited
            .iter()
            .filter(|a| a.action == AuditAction::GrantRedeemed && a.grant.as_ref() == Some(&g.id))
            .count(),
        20,
        "every redemption is in the audit trail"
    );
    // An unknown grant counts nothing, yet its event is still recorded.
    let (other, _) = grant_for(&elicitation("lee", Duration::minutes(10)));
    let event =
        AuditEvent::new(Actor::System, AuditAction::GrantRedeemed, Outcome::Success).grant(&other);
    s.redemptions
        .record_redemption(&other.id, now, &event)
        .await
        .unwrap();
    assert!(s.grants.grant(&other.id).await.unwrap().is_none());
    assert_eq!(
        s.audit.recent(1).await.unwrap()[0].grant.as_ref(),
        Some(&other.id)
    );
}

pub async fn a_lock_has_one_holder_until_that_holder_releases_it(s: Stores) {
    let ttl = std::time::Duration::from_secs(60);
    let first = s.locks.try_lock("refresh:g1", ttl).await.unwrap();
    let first = first.expect("a free lock is taken");
    assert!(
        s.locks.try_lock("refresh:g1", ttl).await.unwrap().is_none(),
        "a held lock is refused"
    );
    assert!(
        s.locks.try_lock("refresh:g2", ttl).await.unwrap().is_some(),
        "another name is another lock"
    );
    let stranger = LockToken::generate();
    assert!(!s.locks.unlock("refresh:g1", &stranger).await.unwrap());
    assert!(
        s.locks.try_lock("refresh:g1", ttl).await.unwrap().is_none(),
        "a wrong token releases nothing"
    );
    assert!(s.locks.unlock("refresh:g1", &first).await.unwrap());
    assert!(
        !s.locks.unlock("refresh:g1", &first).await.unwrap(),
        "releasing twice does nothing"
    );
    assert!(s.locks.try_lock("refresh:g1", ttl).await.unwrap().is_some());
}

pub async fn a_lapsed_lock_is_free_and_its_old_token_cannot_release_it(s: Stores) {
    let short = std::time::Duration::from_millis(50);
    let long = std::time::Duration::from_secs(60);
    let stale = s
        .locks
        .try_lock("refresh:g3", short)
        .await
        .unwrap()
        .unwrap();
    let deadline = Instant::now() + std::time::Duration::from_secs(10);
    let next = loop {
        if let Some(t) = s.locks.try_lock("refresh:g3", long).await.unwrap() {
            break t;
        }
        assert!(Instant::now() < deadline, "the lock never lapsed");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    assert!(
        !s.locks.unlock("refresh:g3", &stale).await.unwrap(),
        "a lapsed holder cannot release its successor's lock"
    );
    assert!(
        s.locks
            .try_lock("refresh:g3", long)
            .await
            .unwrap()
            .is_none()
    );
    assert!(s.locks.unlock("refresh:g3", &next).await.unwrap());
}

pub async fn concurrent_lock_attempts_let_exactly_one_win(s: Stores) {
    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let s = s.clone();
            tokio::spawn(async move {
                s.locks
                    .try_lock("refresh:g4", std::time::Duration::from_secs(60))
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut winners = 0;
    for t in tasks {
        winners += usize::from(t.await.unwrap().is_some());
    }
    assert_eq!(winners, 1);
}

pub async fn health_answers(s: Stores) {
    s.health.ping().await.unwrap();
}

pub async fn a_flow_is_taken_once_and_not_after_it_expires(s: Stores) {
    let e = elicitation("kim", Duration::minutes(10));
    let now = consent_broker::domain::now();
    let flow = |expires_at| FlowRecord {
        elicitation: e.id.clone(),
        binding_sha256: "b".repeat(64),
        expires_at,
        sealed_verifier: grant_for(&e).0.sealed,
    };
    s.flows
        .put_flow("live", &flow(now + Duration::minutes(10)))
        .await
        .unwrap();
    let taken = s
        .flows
        .take_flow("live", now)
        .await
        .unwrap()
        .expect("a stored flow is found");
    assert_eq!(taken.elicitation, e.id);
    assert!(
        s.flows.take_flow("live", now).await.unwrap().is_none(),
        "taken once only"
    );
    assert!(
        s.flows
            .take_flow("never-stored", now)
            .await
            .unwrap()
            .is_none()
    );
    s.flows
        .put_flow("stale", &flow(now + Duration::seconds(5)))
        .await
        .unwrap();
    let later = now + Duration::seconds(6);
    assert!(
        s.flows.take_flow("stale", later).await.unwrap().is_none(),
        "expired flows are not handed out"
    );
}

pub async fn concurrent_takes_of_one_flow_let_exactly_one_win(s: Stores) {
    let e = elicitation("lou", Duration::minutes(10));
    let now = consent_broker::domain::now();
    let flow = FlowRecord {
        elicitation: e.id.clone(),
        binding_sha256: "c".repeat(64),
        expires_at: now + Duration::minutes(10),
        sealed_verifier: grant_for(&e).0.sealed,
    };
    s.flows.put_flow("contested", &flow).await.unwrap();
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let s = s.clone();
            tokio::spawn(
                async move { s.flows.take_flow("contested", now).await.unwrap().is_some() },
            )
        })
        .collect();
    let mut winners = 0;
    for t in tasks {
        winners += usize::from(t.await.unwrap());
    }
    assert_eq!(winners, 1);
}

pub async fn a_one_time_id_is_first_seen_once_until_it_expires_or_is_forgotten(s: Stores) {
    let now = consent_broker::domain::now();
    let key = SeenKey::new("https://ssf.example", "jti-1");
    assert!(
        s.seen
            .first_sighting(&key, now + Duration::hours(1))
            .await
            .unwrap()
    );
    assert!(
        !s.seen
            .first_sighting(&key, now + Duration::hours(1))
            .await
            .unwrap(),
        "a second sighting is a replay"
    );
    let other_issuer = SeenKey::new("https://other.example", "jti-1");
    assert!(
        s.seen
            .first_sighting(&other_issuer, now + Duration::hours(1))
            .await
            .unwrap(),
        "ids are scoped by issuer"
    );
    s.seen.forget(&key).await.unwrap();
    assert!(
        s.seen
            .first_sighting(&key, now + Duration::hours(1))
            .await
            .unwrap(),
        "a forgotten id is first seen again"
    );
    let brief = SeenKey::new("https://ssf.example", "jti-brief");
    let soon = consent_broker::domain::now() + Duration::milliseconds(300);
    assert!(s.seen.first_sighting(&brief, soon).await.unwrap());
    tokio::time::sleep(std::time::Duration::from_millis(600)).await;
    assert!(
        s.seen
            .first_sighting(&brief, now + Duration::hours(1))
            .await
            .unwrap(),
        "an expired id is free again"
    );
}

pub async fn concurrent_sightings_of_one_id_let_exactly_one_be_first(s: Stores) {
    let until = consent_broker::domain::now() + Duration::hours(1);
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let s = s.clone();
            tokio::spawn(async move {
                let key = SeenKey::new("https://ssf.example", "contested");
                s.seen.first_sighting(&key, until).await.unwrap()
            })
        })
        .collect();
    let mut firsts = 0;
    for t in tasks {
        firsts += usize::from(t.await.unwrap());
    }
    assert_eq!(firsts, 1);
}

fn registered(id: &str) -> (RegisteredService, String) {
    let (token, digest) = mint(prefixes::SERVICE_TOKEN);
    let (_, registration) = mint(prefixes::REGISTRATION_TOKEN);
    let service = RegisteredService {
        id: ServiceId::parse(id).unwrap(),
        name: format!("Service {id}"),
        contacts: vec!["ops@example.com".into()],
        status: ServiceStatus::Pending,
        requested: [(
            ProviderId::parse("acme").unwrap(),
            [Scope::parse("read").unwrap()].into(),
        )]
        .into(),
        allow: ScopeGrants::new(),
        resource: None,
        subject_proof: SubjectProof::Off,
        token_sha256: digest,
        previous_token: None,
        registration_token_sha256: Some(registration),
        registered_by: RegisteredBy::InitialToken {
            label: "partner".into(),
        },
        created_at: consent_broker::domain::now(),
        approved_by: None,
        webhook: None,
    };
    (service, token)
}

pub async fn a_registered_service_is_found_by_id_and_by_each_credential_it_holds(s: Stores) {
    let (svc, token) = registered("reg-a");
    assert!(s.services.insert_service(&svc).await.unwrap());
    let (other, _) = registered("reg-a");
    assert!(
        !s.services.insert_service(&other).await.unwrap(),
        "an id is registered once"
    );
    assert_eq!(
        s.services.registered_service(&svc.id).await.unwrap(),
        Some(svc.clone())
    );
    let by_token = s
        .services
        .service_by_credential(&TokenDigest::of(&token))
        .await
        .unwrap();
    assert_eq!(by_token, Some(svc.clone()));
    let by_registration = s
        .services
        .service_by_credential(&svc.registration_token_sha256.unwrap())
        .await
        .unwrap();
    assert_eq!(by_registration.map(|s| s.id), Some(svc.id.clone()));
    assert_eq!(
        s.services
            .service_by_credential(&TokenDigest::of("cbs_unknown"))
            .await
            .unwrap(),
        None
    );
    assert_eq!(s.services.registered_services().await.unwrap(), vec![svc]);
}

pub async fn a_service_changes_only_from_the_record_read_and_its_old_credentials_stop_finding_it(
    s: Stores,
) {
    let (svc, old_token) = registered("reg-b");
    s.services.insert_service(&svc).await.unwrap();
    let (new_token, new_digest) = mint(prefixes::SERVICE_TOKEN);
    let rotated = RegisteredService {
        status: ServiceStatus::Active,
        token_sha256: new_digest,
        ..svc.clone()
    };
    assert!(s.services.replace_service(&svc, &rotated).await.unwrap());
    let stale = RegisteredService {
        status: ServiceStatus::Suspended,
        ..svc.clone()
    };
    assert!(
        !s.services.replace_service(&svc, &stale).await.unwrap(),
        "a change from a record that is no longer stored is refused"
    );
    let find = |t: &str| {
        let (s, digest) = (s.clone(), TokenDigest::of(t));
        async move { s.services.service_by_credential(&digest).await.unwrap() }
    };
    assert_eq!(find(&old_token).await, None, "the old token is gone");
    assert_eq!(find(&new_token).await, Some(rotated.clone()));
    assert!(!s.services.delete_service(&svc).await.unwrap());
    assert!(s.services.delete_service(&rotated).await.unwrap());
    assert_eq!(find(&new_token).await, None);
    assert_eq!(s.services.registered_service(&svc.id).await.unwrap(), None);
}

pub async fn an_initial_access_token_gives_its_uses_once_each_until_it_expires(s: Stores) {
    let now = consent_broker::domain::now();
    let (_, digest) = mint(prefixes::INITIAL_TOKEN);
    let token = InitialAccessToken {
        sha256: digest,
        label: "partner".into(),
        uses_left: 3,
        expires_at: now + Duration::hours(1),
        minted_by: Subject::parse("admin").unwrap(),
        minted_at: now,
    };
    s.services.insert_initial_token(&token).await.unwrap();
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let s = s.clone();
            tokio::spawn(async move { s.services.use_initial_token(&digest, now).await.unwrap() })
        })
        .collect();
    let mut left = Vec::new();
    for t in tasks {
        left.extend(t.await.unwrap().map(|t| t.uses_left));
    }
    left.sort_unstable();
    assert_eq!(left, vec![0, 1, 2], "three uses, each given once");
    let listed = s.services.initial_tokens().await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].uses_left, 0);

    let (_, brief) = mint(prefixes::INITIAL_TOKEN);
    s.services
        .insert_initial_token(&InitialAccessToken {
            sha256: brief,
            expires_at: now + Duration::seconds(1),
            ..token.clone()
        })
        .await
        .unwrap();
    let later = now + Duration::seconds(2);
    assert!(
        s.services
            .use_initial_token(&brief, later)
            .await
            .unwrap()
            .is_none()
    );
    let (_, unknown) = mint(prefixes::INITIAL_TOKEN);
    assert!(
        s.services
            .use_initial_token(&unknown, now)
            .await
            .unwrap()
            .is_none()
    );
}

/// Stores a completed grant of `subject` for `provider` and `service`.
async fn stored_grant(s: &Stores, subject: &str, provider: &str, service: &str) -> Grant {
    let mut e = elicitation(subject, Duration::minutes(10));
    e.provider = ProviderId::parse(provider).unwrap();
    e.service = ServiceId::parse(service).unwrap();
    s.elicitations.insert_elicitation(&e).await.unwrap();
    let (grant, _) = grant_for(&e);
    let now = consent_broker::domain::now();
    let settled = s
        .elicitations
        .settle(&e.id, Settlement::Completed(Box::new(grant.clone())), now)
        .await
        .unwrap();
    assert!(matches!(settled, Settled::Now(_)));
    grant
}

/// Every grant matching `filter`, page by page of `limit`.
async fn all_pages(s: &Stores, filter: &GrantFilter, limit: usize) -> Vec<Grant> {
    let (mut out, mut after) = (Vec::new(), None);
    for _ in 0..100 {
        let page = s
            .admin
            .list_grants(filter, after.as_ref(), limit)
            .await
            .unwrap();
        assert!(page.grants.len() <= limit);
        out.extend(page.grants);
        match page.next {
            Some(next) => after = Some(next),
            None => return out,
        }
    }
    panic!("paging never ended");
}

fn ids(grants: &[Grant]) -> Vec<GrantId> {
    grants.iter().map(|g| g.id.clone()).collect()
}

pub async fn admin_pages_list_each_matching_grant_once_newest_first(s: Stores) {
    let mut made = Vec::new();
    for (subject, provider, service) in [
        ("alice", "acme", "svc"),
        ("bob", "acme", "svc-2"),
        ("alice", "other", "svc"),
        ("alice", "acme", "svc"),
        ("bob", "acme", "svc-2"),
        ("alice", "other", "svc"),
        ("alice", "acme", "svc"),
    ] {
        made.push(stored_grant(&s, subject, provider, service).await);
    }
    s.grants
        .revoke_grant(&made[3].id, consent_broker::domain::now())
        .await
        .unwrap();

    let everything = all_pages(&s, &GrantFilter::default(), 3).await;
    let mut seen = ids(&everything);
    assert_eq!(seen.len(), made.len(), "each grant once");
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), made.len(), "no grant twice");
    let times: Vec<i64> = everything.iter().map(created_ms).collect();
    assert!(times.windows(2).all(|w| w[0] >= w[1]), "newest first");
    assert_eq!(
        ids(&everything),
        ids(&all_pages(&s, &GrantFilter::default(), 100).await),
        "one page or many, the same order"
    );

    let count = |filter: GrantFilter| {
        let s = s.clone();
        async move { all_pages(&s, &filter, 2).await }
    };
    let alice = Subject::parse("alice").unwrap();
    let of_alice = count(GrantFilter {
        subject: Some(alice.clone()),
        ..Default::default()
    })
    .await;
    assert_eq!(of_alice.len(), 5);
    assert!(of_alice.iter().all(|g| g.subject == alice));
    let other = ProviderId::parse("other").unwrap();
    assert_eq!(
        count(GrantFilter {
            provider: Some(other.clone()),
            ..Default::default()
        })
        .await
        .len(),
        2
    );
    assert_eq!(
        count(GrantFilter {
            service: Some(ServiceId::parse("svc-2").unwrap()),
            ..Default::default()
        })
        .await
        .len(),
        2
    );
    let revoked = count(GrantFilter {
        status: Some(GrantStatus::Revoked),
        ..Default::default()
    })
    .await;
    assert_eq!(ids(&revoked), vec![made[3].id.clone()]);
    assert_eq!(revoked[0].status, GrantStatus::Revoked);
    assert_eq!(
        count(GrantFilter {
            subject: Some(alice.clone()),
            provider: Some(ProviderId::parse("acme").unwrap()),
            status: Some(GrantStatus::Active),
            ..Default::default()
        })
        .await
        .len(),
        2
    );
    assert!(
        count(GrantFilter {
            subject: Some(Subject::parse("nobody").unwrap()),
            ..Default::default()
        })
        .await
        .is_empty()
    );
}

pub async fn grant_counts_follow_creation_and_revocation(s: Stores) {
    let a = stored_grant(&s, "alice", "acme", "svc").await;
    stored_grant(&s, "bob", "acme", "svc").await;
    stored_grant(&s, "bob", "other", "svc-2").await;
    let now = consent_broker::domain::now();
    s.grants.revoke_grant(&a.id, now).await.unwrap();
    s.grants.revoke_grant(&a.id, now).await.unwrap();
    let mut counts: Vec<(String, String, String, u64)> = s
        .admin
        .count_grants()
        .await
        .unwrap()
        .into_iter()
        .map(|c| {
            (
                c.status.as_str().to_owned(),
                c.provider.to_string(),
                c.service.to_string(),
                c.count,
            )
        })
        .collect();
    counts.sort();
    let row = |st: &str, p: &str, sv: &str, n| (st.to_owned(), p.to_owned(), sv.to_owned(), n);
    assert_eq!(
        counts,
        vec![
            row("active", "acme", "svc", 1),
            row("active", "other", "svc-2", 1),
            row("revoked", "acme", "svc", 1),
        ],
        "revoking twice moves the count once"
    );
}

pub async fn a_grants_audit_trail_and_audit_pages_come_newest_first(s: Stores) {
    let g1 = stored_grant(&s, "alice", "acme", "svc").await;
    let g2 = stored_grant(&s, "bob", "acme", "svc").await;
    let actions = [
        ("grant_created", Some(&g1)),
        ("grant_created", Some(&g2)),
        ("something_else", None),
        ("grant_redeemed", Some(&g1)),
        ("grant_redeemed", Some(&g2)),
        ("grant_revoked", Some(&g1)),
    ];
    for (action, grant) in actions {
        let mut e = AuditEvent::new(Actor::System, AuditAction::parse(action), Outcome::Success);
        if let Some(g) = grant {
            e = e.grant(g);
        }
        s.audit.append(&e).await.unwrap();
    }
    let trail: Vec<String> = s
        .admin
        .audit_of_grant(&g1.id, 50)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.action.to_string())
        .collect();
    assert_eq!(trail, ["grant_revoked", "grant_redeemed", "grant_created"]);
    assert_eq!(s.admin.audit_of_grant(&g1.id, 1).await.unwrap().len(), 1);
    assert!(
        s.admin
            .audit_of_grant(&GrantId::generate(), 50)
            .await
            .unwrap()
            .is_empty()
    );

    let filter = AuditFilter {
        subject: Some(Subject::parse("bob").unwrap()),
        ..Default::default()
    };
    let (mut found, mut before) = (Vec::new(), None);
    for _ in 0..10 {
        let page = s
            .admin
            .audit_page(&filter, before.as_ref(), 1)
            .await
            .unwrap();
        found.extend(page.events.into_iter().map(|e| e.action.to_string()));
        match page.next {
            Some(c) => before = Some(c),
            None => break,
        }
    }
    assert_eq!(found, ["grant_redeemed", "grant_created"]);
    let all = s
        .admin
        .audit_page(&AuditFilter::default(), None, 100)
        .await
        .unwrap();
    assert_eq!(all.events.len(), 6);
    assert_eq!(all.events[0].action.as_str(), "grant_revoked");
    assert!(all.next.is_none());
}

pub async fn a_recorded_redemption_counts_the_use_and_files_its_event_under_the_grant(s: Stores) {
    let e = elicitation("nia", Duration::minutes(10));
    s.elicitations.insert_elicitation(&e).await.unwrap();
    let (g, _) = grant_for(&e);
    let now = consent_broker::domain::now();
    s.elicitations
        .settle(&e.id, Settlement::Completed(Box::new(g.clone())), now)
        .await
        .unwrap();
    let event =
        AuditEvent::new(Actor::System, AuditAction::GrantRedeemed, Outcome::Success).grant(&g);
    s.redemptions
        .record_redemption(&g.id, now, &event)
        .await
        .unwrap();
    assert_eq!(s.grants.grant(&g.id).await.unwrap().unwrap().use_count, 1);
    let trail = s.admin.audit_of_grant(&g.id, 10).await.unwrap();
    assert!(
        trail
            .iter()
            .any(|ev| ev.action == AuditAction::GrantRedeemed),
        "the admin trail shows the redemption"
    );
}

macro_rules! contract_tests {
    ($backend:ident, $make:expr) => {
        mod $backend {
            use super::*;
            contract_tests!(@each $make;
                an_elicitation_reads_back_as_stored,
                completing_stores_the_grant_atomically_and_only_once,
                an_expired_elicitation_cannot_be_settled,
                declining_and_failing_record_the_outcome,
                a_request_waiting_for_approval_keeps_its_grant_unusable_until_approved,
                grants_are_listed_per_subject_newest_first,
                revoking_and_using_a_grant_update_it_in_place,
                a_grant_stored_with_uses_keeps_counting_from_them,
                the_sweep_removes_only_what_expired_before_the_cutoff,
                audit_events_come_back_newest_first,
                concurrent_settlements_let_exactly_one_win,
                concurrent_uses_are_all_counted,
                a_redemption_counts_its_use_and_is_audited_together,
                a_lock_has_one_holder_until_that_holder_releases_it,
                a_lapsed_lock_is_free_and_its_old_token_cannot_release_it,
                concurrent_lock_attempts_let_exactly_one_win,
                a_flow_is_taken_once_and_not_after_it_expires,
                a_recorded_redemption_counts_the_use_and_files_its_event_under_the_grant,
                concurrent_takes_of_one_flow_let_exactly_one_win,
                a_one_time_id_is_first_seen_once_until_it_expires_or_is_forgotten,
                concurrent_sightings_of_one_id_let_exactly_one_be_first,
                a_registered_service_is_found_by_id_and_by_each_credential_it_holds,
                a_service_changes_only_from_the_record_read_and_its_old_credentials_stop_finding_it,
                an_initial_access_token_gives_its_uses_once_each_until_it_expires,
                admin_pages_list_each_matching_grant_once_newest_first,
                grant_counts_follow_creation_and_revocation,
                a_grants_audit_trail_and_audit_pages_come_newest_first,
                health_answers
            );
        }
    };
    (@each $make:expr; $($name:ident),*) => {$(
        #[tokio::test]
        async fn $name() {
            let (stores, _guard) = $make.await;
            super::$name(stores).await;
        }
    )*};
}

async fn embedded() -> (Stores, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let store =
        consent_broker::store::embedded::EmbeddedStore::open(&dir.path().join("t.redb")).unwrap();
    (Stores::from_backend(Arc::new(store)), dir)
}

fn redis_settings(target: RedisTarget) -> RedisSettings {
    RedisSettings {
        target,
        key_prefix: "test:".into(),
        connect_timeout: std::time::Duration::from_secs(1),
        response_timeout: std::time::Duration::from_secs(2),
        audit_max_len: 1000,
    }
}

fn url(raw: &str) -> RedisUrl {
    RedisUrl::parse(raw).unwrap()
}

async fn redis_single() -> (Stores, RedisServer) {
    let server = RedisServer::start();
    let settings = redis_settings(RedisTarget::Single(url(&server.url())));
    let store = RedisStore::connect(&settings).await.unwrap();
    (Stores::from_backend(Arc::new(store)), server)
}

async fn redis_cluster() -> (Stores, RedisCluster) {
    let cluster = RedisCluster::start(3);
    let urls = cluster.urls().iter().map(|u| url(u)).collect();
    let store = RedisStore::connect(&redis_settings(RedisTarget::Cluster(urls)))
        .await
        .unwrap();
    (Stores::from_backend(Arc::new(store)), cluster)
}

contract_tests!(embedded_store, embedded());
contract_tests!(redis_server, redis_single());
contract_tests!(redis_cluster_of_three, redis_cluster());

/// Redis trims its stream as it appends (`MAXLEN ~`); the embedded store trims at the sweep.
#[tokio::test]
async fn the_embedded_sweep_keeps_only_the_newest_audit_events_up_to_the_cap() {
    let dir = tempfile::tempdir().unwrap();
    let store = consent_broker::store::embedded::EmbeddedStore::open(&dir.path().join("t.redb"))
        .unwrap()
        .with_audit_cap(3);
    let s = Stores::from_backend(Arc::new(store));
    for action in ["one", "two", "three", "four", "five"] {
        s.audit
            .append(&AuditEvent::new(
                Actor::System,
                AuditAction::parse(action),
                Outcome::Success,
            ))
            .await
            .unwrap();
    }
    s.elicitations
        .sweep_elicitations(consent_broker::domain::now())
        .await
        .unwrap();
    let kept: Vec<String> = s
        .audit
        .recent(10)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.action.to_string())
        .collect();
    assert_eq!(kept, ["five", "four", "three"]);
}
