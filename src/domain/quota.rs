//! Quotas: how much one client address, one site and one account may send — page views
//! per second, new visitors per hour, form posts per hour — shared by every instance
//! because the counters live in the store.
//!
//! Each quota is a GCRA (generic cell rate algorithm) counter: one number per key, the
//! "theoretical arrival time" (TAT) in microseconds. A request moves the TAT one interval
//! (period / count) on from `max(TAT, now)` and is admitted while the TAT stays within the
//! burst (`capacity`) of now. An empty bucket holds `burst` requests at once, then refills
//! at `count` per period. The Redis store runs the same arithmetic in Lua
//! (`store/redis/quotas.rs`) with Redis's clock, so that all instances agree.

use std::net::IpAddr;

use super::ids::SiteId;

const MICROS_PER_SEC: u64 = 1_000_000;

/// What is counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum QuotaKind {
    /// Page views (beacons), per second.
    PageViews,
    /// Beacons of a browser seen for the first time, per hour.
    NewVisitors,
    /// Form submissions, per hour.
    FormPosts,
}

impl QuotaKind {
    pub const ALL: [Self; 3] = [Self::PageViews, Self::NewVisitors, Self::FormPosts];

    pub fn code(self) -> &'static str {
        match self {
            Self::PageViews => "page_views",
            Self::NewVisitors => "new_visitors",
            Self::FormPosts => "form_posts",
        }
    }

    /// The short name in store keys.
    pub fn short(self) -> &'static str {
        match self {
            Self::PageViews => "pv",
            Self::NewVisitors => "nv",
            Self::FormPosts => "fp",
        }
    }
}

/// A client address as the quotas count it: a keyed hash of it (SipHash-2-4 under a
/// secret derived from the cookie key), so that the store never holds an address, and
/// instances that share the key count one address under one tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AddressTag(pub u64);

/// Makes [`AddressTag`]s.
pub struct AddressTags(siphasher::sip::SipHasher24);

impl AddressTags {
    pub fn new(secret: [u8; 16]) -> Self {
        Self(siphasher::sip::SipHasher24::new_with_key(&secret))
    }

    /// The tag of a client's limit key (`http::client::limit_key`).
    pub fn of(&self, ip: IpAddr) -> AddressTag {
        let tag = match ip {
            IpAddr::V4(v4) => self.0.hash(&v4.octets()),
            IpAddr::V6(v6) => self.0.hash(&v6.octets()),
        };
        AddressTag(tag)
    }
}

/// Whose use is counted, always inside one account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scope {
    /// One client address (an IPv6 client per /64), by its tag.
    Address(AddressTag),
    Site(SiteId),
    Account,
}

impl Scope {
    pub fn code(&self) -> &'static str {
        match self {
            Self::Address(_) => "address",
            Self::Site(_) => "site",
            Self::Account => "account",
        }
    }

    /// The scope's part of a store key.
    pub fn key_part(&self) -> String {
        match self {
            Self::Address(tag) => format!("addr:{:016x}", tag.0),
            Self::Site(id) => format!("site:{id}"),
            Self::Account => "all".to_owned(),
        }
    }
}

/// A rate: `count` per `period_secs`, `burst` of them at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    /// Microseconds one request takes of the bucket.
    pub interval_us: u64,
    /// Microseconds of requests the bucket holds (`burst` intervals).
    pub capacity_us: u64,
}

impl Limit {
    /// `None` when `count` is 0 (the quota is off).
    pub fn new(count: u64, period_secs: u64, burst: u64) -> Option<Self> {
        if count == 0 {
            return None;
        }
        let interval_us = (period_secs * MICROS_PER_SEC / count).max(1);
        Some(Self {
            interval_us,
            capacity_us: interval_us * burst.max(1),
        })
    }

    /// How many requests the bucket holds when empty.
    pub fn burst(&self) -> u64 {
        self.capacity_us / self.interval_us
    }

    /// How many requests a bucket at `tat` holds now (0 when full use has drained).
    pub fn used(&self, tat_us: i64, now_us: i64) -> u64 {
        let ahead = (tat_us - now_us).max(0) as u64;
        ahead.div_ceil(self.interval_us).min(self.burst())
    }
}

