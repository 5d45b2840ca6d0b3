//! The leases against a real PostgreSQL (Debian's, started by the testkit on 127.0.0.1):
//! one holder at a time, an expired lease taken over with a higher fencing token, a stale
//! holder fenced, a renewed lease kept, and a replica over its fair share giving roots up.

use std::time::Duration;

use ocituf_signer::lease::Leases;
use ocituf_signer::DatabaseConfig;
use ocituf_testkit::Postgres;
use tokio_postgres::error::SqlState;

async fn replica(pg: &Postgres, id: &str, lease: Duration, roots: usize) -> Leases {
    let config = DatabaseConfig {
        url: pg.url(),
        lease,
        replica_id: id.to_owned(),
    };
    Leases::connect(&config, roots)
        .await
        .unwrap_or_else(|e| panic!("{e:?}\n{}", pg.log()))
}

#[tokio::test]
async fn two_replicas_never_hold_one_root_at_once() {
    let pg = Postgres::start();
    let lease = Duration::from_secs(30);
    // Both start at once on an empty database: both create the tables.
    let (a, b) = tokio::join!(replica(&pg, "a", lease, 1), replica(&pg, "b", lease, 1));
    let token = a
        .try_acquire("acme")
        .await
        .unwrap()
        .expect("a free lease is taken");
    assert_eq!(
        b.try_acquire("acme").await.unwrap(),
        None,
        "b took a held lease"
    );
    assert_eq!(
        a.try_acquire("acme").await.unwrap(),
        None,
        "a took its own lease again"
    );
    let holder = b.holder("acme").await.unwrap().unwrap();
    assert_eq!(
        (holder.replica.as_str(), holder.fencing_token, holder.live),
        ("a", token, true)
    );
    // Concurrent tries on a free root: exactly one wins.
    let (x, y) = tokio::join!(a.try_acquire("other"), b.try_acquire("other"));
    let won = [x.unwrap(), y.unwrap()]
        .iter()
        .filter(|t| t.is_some())
        .count();
    assert_eq!(won, 1);
}

#[tokio::test]
async fn an_expired_lease_is_taken_over_with_a_higher_fencing_token_and_the_old_holder_is_fenced() {
    let pg = Postgres::start();
    let lease = Duration::from_secs(1);
    let a = replica(&pg, "a", lease, 1).await;
    let b = replica(&pg, "b", lease, 1).await;
    let old = a.try_acquire("acme").await.unwrap().unwrap();
    assert!(a.check("acme", old).await.unwrap().is_some());
    // a stops renewing (a pause, a partition): its lease runs out by the database's clock.
    tokio::time::sleep(Duration::from_millis(2200)).await;
    let new = b
        .try_acquire("acme")
        .await
        .unwrap()
        .expect("an expired lease is free");
    assert!(new > old, "token {new} after {old}");
    // The stale holder's publish check fails: it must publish nothing.
    assert_eq!(
        a.check("acme", old).await.unwrap(),
        None,
        "a stale holder passed the fencing check"
    );
    // Nor can it give away the new holder's lease.
    a.release("acme", old).await.unwrap();
    assert!(b.check("acme", new).await.unwrap().is_some());
    // Even a replica that forgot its token cannot pass with a guess of the old one.
    assert_eq!(b.check("acme", old).await.unwrap(), None);
}

#[tokio::test]
async fn a_renewed_lease_is_kept_past_its_first_expiry() {
    let pg = Postgres::start();
    let lease = Duration::from_secs(2);
    let a = replica(&pg, "a", lease, 1).await;
    let b = replica(&pg, "b", lease, 1).await;
    let token = a.try_acquire("acme").await.unwrap().unwrap();
    for _ in 0..4 {
        tokio::time::sleep(Duration::from_millis(700)).await;
        assert!(
            a.check("acme", token).await.unwrap().is_some(),
            "renewal failed"
        );
        assert_eq!(
            b.try_acquire("acme").await.unwrap(),
            None,
            "b took a renewed lease"
        );
    }
    // Released, it is free at once.
    a.release("acme", token).await.unwrap();
    let next = b
        .try_acquire("acme")
        .await
        .unwrap()
        .expect("a released lease is free");
    assert!(next > token);
}

