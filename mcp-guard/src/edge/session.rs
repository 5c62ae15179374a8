//! Legacy (2025-11-25) sessions bound to the subject that opened them: a bounded map from
//! session id to subject, checked by the layer whenever a request names a session.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use crate::principal::Principal;

fn binding_key(principal: Option<&Principal>) -> String {
    principal.map(Principal::binding_key).unwrap_or_default()
}

/// Legacy (pre-2026-07-28) sessions bound to the subject that opened them.
pub(crate) struct SessionBindings {
    cap: usize,
    state: Mutex<Bindings>,
}

#[derive(Default)]
struct Bindings {
    by_id: HashMap<String, String>,
    order: VecDeque<String>,
}

impl SessionBindings {
    pub(crate) fn new(cap: usize) -> Self {
        Self {
            cap: cap.max(1),
            state: Mutex::new(Bindings::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Bindings> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn bind(&self, session: &str, principal: Option<&Principal>) {
        let mut b = self.lock();
        if b.by_id
            .insert(session.to_owned(), binding_key(principal))
            .is_none()
        {
            b.order.push_back(session.to_owned());
        }
        while b.by_id.len() > self.cap {
            match b.order.pop_front() {
                Some(old) => {
                    b.by_id.remove(&old);
                }
                None => break,
            }
        }
    }

    /// Whether the session exists here and belongs to this caller (`None`: anonymous).
    ///
    /// A session opened anonymously (the anonymous access posture) is bound to the first
    /// caller who signs in on it: the client that holds the session id signed in after
    /// connecting. From then on, as for every session, only that subject may use it.
    pub(crate) fn check(&self, session: &str, principal: Option<&Principal>) -> bool {
        let key = binding_key(principal);
        let mut b = self.lock();
        match b.by_id.get_mut(session) {
            Some(bound) if *bound == key => true,
            Some(bound) if bound.is_empty() && principal.is_some() => {
                *bound = key;
                true
            }
            _ => false,
        }
    }

    /// Whether the session is known and belongs to a subject (not anonymous).
    pub(crate) fn is_bound(&self, session: &str) -> bool {
        self.lock()
            .by_id
            .get(session)
            .is_some_and(|k| !k.is_empty())
    }

    pub(crate) fn unbind(&self, session: &str) {
        let mut b = self.lock();
        if b.by_id.remove(session).is_some() {
            b.order.retain(|s| s != session);
        }
    }
}