/// One quota a request is charged against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota {
    pub kind: QuotaKind,
    pub scope: Scope,
    pub limit: Limit,
}

impl Quota {
    /// The quota's store key inside its account (`q:<kind>:<scope>`).
    pub fn key_suffix(&self) -> String {
        format!("q:{}:{}", self.kind.short(), self.scope.key_part())
    }
}

/// A request refused by a quota: which one, and how long until it admits again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OverQuota {
    /// The quota that refused; none when the account's Unsorted is full.
    pub quota: Option<Quota>,
    /// Microseconds until the quota admits again: the store's answer, or this instance's
    /// lower bound of it (`FullBucket`).
    pub wait_us: u64,
}

impl OverQuota {
    /// The account's Unsorted holds its most entries (`limits.max_unsorted_per_account`):
    /// the client waits an hour, for someone to sort it.
    pub const UNSORTED_FULL: OverQuota = OverQuota {
        quota: None,
        wait_us: 3_600 * MICROS_PER_SEC,
    };

    /// What was counted (`form_posts` for a full Unsorted).
    pub fn kind(&self) -> QuotaKind {
        self.quota.map_or(QuotaKind::FormPosts, |q| q.kind)
    }

    /// Whose use: `address`, `site`, `account`, or `unsorted` for a full Unsorted.
    pub fn scope(&self) -> &'static str {
        self.quota.map_or("unsorted", |q| q.scope.code())
    }
}

/// One GCRA step: the new TAT when admitted, else the wait in microseconds.
pub fn gcra(tat_us: i64, now_us: i64, limit: Limit) -> Result<i64, u64> {
    let new = tat_us.max(now_us) + limit.interval_us as i64;
    let over = new - now_us - limit.capacity_us as i64;
    if over > 0 { Err(over as u64) } else { Ok(new) }
}

/// Charges every quota or none: the new TATs, else the quota whose wait is longest (its
/// index) and that wait in microseconds.
pub fn charge_all(tats: &[i64], now_us: i64, quotas: &[Quota]) -> Result<Vec<i64>, (usize, u64)> {
    let mut worst: Option<(usize, u64)> = None;
    let mut new = Vec::with_capacity(quotas.len());
    for (i, (tat, q)) in tats.iter().zip(quotas).enumerate() {
        match gcra(*tat, now_us, q.limit) {
            Ok(t) => new.push(t),
            Err(wait) if worst.is_none_or(|(_, w)| wait > w) => worst = Some((i, wait)),
            Err(_) => {}
        }
    }
    worst.map_or(Ok(new), Err)
}

/// A shared quota (a site's or an account's) that the store has found full, as one
/// instance sees it. A full GCRA bucket admits one request per interval, from the moment
/// its refusal named on: the instance passes one request per such slot on to the store
/// and refuses the others itself, which the store would refuse too. `next_us` is a lower
/// bound of the store's next slot (a refusal's wait counts from when the request was
/// sent, before the store looked), so the instance errs towards asking the store.
///
/// The instance forgets the bucket, and asks the store about every request again, when a
/// slot goes unused (demand fell below the rate: the bucket is refilling) or when the
/// store's word is older than [`FULL_BUCKET_TRUSTED_US`]: a slot taken by a request that
/// never reached the store and was not given back, or a step of Redis's clock, then
/// costs at most that long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FullBucket {
    /// The earliest moment the store admits the next request (µs, this instance's clock).
    next_us: i64,
    interval_us: i64,
    /// When the store first said so (µs, this instance's clock).
    learned_us: i64,
}

/// How long an instance trusts the store's word that a bucket is full (µs): long enough
/// that re-learning it (a few requests passed on until the store refuses one) is rare
/// under attack, short enough that what an error keeps from honest clients is a second.
pub const FULL_BUCKET_TRUSTED_US: i64 = 1_000_000;

/// What a full bucket says of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Slot {
    /// This slot is free: the request goes to the store (`FullBucket::take`).
    Free,
    /// The store would refuse it: the next slot is this many microseconds away.
    Taken { wait_us: u64 },
    /// No longer known to be full: a slot went unused, or the store's word is too old.
    Unknown,
}