#[tokio::test]
async fn a_replica_over_its_fair_share_gives_up_the_roots_it_ranks_last() {
    let pg = Postgres::start();
    let lease = Duration::from_secs(30);
    let roots = ["r0", "r1", "r2", "r3"];
    let a = replica(&pg, "a", lease, roots.len()).await;
    let mut tokens = Vec::new();
    for r in roots {
        tokens.push(
            a.try_acquire(r)
                .await
                .unwrap()
                .expect("alone, a takes every root"),
        );
    }
    // b comes up: it is live (its tries beat), so a's share is ceil(4 / 2) = 2.
    let b = replica(&pg, "b", lease, roots.len()).await;
    for r in roots {
        assert_eq!(b.try_acquire(r).await.unwrap(), None);
    }
    let mut shed = Vec::new();
    for (r, t) in roots.iter().zip(&tokens) {
        if a.check(r, *t).await.unwrap().unwrap().shed {
            a.release(r, *t).await.unwrap();
            shed.push(*r);
        }
    }
    assert_eq!(shed, ["r2", "r3"]);
    // a, at its share, does not take a free lease back; b takes both.
    for r in &shed {
        assert_eq!(
            a.try_acquire(r).await.unwrap(),
            None,
            "a took {r} over its share"
        );
        assert!(
            b.try_acquire(r).await.unwrap().is_some(),
            "b did not take {r}"
        );
    }
    for r in roots {
        let h = a.holder(r).await.unwrap().unwrap();
        let want = if shed.contains(&r) { "b" } else { "a" };
        assert_eq!(h.replica, want, "{r}");
    }
}

#[tokio::test]
async fn an_unreachable_database_is_an_error_that_names_it() {
    let pg = Postgres::start();
    let url = pg.url();
    pg.stop();
    let e = Leases::connect(
        &DatabaseConfig {
            url,
            lease: Duration::from_secs(2),
            replica_id: "a".to_owned(),
        },
        1,
    )
    .await
    .unwrap_err();
    assert!(
        e.to_string().contains("could not connect to PostgreSQL"),
        "{e}"
    );
}

/// The newest timestamp version in the registry.
async fn newest_timestamp(org: &crate::fixture::Org) -> u64 {
    org.versions_claimed("timestamp")
        .await
        .keys()
        .next_back()
        .copied()
        .unwrap_or(0)
}

