//! Work items and candidate agents described by *names* (skill, queue and
//! attribute names, channels, tiers), and the batches and candidate tables the
//! host would send for them: what fixture files describe, what the SDK's native
//! harness and the host's plugin tools build, in one place so both sides build
//! the same bytes.

use std::collections::BTreeMap;

use crate::batch::{CandidateTable, ItemBatch, NewCandidate, NewItem};
use crate::names::Catalog;
use crate::types::{Channel, SkillId, SkillReq, Tier};

/// Decision time the native harness and fixture files use unless told otherwise: 2026-01-01T00:00:00Z.
pub const DEFAULT_NOW_MS: u64 = 1_767_225_600_000;

/// A work item described by names, for tests and fixture files.
///
/// ```
/// use switchyard_contract::named::WorkItem;
/// use switchyard_contract::{Channel, Tier};
/// let item = WorkItem::voice("billing")
///     .tier(Tier::Gold)
///     .contacts(2)
///     .value(300.0)
///     .attr("amount", "300")
///     .skill("billing", 3)
///     .age_s(30)
///     .due_in_s(3600);
/// assert_eq!(item.channel, Channel::Voice);
/// assert_eq!(item.skills, vec![("billing".to_string(), 3)]);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct WorkItem {
    /// Host id; `None` numbers items 1, 2, … in batch order.
    pub id: Option<u64>,
    /// Channel.
    pub channel: Channel,
    /// Name of the queue the item waits in.
    pub queue: String,
    /// Customer tier.
    pub tier: Tier,
    /// Contacts about this case within the FCR window (1 = first contact).
    pub contacts: u16,
    /// Current priority.
    pub priority: i32,
    /// Money at stake.
    pub value: f64,
    /// Age (wait so far) in milliseconds.
    pub age_ms: u64,
    /// Time to due in milliseconds (negative = overdue); `None` = no due time.
    pub due_in_ms: Option<i64>,
    /// Required skills by name with minimum level, in order.
    pub skills: Vec<(String, u8)>,
    /// Attributes by key name, in order.
    pub attributes: Vec<(String, String)>,
}

impl WorkItem {
    /// A first-contact standard-tier item on `channel` in queue `queue`, age 0, no due time.
    pub fn new(channel: Channel, queue: &str) -> Self {
        WorkItem {
            id: None,
            channel,
            queue: queue.to_owned(),
            tier: Tier::Standard,
            contacts: 1,
            priority: 0,
            value: 0.0,
            age_ms: 0,
            due_in_ms: None,
            skills: Vec::new(),
            attributes: Vec::new(),
        }
    }
    /// A voice call in `queue`.
    pub fn voice(queue: &str) -> Self {
        Self::new(Channel::Voice, queue)
    }
    /// A chat in `queue`.
    pub fn chat(queue: &str) -> Self {
        Self::new(Channel::Chat, queue)
    }
    /// An e-mail in `queue`.
    pub fn email(queue: &str) -> Self {
        Self::new(Channel::Email, queue)
    }
    /// A back-office case in `queue`.
    pub fn case(queue: &str) -> Self {
        Self::new(Channel::Case, queue)
    }
    /// Set the host id.
    pub fn id(mut self, id: u64) -> Self {
        self.id = Some(id);
        self
    }
    /// Set the customer tier.
    pub fn tier(mut self, tier: Tier) -> Self {
        self.tier = tier;
        self
    }
    /// Set the contact count (2 or more = repeat contact).
    pub fn contacts(mut self, contacts: u16) -> Self {
        self.contacts = contacts;
        self
    }
    /// Set the current priority.
    pub fn priority(mut self, priority: i32) -> Self {
        self.priority = priority;
        self
    }
    /// Set the money at stake.
    pub fn value(mut self, value: f64) -> Self {
        self.value = value;
        self
    }
    /// Add an attribute.
    pub fn attr(mut self, key: &str, value: &str) -> Self {
        self.attributes.push((key.to_owned(), value.to_owned()));
        self
    }
    /// Require `skill` at `level` or above.
    pub fn skill(mut self, skill: &str, level: u8) -> Self {
        self.skills.push((skill.to_owned(), level));
        self
    }
    /// Set the age in seconds.
    pub fn age_s(mut self, seconds: u64) -> Self {
        self.age_ms = seconds.saturating_mul(1000);
        self
    }
    /// Set the age in milliseconds.
    pub fn age_ms(mut self, ms: u64) -> Self {
        self.age_ms = ms;
        self
    }
    /// Set the time left to the due time in seconds (negative = overdue).
    pub fn due_in_s(mut self, seconds: i64) -> Self {
        self.due_in_ms = Some(seconds.saturating_mul(1000));
        self
    }
    /// Set the time left to the due time in milliseconds (negative = overdue).
    pub fn due_in_ms(mut self, ms: i64) -> Self {
        self.due_in_ms = Some(ms);
        self
    }

