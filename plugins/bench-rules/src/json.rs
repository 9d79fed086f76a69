//! The shapes of the Extism JSON calling style: what a team would write for a
//! JSON plugin API — an array of item objects, an array of candidate objects —
//! and the moves to and from the contract's batch and table.

use serde::{Deserialize, Serialize};
use switchyard_sdk::{CandidateTable, Channel, ItemBatch, NO_DUE, NewCandidate, NewItem, SkillReq, Tier};

/// One work item.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JsonItem {
    /// Host id.
    pub id: u64,
    /// Channel.
    pub channel: Channel,
    /// Interned queue id.
    pub queue: u32,
    /// Tier 0-3.
    pub tier: u8,
    /// Contacts in the FCR window.
    pub contacts: u16,
    /// Current priority.
    pub priority: i32,
    /// Age, ms.
    pub age_ms: u64,
    /// Time to due, ms (`i64::MAX` = none).
    pub due_in_ms: i64,
    /// Money at stake.
    pub value: f64,
    /// Required skills.
    pub skills: Vec<SkillReq>,
}

/// A `prioritise` request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JsonBatch {
    /// Decision time.
    pub now_ms: u64,
    /// The items.
    pub items: Vec<JsonItem>,
}

/// One candidate agent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JsonCandidate {
    /// Host id.
    pub id: u64,
    /// Proficiency per skill column.
    pub proficiency: Vec<u8>,
    /// Idle time, ms.
    pub idle_ms: u64,
    /// Occupancy 0-1.
    pub occupancy: f32,
    /// Items in hand per channel.
    pub load: [u8; 4],
}

/// A `match-agents` request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JsonMatch {
    /// The item (a batch of one).
    pub item: JsonBatch,
    /// Skill ids of the proficiency columns.
    pub skill_columns: Vec<u32>,
    /// The candidates.
    pub candidates: Vec<JsonCandidate>,
}

impl JsonBatch {
    /// The JSON shape of `batch` (attributes are not carried).
    pub fn of(batch: &ItemBatch) -> Self {
        JsonBatch {
            now_ms: batch.now_ms,
            items: batch
                .iter()
                .map(|item| {
                    let r = item.row();
                    JsonItem {
                        id: r.id,
                        channel: r.channel,
                        queue: r.queue,
                        tier: r.tier,
                        contacts: r.contacts,
                        priority: r.priority,
                        age_ms: r.age_ms,
                        due_in_ms: r.due_in_ms,
                        value: r.value,
                        skills: item.skills().to_vec(),
                    }
                })
                .collect(),
        }
    }

    /// Back to the contract's batch.
    pub fn to_batch(&self) -> ItemBatch {
        let mut batch = ItemBatch::with_capacity(self.now_ms, self.items.len());
        for i in &self.items {
            batch.push(NewItem {
                id: i.id,
                channel: Some(i.channel),
                queue: i.queue,
                tier: Tier::from_u8(i.tier),
                contacts: i.contacts,
                priority: i.priority,
                age_ms: i.age_ms,
                due_in_ms: (i.due_in_ms != NO_DUE).then_some(i.due_in_ms),
                value: i.value,
                skills: &i.skills,
                attributes: &[],
            });
        }
        batch
    }
}

impl JsonMatch {
    /// The JSON shape of a match request.
    pub fn of(item: &ItemBatch, table: &CandidateTable) -> Self {
        let k = table.skill_columns.len();
        JsonMatch {
            item: JsonBatch::of(item),
            skill_columns: table.skill_columns.clone(),
            candidates: table
                .iter()
                .map(|c| JsonCandidate {
                    id: c.id(),
                    proficiency: (0..k).map(|j| c.proficiency_at(j)).collect(),
                    idle_ms: c.idle_ms(),
                    occupancy: c.occupancy(),
                    load: Channel::ALL.map(|ch| c.load(ch)),
                })
                .collect(),
        }
    }

    /// Back to the contract's batch and table.
    pub fn to_parts(&self) -> (ItemBatch, CandidateTable) {
        let mut table = CandidateTable::new(self.skill_columns.clone());
        for c in &self.candidates {
            table.push(NewCandidate {
                id: c.id,
                proficiency: &c.proficiency,
                idle_ms: c.idle_ms,
                occupancy: c.occupancy,
                load: c.load,
            });
        }
        (self.item.to_batch(), table)
    }
}