async fn wait_until(what: &str, timeout: Duration, mut ok: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + timeout;
    while !ok() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what}: not within {timeout:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_whose_lease_was_taken_publishes_nothing_more_until_it_leads_again() {
    use crate::fixture::{Org, Registry};
    let pg = Postgres::start();
    let org = Org::new(Registry::Distribution(ocituf_testkit::Distribution::start())).await;
    let path = org.dir.path().join("signer-db.toml");
    std::fs::write(
        &path,
        format!(
            "database-url = \"{}\"\nlease-seconds = 3\nreplica-id = \"r1\"\n{}",
            pg.url(),
            org.config_text()
        ),
    )
    .unwrap();
    let config = ocituf_signer::Config::load(&path).unwrap();
    let signer = ocituf_signer::Signer::launch(&config, &ocituf_oci::RegistryOptions::default())
        .await
        .unwrap();
    wait_until("r1 leads and publishes", Duration::from_secs(30), || {
        signer
            .status("acme")
            .is_some_and(|s| s.leading && s.timestamp_version.is_some())
    })
    .await;
    let token = signer.status("acme").unwrap().fencing_token.unwrap();

    // Another replica takes the lease behind r1's back (as after a partition that r1 did
    // not notice): r1 must stop publishing at its next check.
    let (db, conn) = tokio_postgres::connect(&pg.url(), tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    db.simple_query(
        "UPDATE ocituf_leases SET holder = 'intruder', fencing_token = fencing_token + 1, \
         expires_at = now() + interval '1 hour' WHERE root_of_trust = 'acme'",
    )
    .await
    .unwrap();
    let before = newest_timestamp(&org).await;
    org.push_image("fenced").await;
    org.sign("fenced").await;
    wait_until("r1 is fenced", Duration::from_secs(5), || {
        signer.status("acme").is_some_and(|s| !s.leading)
    })
    .await;
    // Longer than a poll interval and a lease turn: a due batch (a new app version) would
    // have published by now.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        newest_timestamp(&org).await,
        before,
        "a fenced leader published"
    );
    let st = signer.status("acme").unwrap();
    assert_eq!((st.leading, st.fencing_token), (false, None), "{st:?}");
    assert_eq!(st.leader.as_deref(), Some("intruder"));
    let fate = signer
        .submit("acme", "app", 2, None, Duration::from_secs(30))
        .await;
    assert!(
        fate.as_ref()
            .is_err_and(|e| e.to_string().contains("does not lead")),
        "a follower took a submission: {fate:?}"
    );

    // The intruder's lease runs out: r1 leads again with a higher token and publishes.
    db.simple_query("UPDATE ocituf_leases SET expires_at = now() WHERE root_of_trust = 'acme'")
        .await
        .unwrap();
    wait_until("r1 leads again", Duration::from_secs(5), || {
        signer.status("acme").is_some_and(|s| s.leading)
    })
    .await;
    let again = signer.status("acme").unwrap().fencing_token.unwrap();
    assert!(
        again > token + 1,
        "token {again} after {token} and the intruder's"
    );
    let resolver = org.resolver();
    let mut visible = false;
    for _ in 0..100 {
        if resolver.resolve(&org.image("fenced")).await.is_ok() {
            visible = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(visible, "the image signed while fenced was lost");
    // A stop (SIGTERM) hands the root over at once rather than after the lease.
    signer.stop().await;
    let next = replica(&pg, "r2", Duration::from_secs(3), 1).await;
    let handed_over = next.try_acquire("acme").await.unwrap();
    assert!(
        handed_over.is_some_and(|t| t > again),
        "a stopped signer kept its lease: {handed_over:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leases_hold_behind_pgbouncer_transaction_pooling_where_session_state_breaks() {
    let pg = Postgres::start();
    let bouncer = pg
        .start_pgbouncer()
        .unwrap_or_else(|e| panic!("{e}\n{}", pg.log()));
    // The control: a named prepared statement (what tokio-postgres' `query` uses) breaks
    // here once another client holds the server connection it was prepared on.
    let connect = || async {
        let (c, conn) = tokio_postgres::connect(&bouncer.url(), tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(conn);
        c
    };
    let (preparer, holder) = (connect().await, connect().await);
    let named = preparer.prepare("SELECT 1").await.unwrap();
    holder.simple_query("BEGIN").await.unwrap();
    let broken = preparer.query(&named, &[]).await;
    holder.simple_query("COMMIT").await.unwrap();
    assert!(
        broken
            .as_ref()
            .is_err_and(|e| e.code() == Some(&SqlState::INVALID_SQL_STATEMENT_NAME)),
        "the control did not break: {broken:?}"
    );

    // The leases, through the same pool, two replicas at once on four roots.
    let lease = Duration::from_secs(1);
    let roots = ["r0", "r1", "r2", "r3"];
    let via = |id: &'static str| {
        let url = bouncer.url();
        async move {
            Leases::connect(
                &DatabaseConfig {
                    url,
                    lease,
                    replica_id: id.to_owned(),
                },
                roots.len(),
            )
            .await
            .unwrap()
        }
    };
    let (a, b) = tokio::join!(via("a"), via("b"));
    let mut a_tokens = Vec::new();
    for r in roots {
        a_tokens.push(a.try_acquire(r).await);
    }
    // b's tries made it live: a's share is 2 now, and b took nothing held.
    for r in roots {
        assert_eq!(b.try_acquire(r).await.unwrap(), None);
    }
    let mut held = Vec::new();
    for (r, t) in roots.iter().zip(&a_tokens) {
        let token = t.as_ref().unwrap().expect("alone, a takes every root");
        assert!(a.check(r, token).await.unwrap().is_some(), "a lost {r}");
        held.push((r, token));
    }
    tokio::time::sleep(Duration::from_millis(2200)).await;
    // a is silent past its leases (and its heartbeat): b takes all four with higher tokens.
    let mut taken = Vec::new();
    for (r, old) in &held {
        let new = b.try_acquire(r).await.unwrap();
        let new = new.unwrap_or_else(|| panic!("b did not take the expired {r}"));
        assert!(new > *old);
        taken.push(new);
    }
    for ((r, old), new) in held.iter().zip(taken) {
        assert_eq!(
            a.check(r, *old).await.unwrap(),
            None,
            "{r}: a was not fenced"
        );
        assert!(b.check(r, new).await.unwrap().is_some());
    }
}
