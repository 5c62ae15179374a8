//! Legacy (2025-11-25) sessions: the subject each belongs to, and how many the server holds.
//!
//! The table is bounded three ways: in total, per subject (one signed-in caller cannot crowd
//! out the others) and for sessions nobody has signed in to yet (the anonymous posture).
//! When a bound is reached, room is made in this order: anonymous sessions idle past their
//! short life, then the least recently used anonymous session, and only when no anonymous
//! session is left, the least recently used signed-in one; a caller at its own bound gives up
//! its own least recently used session. An anonymous caller never displaces a signed-in
//! session: when only those are left, it is refused (503). Sessions leave the table when
//! they end (DELETE, or rmcp closing them) and are then closed in rmcp too, when the guard
//! holds the session manager ([`Guard::session_manager`](crate::Guard::session_manager)).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use crate::principal::Principal;

/// How many legacy sessions the server holds, and for how long ([`GuardBuilder::session_limits`]).
///
/// ```
/// use std::time::Duration;
/// use mcp_guard::SessionLimits;
///
/// let limits = SessionLimits::default()
///     .total(5_000)
///     .per_subject(8)
///     .anonymous(100)
///     .anonymous_idle(Duration::from_secs(30));
/// # let _ = limits;
/// ```
///
/// [`GuardBuilder::session_limits`]: crate::GuardBuilder::session_limits
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionLimits {
    total: usize,
    per_subject: usize,
    anonymous: usize,
    idle: Duration,
    anonymous_idle: Duration,
    anonymous_sessions: bool,
}

impl Default for SessionLimits {
    /// 10 000 sessions in all, 32 per subject, 256 never signed in to; signed-in sessions
    /// end after 5 minutes without a request (rmcp's own default), anonymous ones after 1.
    fn default() -> Self {
        Self {
            total: 10_000,
            per_subject: 32,
            anonymous: 256,
            idle: Duration::from_secs(300),
            anonymous_idle: Duration::from_secs(60),
            anonymous_sessions: true,
        }
    }
}

impl SessionLimits {
    /// The most sessions held at once (at least 1).
    pub fn total(mut self, sessions: usize) -> Self {
        self.total = sessions.max(1);
        self
    }

    /// The most sessions one subject holds (at least 1); its least recently used one ends
    /// when it opens another.
    pub fn per_subject(mut self, sessions: usize) -> Self {
        self.per_subject = sessions.max(1);
        self
    }

    /// The most sessions opened without a token and not yet signed in to (at least 1), in
    /// the anonymous posture.
    pub fn anonymous(mut self, sessions: usize) -> Self {
        self.anonymous = sessions.max(1);
        self
    }

    /// How long a session lives without a request. The guard's session manager passes it to
    /// rmcp as the session keep-alive, so both end a session at the same moment.
    pub fn idle(mut self, idle: Duration) -> Self {
        self.idle = idle;
        self
    }

    /// How long a session nobody signed in to lives without a request (default 60 s).
    pub fn anonymous_idle(mut self, idle: Duration) -> Self {
        self.anonymous_idle = idle;
        self
    }

    /// Whether a caller without a token may open a session in the anonymous posture (default
    /// `true`). With `false`, an `initialize` without a token that would open a session is
    /// answered with the sign-in challenge; stateless (2026-07-28) requests are unaffected.
    pub fn anonymous_sessions(mut self, allow: bool) -> Self {
        self.anonymous_sessions = allow;
        self
    }

    /// The idle life of a signed-in session.
    pub fn idle_life(&self) -> Duration {
        self.idle
    }

    /// The idle life of a session nobody signed in to.
    pub fn anonymous_idle_life(&self) -> Duration {
        self.anonymous_idle
    }
}

/// How many legacy sessions the guard holds now ([`Guard::session_counts`]).
///
/// [`Guard::session_counts`]: crate::Guard::session_counts
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct SessionCounts {
    /// Sessions bound to a subject.
    pub signed_in: usize,
    /// Sessions opened without a token and not signed in to yet.
    pub anonymous: usize,
}