    /// Append this item to `batch`, interning its names into `catalog`; `index`
    /// numbers it when it has no explicit id.
    pub fn push_into(&self, batch: &mut ItemBatch, catalog: &mut Catalog, index: usize) -> usize {
        let queue = catalog.queues.intern(&self.queue);
        let skills: Vec<SkillReq> = self
            .skills
            .iter()
            .map(|(name, level)| SkillReq { skill: SkillId(catalog.skills.intern(name)), level: *level })
            .collect();
        let keys: Vec<u32> = self.attributes.iter().map(|(k, _)| catalog.attributes.intern(k)).collect();
        let attributes: Vec<(u32, &str)> =
            keys.iter().zip(&self.attributes).map(|(&k, (_, v))| (k, v.as_str())).collect();
        batch.push(NewItem {
            id: self.id.unwrap_or(index as u64 + 1),
            channel: Some(self.channel),
            queue,
            tier: self.tier,
            contacts: self.contacts,
            priority: self.priority,
            age_ms: self.age_ms,
            due_in_ms: self.due_in_ms,
            value: self.value,
            skills: &skills,
            attributes: &attributes,
        })
    }
}

/// Items an agent handles now, per channel (blending).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(deny_unknown_fields))]
pub struct Load {
    /// Calls in progress.
    #[cfg_attr(feature = "serde", serde(default))]
    pub voice: u8,
    /// Chats in progress.
    #[cfg_attr(feature = "serde", serde(default))]
    pub chat: u8,
    /// E-mails in progress.
    #[cfg_attr(feature = "serde", serde(default))]
    pub email: u8,
    /// Cases in progress.
    #[cfg_attr(feature = "serde", serde(default, rename = "case"))]
    pub case: u8,
}

impl Load {
    /// The load in contract channel order.
    pub fn as_array(&self) -> [u8; 4] {
        [self.voice, self.chat, self.email, self.case]
    }
}

/// A candidate agent described by names, for tests and fixture files.
///
/// ```
/// use switchyard_contract::named::Agent;
/// use switchyard_contract::Channel;
/// let a = Agent::new(7).skill("billing", 6).skill("lang-es", 8).idle_s(40).occupancy(0.7).load(Channel::Chat, 2);
/// assert_eq!(a.id, 7);
/// assert_eq!(a.load.chat, 2);
/// ```
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(deny_unknown_fields))]
pub struct Agent {
    /// Host id of the agent.
    pub id: u64,
    /// Proficiency (1-10) by skill name.
    #[cfg_attr(feature = "serde", serde(default))]
    pub skills: BTreeMap<String, u8>,
    /// Idle time in seconds (fractions allowed).
    #[cfg_attr(feature = "serde", serde(default))]
    pub idle_s: f64,
    /// Occupancy so far, 0.0-1.0.
    #[cfg_attr(feature = "serde", serde(default))]
    pub occupancy: f32,
    /// Current load per channel.
    #[cfg_attr(feature = "serde", serde(default))]
    pub load: Load,
}

impl Agent {
    /// An idle-for-0-s agent with no skills and no load.
    pub fn new(id: u64) -> Self {
        Agent { id, skills: BTreeMap::new(), idle_s: 0.0, occupancy: 0.0, load: Load::default() }
    }
    /// Give the agent `skill` at proficiency `level`.
    pub fn skill(mut self, skill: &str, level: u8) -> Self {
        self.skills.insert(skill.to_owned(), level);
        self
    }
    /// Set the idle time in seconds.
    pub fn idle_s(mut self, seconds: u64) -> Self {
        self.idle_s = seconds as f64;
        self
    }
    /// Set the occupancy so far (0.0-1.0).
    pub fn occupancy(mut self, occupancy: f32) -> Self {
        self.occupancy = occupancy;
        self
    }
    /// Set the number of items the agent handles on `channel`.
    pub fn load(mut self, channel: Channel, items: u8) -> Self {
        match channel {
            Channel::Voice => self.load.voice = items,
            Channel::Chat => self.load.chat = items,
            Channel::Email => self.load.email = items,
            Channel::Case => self.load.case = items,
        }
        self
    }
}

/// Build the candidate table for `item` (already in `catalog`) and `agents`. The
/// skill columns are the item's required skills first, then every other skill an
/// agent has, in order of first appearance.
pub fn candidate_table(item: &WorkItem, agents: &[Agent], catalog: &mut Catalog) -> CandidateTable {
    let mut columns: Vec<u32> = Vec::new();
    let names = item
        .skills
        .iter()
        .map(|(n, _)| n.as_str())
        .chain(agents.iter().flat_map(|a| a.skills.keys().map(String::as_str)));
    for name in names {
        let id = catalog.skills.intern(name);
        if !columns.contains(&id) {
            columns.push(id);
        }
    }
    let mut table = CandidateTable::new(columns.clone());
    for agent in agents {
        let proficiency: Vec<u8> = columns
            .iter()
            .map(|&c| {
                let name = catalog.skills.name(c).unwrap_or_default();
                agent.skills.get(name).copied().unwrap_or(0)
            })
            .collect();
        table.push(NewCandidate {
            id: agent.id,
            proficiency: &proficiency,
            idle_ms: (agent.idle_s.max(0.0) * 1000.0).round() as u64,
            occupancy: agent.occupancy,
            load: agent.load.as_array(),
        });
    }
    table
}
