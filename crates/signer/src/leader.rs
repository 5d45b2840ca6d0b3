//! A worker's leadership of its root of trust, with a database ([`crate::lease`]): a
//! follower tries to take the lease, a leader renews it (the fencing check) at every turn
//! and beside a long batch, gives it up when over its fair share, and is fenced (follows,
//! publishes nothing) the moment a check fails. Each change is logged and shows in the
//! root's status (and so in `/metrics` and `/readyz`).

use crate::lease::Leases;
use crate::service::Root;

/// The lease a worker holds, if it uses leases.
#[derive(Clone, Copy)]
pub(crate) enum Lead {
    /// The lock file: always the leader.
    Alone,
    Follower,
    Leader {
        token: i64,
    },
}

/// Set leadership in the status (and the metric that follows it).
pub(crate) fn set_lead(root: &Root, lead: Lead, leader: Option<String>) {
    root.status.send_modify(|s| {
        s.leading = !matches!(lead, Lead::Follower);
        s.fencing_token = match lead {
            Lead::Leader { token } => Some(token),
            _ => None,
        };
        s.leader = leader;
    });
}

/// A follower's turn: try to take the lease; `Follower` still when another replica holds
/// it, or this one already leads its fair share.
pub(crate) async fn follow(root: &Root, leases: &Leases) -> Lead {
    let name = &root.config.name;
    match leases.try_acquire(name).await {
        Ok(Some(token)) => {
            tracing::info!(root_of_trust = %name, replica = leases.replica_id(), token, "took the lease: this replica leads now");
            set_lead(
                root,
                Lead::Leader { token },
                Some(leases.replica_id().to_owned()),
            );
            Lead::Leader { token }
        }
        Ok(None) => {
            let holder = leases.holder(name).await.ok().flatten();
            let leader = holder.filter(|h| h.live).map(|h| h.replica);
            set_lead(root, Lead::Follower, leader);
            root.status.send_modify(|s| s.last_error = None);
            Lead::Follower
        }
        Err(e) => {
            root.status
                .send_modify(|s| s.last_error = Some(format!("{e}")));
            Lead::Follower
        }
    }
}

/// A leader's turn before its batch: renew (the fencing check); give the root up when over
/// the fair share. A failed or refused check ends leadership at once.
pub(crate) async fn renew(root: &Root, leases: &Leases, token: i64) -> Lead {
    let name = &root.config.name;
    match leases.check(name, token).await {
        Ok(Some(standing)) if standing.shed => {
            let _ = leases.release(name, token).await;
            tracing::info!(root_of_trust = %name, replica = leases.replica_id(), "gave the lease up: this replica leads more than its fair share");
            set_lead(root, Lead::Follower, None);
            Lead::Follower
        }
        Ok(Some(_)) => Lead::Leader { token },
        Ok(None) => {
            fenced(root, leases, token, "the lease is no longer this replica's");
            Lead::Follower
        }
        Err(e) => {
            fenced(root, leases, token, &format!("{e}"));
            Lead::Follower
        }
    }
}

/// Renew every third of a lease while a batch runs; returns why once the lease is lost.
pub(crate) async fn keep_renewing(leases: &Leases, name: &str, token: i64) -> String {
    loop {
        tokio::time::sleep(leases.lease() / 3).await;
        match leases.check(name, token).await {
            Ok(Some(_)) => {}
            Ok(None) => return "the lease is no longer this replica's".to_owned(),
            Err(e) => return e.to_string(),
        }
    }
}

pub(crate) fn fenced(root: &Root, leases: &Leases, token: i64, why: &str) {
    tracing::warn!(root_of_trust = %root.config.name, replica = leases.replica_id(), token, why, "fenced: stopped publishing, following now");
    set_lead(root, Lead::Follower, None);
}