/// Ends sessions in the session manager, for the sessions the table let go.
pub(crate) type Closer = Arc<dyn Fn(Arc<str>) + Send + Sync>;

/// Why a session cannot be opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refused {
    /// Anonymous sessions are not allowed: sign in first.
    NeedsToken,
    /// Every session held is a signed-in one and the bound is reached.
    Full,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Owner {
    Anonymous,
    Subject(Arc<str>),
}

#[derive(Debug)]
struct Entry {
    owner: Owner,
    /// The key of this session in its LRU index.
    used: (Instant, u64),
}

#[derive(Default)]
struct State {
    by_id: HashMap<Arc<str>, Entry>,
    /// Anonymous sessions by last use, oldest first.
    anonymous: BTreeMap<(Instant, u64), Arc<str>>,
    /// Signed-in sessions by last use, oldest first.
    signed_in: BTreeMap<(Instant, u64), Arc<str>>,
    /// Each subject's sessions.
    per_subject: HashMap<Arc<str>, Vec<Arc<str>>>,
    seq: u64,
}

/// A use is recorded at most this often per session, to keep requests cheap.
const TOUCH_EVERY: Duration = Duration::from_secs(1);

impl State {
    fn stamp(&mut self, now: Instant) -> (Instant, u64) {
        self.seq += 1;
        (now, self.seq)
    }

    fn index(&mut self, owner: &Owner) -> &mut BTreeMap<(Instant, u64), Arc<str>> {
        match owner {
            Owner::Anonymous => &mut self.anonymous,
            Owner::Subject(_) => &mut self.signed_in,
        }
    }

    fn insert(&mut self, id: Arc<str>, owner: Owner, now: Instant) {
        let used = self.stamp(now);
        if let Some(old) = self.by_id.remove(&id) {
            self.forget(&id, old);
        }
        self.index(&owner).insert(used, id.clone());
        if let Owner::Subject(s) = &owner {
            self.per_subject
                .entry(s.clone())
                .or_default()
                .push(id.clone());
        }
        self.by_id.insert(id, Entry { owner, used });
    }

    /// Removes `id`'s traces from the indexes (its entry is already out of `by_id`).
    fn forget(&mut self, id: &Arc<str>, entry: Entry) {
        self.index(&entry.owner).remove(&entry.used);
        if let Owner::Subject(s) = &entry.owner
            && let Some(list) = self.per_subject.get_mut(s)
        {
            list.retain(|x| x != id);
            if list.is_empty() {
                self.per_subject.remove(s);
            }
        }
    }

    fn remove(&mut self, id: &str) -> Option<Arc<str>> {
        let (id, entry) = self.by_id.remove_entry(id)?;
        self.forget(&id, entry);
        Some(id)
    }

    /// Ends the sessions of one kind idle for longer than `life`.
    fn expire(&mut self, anonymous: bool, now: Instant, life: Duration, out: &mut Vec<Arc<str>>) {
        loop {
            let index = if anonymous {
                &self.anonymous
            } else {
                &self.signed_in
            };
            let Some((&(used, _), id)) = index.first_key_value() else {
                break;
            };
            if now.saturating_duration_since(used) <= life {
                break;
            }
            let id = id.clone();
            self.remove(&id);
            out.push(id);
        }
    }

    /// Ends every session idle past its life: anonymous ones after their short life, signed-in
    /// ones after the keep-alive rmcp is given (which ends them there at the same time).
    fn expire_idle(&mut self, now: Instant, limits: &SessionLimits, out: &mut Vec<Arc<str>>) {
        self.expire(true, now, limits.anonymous_idle, out);
        self.expire(false, now, limits.idle, out);
    }

    fn evict_oldest(&mut self, anonymous: bool, out: &mut Vec<Arc<str>>) -> bool {
        let index = if anonymous {
            &self.anonymous
        } else {
            &self.signed_in
        };
        let Some(id) = index.first_key_value().map(|(_, id)| id.clone()) else {
            return false;
        };
        self.remove(&id);
        out.push(id);
        true
    }

