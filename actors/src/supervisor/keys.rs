//! Submits with an idempotency key: a key an execution already has answers that execution
//! (same plan) or is refused (another plan), durably, until the execution is deleted.
//!
//! The key's owner is read from the store off the handler, so two submits of one key can
//! be in flight at once. Each key the Supervisor is deciding about has one entry here, from
//! the first submit until the store holds the answer (the owner read, or the new
//! execution's record, which carries the key, durable): later submits of that key wait in
//! it instead of reading the store, so none can read it before the key is written and
//! start a second execution.

use std::collections::HashMap;

use ractor::ActorRef;
use sha2::{Digest, Sha256};

use crate::error::RuntimeError;
use crate::model::KeyOwner;
use crate::model::{ExecutionId, Plan, Submitted, cut};
use crate::supervisor::{Internal, Reply, SupervisorInternal, SupervisorMsg, SupervisorState};

/// Where the Supervisor stands with one key.
#[derive(Debug)]
pub(super) enum Deciding {
    /// Its owner is being read from the store; these submits wait for the answer.
    Reading(Vec<(Plan, [u8; 32], Reply<Submitted>)>),
    /// A submit created execution `id` with it, whose record is not durable yet; these
    /// submits of the same plan wait for it.
    Creating {
        id: ExecutionId,
        digest: [u8; 32],
        waiters: Vec<Reply<Submitted>>,
    },
}

/// The keys being decided about.
pub(super) type Keys = HashMap<String, Deciding>;

/// The SHA-256 of the plan's encoding: two submits of one key are the same plan when
/// their digests are equal (JSON object keys are sorted, so their order does not count).
fn digest(plan: &Plan) -> Result<[u8; 32], RuntimeError> {
    let bytes = rmp_serde::to_vec_named(plan)
        .map_err(|e| crate::error::StoreError::Encode(e.to_string()))?;
    Ok(Sha256::digest(&bytes).into())
}

fn conflict(key: &str, existing: ExecutionId) -> RuntimeError {
    RuntimeError::KeyConflict {
        key: cut(key),
        existing,
    }
}

impl SupervisorState {
    /// Submits `plan`, which has idempotency key `key`.
    pub(super) fn submit_keyed(
        &mut self,
        myself: &ActorRef<SupervisorMsg>,
        key: String,
        plan: Plan,
        reply: Reply<Submitted>,
    ) {
        let digest = match digest(&plan) {
            Ok(digest) => digest,
            Err(e) => {
                let _ = reply.send(Err(e));
                return;
            }
        };
        match self.keys.get_mut(&key) {
            Some(Deciding::Reading(waiting)) => waiting.push((plan, digest, reply)),
            Some(Deciding::Creating {
                id,
                digest: created,
                waiters,
            }) => {
                if *created == digest {
                    waiters.push(reply);
                } else {
                    let _ = reply.send(Err(conflict(&key, *id)));
                }
            }
            None => {
                self.keys
                    .insert(key.clone(), Deciding::Reading(vec![(plan, digest, reply)]));
                let store = self.store.clone();
                let myself = myself.clone();
                tokio::spawn(async move {
                    let owner = store.key_owner(&key).await.map_err(RuntimeError::from);
                    drop(store);
                    let msg = Internal::KeyOwner { key, owner };
                    let _ = myself.cast(SupervisorMsg::Internal(SupervisorInternal(msg)));
                });
            }
        }
    }

    /// The store says who has `key`: the submits waiting for it are answered, or the first
    /// of them creates the execution.
    pub(super) fn key_owner(
        &mut self,
        myself: &ActorRef<SupervisorMsg>,
        key: String,
        owner: Result<Option<KeyOwner>, RuntimeError>,
    ) {
        let Some(Deciding::Reading(waiting)) = self.keys.remove(&key) else {
            return;
        };
        let owner = match owner {
            Ok(Some(owner)) => owner,
            Ok(None) => return self.create_keyed(myself, key, waiting),
            Err(e) => {
                for (_, _, reply) in waiting {
                    let _ = reply.send(Err(e.clone()));
                }
                return;
            }
        };
        for (_, digest, reply) in waiting {
            let _ = reply.send(if digest == owner.digest {
                Ok(Submitted {
                    id: owner.id,
                    created: false,
                })
            } else {
                Err(conflict(&key, owner.id))
            });
        }
    }

    /// No execution has `key`: the first waiting submit that can creates one with it, and
    /// the others wait for its record (or are refused, with another plan).
    fn create_keyed(
        &mut self,
        myself: &ActorRef<SupervisorMsg>,
        key: String,
        waiting: Vec<(Plan, [u8; 32], Reply<Submitted>)>,
    ) {
        let mut waiting = waiting.into_iter();
        for (plan, digest, reply) in waiting.by_ref() {
            if let Some(id) = self.create(myself, plan, reply, Some((key.clone(), digest))) {
                self.keys.insert(
                    key.clone(),
                    Deciding::Creating {
                        id,
                        digest,
                        waiters: Vec::new(),
                    },
                );
                break;
            }
        }
        // (If every one was refused before it could create, none is left here.)
        for (_, digest, reply) in waiting {
            if let Some(Deciding::Creating {
                id,
                digest: created,
                waiters,
            }) = self.keys.get_mut(&key)
            {
                if *created == digest {
                    waiters.push(reply);
                } else {
                    let _ = reply.send(Err(conflict(&key, *id)));
                }
            }
        }
    }

    /// The execution created with `key` is stored (`Ok`) or not: the submits that waited
    /// for it are answered.
    pub(super) fn key_created(
        &mut self,
        key: &str,
        id: ExecutionId,
        result: Result<(), RuntimeError>,
    ) {
        let Some(Deciding::Creating { waiters, .. }) = self.keys.remove(key) else {
            return;
        };
        for reply in waiters {
            let _ = reply.send(result.clone().map(|()| Submitted { id, created: false }));
        }
    }
}