impl FullBucket {
    /// The bucket of `limit` that refused a request sent at `sent_us`, waiting `wait_us`.
    pub fn refused(sent_us: i64, wait_us: u64, limit: Limit) -> Self {
        Self {
            next_us: sent_us + wait_us as i64,
            interval_us: limit.interval_us as i64,
            learned_us: sent_us,
        }
    }

    /// Another refusal of the store: the next slot is no earlier than it says.
    pub fn refused_again(&mut self, sent_us: i64, wait_us: u64) {
        self.next_us = self.next_us.max(sent_us + wait_us as i64);
    }

    pub fn slot(&self, now_us: i64) -> Slot {
        if now_us - self.learned_us >= FULL_BUCKET_TRUSTED_US
            || now_us >= self.next_us + self.interval_us
        {
            Slot::Unknown
        } else if now_us < self.next_us {
            Slot::Taken {
                wait_us: (self.next_us - now_us) as u64,
            }
        } else {
            Slot::Free
        }
    }

    /// A request passed on in the free slot: the next one is an interval later.
    pub fn take(&mut self) {
        self.next_us += self.interval_us;
    }

    /// A passed request did not use its slot (the store refused it for another quota,
    /// or never answered): the slot is free again.
    pub fn give_back(&mut self) {
        self.next_us -= self.interval_us;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_admits_its_burst_at_once_then_refills_at_the_rate() {
        let limit = Limit::new(10, 1, 40).unwrap(); // 10/s, 40 at once
        assert_eq!(limit.burst(), 40);
        let mut tat = 0;
        let now = 1_000_000_000;
        for _ in 0..40 {
            tat = gcra(tat, now, limit).unwrap();
        }
        assert_eq!(limit.used(tat, now), 40);
        let wait = gcra(tat, now, limit).unwrap_err();
        assert_eq!(wait, 100_000, "one interval (100 ms) until the next");
        // A tenth of a second later, exactly one more.
        let later = now + 100_000;
        tat = gcra(tat, later, limit).unwrap();
        assert!(gcra(tat, later, limit).is_err());
        assert_eq!(limit.used(tat, later + 10_000_000), 0);
    }

    #[test]
    fn all_quotas_are_charged_or_none() {
        let q = |count| Quota {
            kind: QuotaKind::FormPosts,
            scope: Scope::Account,
            limit: Limit::new(count, 3600, count).unwrap(),
        };
        let quotas = [q(10), q(1)];
        let now = 5_000_000;
        let tats = charge_all(&[0, 0], now, &quotas).unwrap();
        assert_eq!(charge_all(&tats, now, &quotas).unwrap_err().0, 1);
        assert!(Limit::new(0, 1, 4).is_none(), "0 turns a quota off");
    }

    #[test]
    fn a_full_bucket_passes_one_request_per_interval_and_forgets_itself_when_a_slot_goes_unused() {
        let limit = Limit::new(2000, 1, 8000).unwrap(); // 500 µs a request
        // Refused at 1 000 µs, the store's next slot 300 µs later.
        let mut full = FullBucket::refused(1_000, 300, limit);
        assert_eq!(full.slot(1_100), Slot::Taken { wait_us: 200 });
        assert_eq!(full.slot(1_300), Slot::Free);
        full.take();
        assert_eq!(full.slot(1_400), Slot::Taken { wait_us: 400 });
        // The next slot is 1 800–2 300 µs: a request late in it still takes it...
        assert_eq!(full.slot(2_299), Slot::Free);
        full.take();
        // ... and one that finds a whole slot gone by forgets the bucket.
        assert_eq!(full.slot(2_800), Slot::Unknown);
        // A passed request that the store refused elsewhere gives its slot back; a later
        // refusal only moves the next slot later.
        full.give_back();
        assert_eq!(full.slot(1_900), Slot::Free);
        full.refused_again(1_000, 100);
        assert_eq!(full.slot(1_900), Slot::Free);
        full.refused_again(1_900, 400);
        assert_eq!(full.slot(1_900), Slot::Taken { wait_us: 400 });
        // However full it stays, the store's word is trusted for a second at most.
        for now in (1_900..1_000_000).step_by(500) {
            if full.slot(now) == Slot::Free {
                full.take();
            }
        }
        assert_ne!(full.slot(1_000_000), Slot::Unknown, "{full:?}");
        assert_eq!(full.slot(1_001_000), Slot::Unknown);
    }
}