    /// Ends `subject`'s least recently used session other than `keep`.
    fn evict_subjects_oldest(
        &mut self,
        subject: &str,
        keep: Option<&str>,
        out: &mut Vec<Arc<str>>,
    ) {
        let oldest = self.per_subject.get(subject).and_then(|ids| {
            ids.iter()
                .filter(|id| Some(&***id) != keep)
                .min_by_key(|id| self.by_id.get(&***id).map(|e| e.used))
                .cloned()
        });
        if let Some(id) = oldest {
            self.remove(&id);
            out.push(id);
        }
    }

    fn subject_count(&self, subject: &str) -> usize {
        self.per_subject.get(subject).map_or(0, Vec::len)
    }

    /// Makes room for one more session of `owner` (the session `keep`, if already in, stays).
    fn make_room(
        &mut self,
        owner: &Owner,
        keep: Option<&str>,
        limits: &SessionLimits,
        out: &mut Vec<Arc<str>>,
    ) -> Result<(), Refused> {
        let extra = usize::from(keep.is_none());
        match owner {
            Owner::Anonymous => {
                while self.anonymous.len() + extra > limits.anonymous {
                    if !self.evict_oldest(true, out) {
                        break;
                    }
                }
                while self.by_id.len() + extra > limits.total {
                    if !self.evict_oldest(true, out) {
                        return Err(Refused::Full);
                    }
                }
            }
            Owner::Subject(s) => {
                while self.subject_count(s) + extra > limits.per_subject {
                    let before = out.len();
                    self.evict_subjects_oldest(s, keep, out);
                    if out.len() == before {
                        break;
                    }
                }
                while self.by_id.len() + extra > limits.total {
                    if !self.evict_oldest(true, out) && !self.evict_oldest(false, out) {
                        break;
                    }
                }
            }
        }
        Ok(())
    }
}

/// Legacy sessions bound to the subject that opened them, bounded by [`SessionLimits`].
pub(crate) struct SessionBindings {
    limits: SessionLimits,
    state: Mutex<State>,
    /// One per session manager the guard bounds; each ignores ids it does not hold.
    closers: RwLock<Vec<Closer>>,
    /// Whether a sweeper task runs for this table.
    swept: std::sync::atomic::AtomicBool,
}

fn owner_of(principal: Option<&Principal>) -> Owner {
    match principal {
        Some(p) => Owner::Subject(p.binding_key().into()),
        None => Owner::Anonymous,
    }
}

impl SessionBindings {
    pub(crate) fn new(limits: SessionLimits) -> Self {
        Self {
            limits,
            state: Mutex::new(State::default()),
            closers: RwLock::new(Vec::new()),
            swept: std::sync::atomic::AtomicBool::new(false),
        }
    }

    pub(crate) fn limits(&self) -> &SessionLimits {
        &self.limits
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Where sessions the table lets go are ended (every manager the guard bounds).
    pub(crate) fn add_closer(&self, closer: Closer) {
        self.closers
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .push(closer);
    }

    /// Whether the caller is the first to ask to sweep this table (it then starts the one
    /// sweeper).
    pub(crate) fn claim_sweeper(&self) -> bool {
        !self.swept.swap(true, std::sync::atomic::Ordering::AcqRel)
    }

    /// Ends `ids` in the session manager (outside the table's lock).
    fn close(&self, ids: Vec<Arc<str>>) {
        if ids.is_empty() {
            return;
        }
        tracing::debug!(
            sessions = ids.len(),
            "mcp-guard: ending sessions to stay within limits"
        );
        let closers = self
            .closers
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        for id in ids {
            for close in &closers {
                close(id.clone());
            }
        }
    }

    /// Whether a session could be opened for `principal` now, decided before rmcp makes one:
    /// anonymous sessions refused, or only signed-in sessions held at the total bound.
    pub(crate) fn precheck(&self, principal: Option<&Principal>) -> Result<(), Refused> {
        if principal.is_some() {
            return Ok(());
        }
        if !self.limits.anonymous_sessions {
            return Err(Refused::NeedsToken);
        }
        let s = self.lock();
        if s.anonymous.is_empty() && s.by_id.len() >= self.limits.total {
            // Idle signed-in sessions may still go; `open` decides then.
            let idle = s
                .signed_in
                .first_key_value()
                .is_some_and(|((used, _), _)| used.elapsed() > self.limits.idle);
            if !idle {
                return Err(Refused::Full);
            }
        }
        Ok(())
    }

    /// Records the session rmcp just opened for `principal` (`None`: no token), making room
    /// within the limits first. A refused session is ended at once.
    pub(crate) fn open(&self, session: &str, principal: Option<&Principal>) -> Result<(), Refused> {
        let owner = owner_of(principal);
        let mut ended = Vec::new();
        let opened = if principal.is_none() && !self.limits.anonymous_sessions {
            Err(Refused::NeedsToken)
        } else {
            let now = Instant::now();
            let mut s = self.lock();
            s.expire_idle(now, &self.limits, &mut ended);
            let room = s.make_room(&owner, None, &self.limits, &mut ended);
            if room.is_ok() {
                s.insert(session.into(), owner, now);
            }
            room
        };
        if opened.is_err() {
            ended.push(session.into());
        }
        self.close(ended);
        opened
    }

    /// Whether the session exists here and belongs to this caller (`None`: anonymous).
    ///
    /// A session opened anonymously (the anonymous access posture) is bound to the first
    /// caller who signs in on it: the client that holds the session id signed in after
    /// connecting. From then on, as for every session, only that subject may use it. An
    /// anonymous session idle past its life has ended.
    pub(crate) fn check(&self, session: &str, principal: Option<&Principal>) -> bool {
        let now = Instant::now();
        let mut ended = Vec::new();
        let ok = {
            let mut s = self.lock();
            let found = s.by_id.get(session).map(|e| (e.owner.clone(), e.used.0));
            match found {
                None => false,
                Some((Owner::Anonymous, used))
                    if now.saturating_duration_since(used) > self.limits.anonymous_idle =>
                {
                    if let Some(id) = s.remove(session) {
                        ended.push(id);
                    }
                    false
                }
                Some((owner, used)) => {
                    let caller = owner_of(principal);
                    if owner == caller {
                        if now.saturating_duration_since(used) >= TOUCH_EVERY {
                            let id = s.remove(session).expect("present");
                            s.insert(id, owner, now);
                        }
                        true
                    } else if owner == Owner::Anonymous && principal.is_some() {
                        let id = s.remove(session).expect("present");
                        s.insert(id, caller.clone(), now);
                        let _ = s.make_room(&caller, Some(session), &self.limits, &mut ended);
                        true
                    } else {
                        false
                    }
                }
            }
        };
        self.close(ended);
        ok
    }

    /// Whether the session is known and belongs to a subject (not anonymous).
    pub(crate) fn is_bound(&self, session: &str) -> bool {
        self.lock()
            .by_id
            .get(session)
            .is_some_and(|e| matches!(e.owner, Owner::Subject(_)))
    }

    /// The session ended (DELETE, or its session manager closed it).
    pub(crate) fn ended(&self, session: &str) {
        self.lock().remove(session);
    }

    /// Ends anonymous sessions idle past their life.
    pub(crate) fn sweep(&self) {
        let mut ended = Vec::new();
        self.lock()
            .expire_idle(Instant::now(), &self.limits, &mut ended);
        self.close(ended);
    }

    pub(crate) fn counts(&self) -> SessionCounts {
        let s = self.lock();
        SessionCounts {
            signed_in: s.signed_in.len(),
            anonymous: s.anonymous.len(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(limits: SessionLimits) -> SessionBindings {
        SessionBindings::new(limits)
    }

    fn open(t: &SessionBindings, id: &str, who: Option<&str>) -> Result<(), Refused> {
        let owner = who
            .map(|w| Owner::Subject(w.into()))
            .unwrap_or(Owner::Anonymous);
        let mut ended = Vec::new();
        let mut s = t.lock();
        s.make_room(&owner, None, &t.limits, &mut ended)?;
        s.insert(id.into(), owner, Instant::now());
        Ok(())
    }

    fn has(t: &SessionBindings, id: &str) -> bool {
        t.lock().by_id.contains_key(id)
    }

    #[test]
    fn anonymous_sessions_make_room_among_themselves_and_never_displace_a_signed_in_one() {
        let t = table(SessionLimits::default().total(4).anonymous(2));
        open(&t, "alice-1", Some("alice")).unwrap();
        for i in 0..100 {
            open(&t, &format!("anon-{i}"), None).unwrap();
        }
        assert!(has(&t, "alice-1"));
        assert!(has(&t, "anon-98") && has(&t, "anon-99"));
        assert_eq!(
            t.counts(),
            SessionCounts {
                signed_in: 1,
                anonymous: 2
            }
        );
        open(&t, "bob-1", Some("bob")).unwrap();
        open(&t, "carol-1", Some("carol")).unwrap();
        // Full: the signed-in sessions took the anonymous ones' room.
        assert_eq!(
            t.counts(),
            SessionCounts {
                signed_in: 3,
                anonymous: 1
            }
        );
        open(&t, "dave-1", Some("dave")).unwrap();
        assert_eq!(
            t.counts(),
            SessionCounts {
                signed_in: 4,
                anonymous: 0
            }
        );
        assert_eq!(open(&t, "anon-x", None), Err(Refused::Full));
        assert!(has(&t, "alice-1"));
    }

    #[test]
    fn a_subject_at_its_bound_gives_up_its_own_oldest_session() {
        let t = table(SessionLimits::default().per_subject(2));
        open(&t, "a1", Some("alice")).unwrap();
        open(&t, "b1", Some("bob")).unwrap();
        open(&t, "a2", Some("alice")).unwrap();
        open(&t, "a3", Some("alice")).unwrap();
        assert!(!has(&t, "a1"));
        assert!(has(&t, "a2") && has(&t, "a3") && has(&t, "b1"));
    }

    #[test]
    fn an_anonymous_session_signed_in_to_counts_for_its_subject() {
        let t = table(SessionLimits::default().per_subject(1));
        let claims = serde_json::json!({"iss": "https://as.example", "sub": "alice", "exp": 4_000_000_000u64});
        let alice = Principal::from_claims(claims.as_object().unwrap().clone()).unwrap();
        t.open("s1", Some(&alice)).unwrap();
        open(&t, "anon", None).unwrap();
        assert!(t.check("anon", Some(&alice)));
        assert!(!has(&t, "s1"), "alice's older session made room");
        assert!(!t.check("anon", None), "no longer anonymous");
        assert!(t.is_bound("anon"));
    }

    #[test]
    fn anonymous_sessions_idle_past_their_life_end() {
        let t = table(SessionLimits::default().anonymous_idle(Duration::ZERO));
        open(&t, "anon", None).unwrap();
        std::thread::sleep(Duration::from_millis(5));
        assert!(!t.check("anon", None));
        assert!(!has(&t, "anon"));
        open(&t, "anon2", None).unwrap();
        std::thread::sleep(Duration::from_millis(5));
        t.sweep();
        assert!(!has(&t, "anon2"));
    }

    #[test]
    fn signed_in_sessions_idle_past_the_keep_alive_end_too() {
        let t = table(SessionLimits::default().idle(Duration::ZERO));
        open(&t, "alice-1", Some("alice")).unwrap();
        std::thread::sleep(Duration::from_millis(5));
        t.sweep();
        assert!(!has(&t, "alice-1"));
        assert_eq!(t.counts(), SessionCounts::default());
    }

    #[test]
    fn only_signed_in_sessions_at_the_bound_refuse_an_anonymous_caller_up_front() {
        let t = table(SessionLimits::default().total(1));
        assert_eq!(t.precheck(None), Ok(()));
        open(&t, "alice-1", Some("alice")).unwrap();
        assert_eq!(t.precheck(None), Err(Refused::Full));
        let off = table(SessionLimits::default().anonymous_sessions(false));
        assert_eq!(off.precheck(None), Err(Refused::NeedsToken));
    }

    #[test]
    fn refusing_anonymous_sessions_asks_for_a_token() {
        let t = table(SessionLimits::default().anonymous_sessions(false));
        assert_eq!(t.open("anon", None), Err(Refused::NeedsToken));
        assert!(!has(&t, "anon"));
    }
}
