//! The wire shapes of the contract as owned Rust values, plus the borrowed views a
//! rule reads them through.
//!
//! [`ItemBatch`] and [`CandidateTable`] have exactly the layout of the WIT records
//! `item-batch` and `candidate-table` (struct-of-arrays, see DESIGN.md): the host
//! builds them with [`ItemBatch::push`], the guest glue moves the lifted lists in,
//! and rules read them through [`Item`] and [`Candidate`] without copying.

use crate::types::{AttrKey, Channel, NO_DUE, QueueId, SkillId, SkillReq, Tier};

/// The fixed-size part of one work item (`item-row` in WIT).
///
/// `#[repr(C)]` with the fields in WIT order: on every target its layout is the
/// canonical-ABI layout of `item-row` (size 64, align 8; checked at compile time
/// below against the layout computed from the WIT), so the guest glue adopts the `list<item-row>` the host lowered as a
/// `Vec<ItemRow>` without copying (see `crate::abi`). Keep the fields in WIT order.
#[derive(Debug, Clone, Copy, PartialEq)]
#[repr(C)]
pub struct ItemRow {
    /// Host-assigned id.
    pub id: u64,
    /// Channel.
    pub channel: Channel,
    /// Interned queue id.
    pub queue: u32,
    /// Customer tier (0-3).
    pub tier: u8,
    /// Contacts about this case within the FCR window, this one included.
    pub contacts: u16,
    /// Current priority.
    pub priority: i32,
    /// Age in milliseconds.
    pub age_ms: u64,
    /// Time to due, ms; negative when overdue; [`NO_DUE`] when none.
    pub due_in_ms: i64,
    /// Money at stake.
    pub value: f64,
    /// First required skill in [`ItemBatch::skills`].
    pub skill_start: u32,
    /// Number of required skills.
    pub skill_count: u32,
    /// First attribute in [`ItemBatch::attr_keys`].
    pub attr_start: u32,
    /// Number of attributes.
    pub attr_count: u32,
}

// The canonical-ABI layout of `item-row`, as computed from the WIT
// ([`crate::layout`]): the guest glue views the host's list in place, so
// any drift from it (a WIT field moved, retyped or added) fails the build, on
// every target.
const _: () = {
    use crate::layout::ITEM_ROW;
    use core::mem::{align_of, offset_of, size_of};
    assert!(size_of::<ItemRow>() == ITEM_ROW.size && align_of::<ItemRow>() == ITEM_ROW.align);
    assert!(ITEM_ROW.fields.len() == 13);
    macro_rules! at {
        ($field:ident: $ty:ty = $name:literal) => {
            assert!(offset_of!(ItemRow, $field) == ITEM_ROW.offset($name));
            assert!(size_of::<$ty>() == ITEM_ROW.field($name).size);
        };
    }
    at!(id: u64 = "id");
    at!(channel: Channel = "channel");
    at!(queue: u32 = "queue");
    at!(tier: u8 = "tier");
    at!(contacts: u16 = "contacts");
    at!(priority: i32 = "priority");
    at!(age_ms: u64 = "age-ms");
    at!(due_in_ms: i64 = "due-in-ms");
    at!(value: f64 = "value");
    at!(skill_start: u32 = "skill-start");
    at!(skill_count: u32 = "skill-count");
    at!(attr_start: u32 = "attr-start");
    at!(attr_count: u32 = "attr-count");
};

/// A batch of work items in struct-of-arrays form (`item-batch` in WIT).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ItemBatch {
    /// Decision time, ms since the Unix epoch.
    pub now_ms: u64,
    /// One row per item.
    pub rows: Vec<ItemRow>,
    /// Required skills of all items.
    pub skills: Vec<SkillReq>,
    /// Attribute keys of all items.
    pub attr_keys: Vec<u32>,
    /// End offset (bytes, exclusive) of each attribute value in `attr_values`.
    pub attr_value_ends: Vec<u32>,
    /// All attribute values concatenated.
    pub attr_values: String,
}

/// Everything about one item that [`ItemBatch::push`] needs.
#[derive(Debug, Clone, Default)]
pub struct NewItem<'a> {
    /// Host id.
    pub id: u64,
    /// Channel (defaults to voice).
    pub channel: Option<Channel>,
    /// Interned queue.
    pub queue: u32,
    /// Tier.
    pub tier: Tier,
    /// Contacts (0 is treated as 1).
    pub contacts: u16,
    /// Current priority.
    pub priority: i32,
    /// Age in ms.
    pub age_ms: u64,
    /// Due in ms, or `None` for no due time.
    pub due_in_ms: Option<i64>,
    /// Money at stake.
    pub value: f64,
    /// Required skills.
    pub skills: &'a [SkillReq],
    /// Attributes as (interned key, value).
    pub attributes: &'a [(u32, &'a str)],
}

impl ItemBatch {
    /// An empty batch decided at `now_ms`.
    pub fn new(now_ms: u64) -> Self {
        ItemBatch { now_ms, ..Default::default() }
    }

    /// An empty batch with room for `items` items.
    pub fn with_capacity(now_ms: u64, items: usize) -> Self {
        ItemBatch { now_ms, rows: Vec::with_capacity(items), ..Default::default() }
    }

    /// Append one item; returns its index in the batch.
    pub fn push(&mut self, item: NewItem<'_>) -> usize {
        let skill_start = self.skills.len() as u32;
        self.skills.extend_from_slice(item.skills);
        let attr_start = self.attr_keys.len() as u32;
        for (key, value) in item.attributes {
            self.attr_keys.push(*key);
            self.attr_values.push_str(value);
            self.attr_value_ends.push(self.attr_values.len() as u32);
        }
        self.rows.push(ItemRow {
            id: item.id,
            channel: item.channel.unwrap_or(Channel::Voice),
            queue: item.queue,
            tier: item.tier.as_u8(),
            contacts: item.contacts.max(1),
            priority: item.priority,
            age_ms: item.age_ms,
            due_in_ms: item.due_in_ms.unwrap_or(NO_DUE),
            value: item.value,
            skill_start,
            skill_count: item.skills.len() as u32,
            attr_start,
            attr_count: item.attributes.len() as u32,
        });
        self.rows.len() - 1
    }

    /// Number of items.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Whether the batch is empty.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The item at `index`.
    pub fn get(&self, index: usize) -> Option<Item<'_>> {
        self.rows.get(index).map(|row| Item { batch: self, row })
    }

    /// Iterate over the items.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = Item<'_>> + '_ {
        self.rows.iter().map(move |row| Item { batch: self, row })
    }

    /// Check the internal offsets (what a guest must do before trusting a batch it
    /// did not build). Returns a description of the first inconsistency.
    pub fn validate(&self) -> Result<(), String> {
        if self.attr_keys.len() != self.attr_value_ends.len() {
            return Err(format!(
                "{} attribute keys but {} value ends",
                self.attr_keys.len(),
                self.attr_value_ends.len()
            ));
        }
        let mut previous = 0u32;
        for (i, &end) in self.attr_value_ends.iter().enumerate() {
            if end < previous
                || end as usize > self.attr_values.len()
                || !self.attr_values.is_char_boundary(end as usize)
            {
                return Err(format!("attribute value end {i} ({end}) is out of order or out of range"));
            }
            previous = end;
        }
        for (i, row) in self.rows.iter().enumerate() {
            let skills_end = row.skill_start as u64 + row.skill_count as u64;
            if skills_end > self.skills.len() as u64 {
                return Err(format!("item {i} addresses skills beyond the batch"));
            }
            let attrs_end = row.attr_start as u64 + row.attr_count as u64;
            if attrs_end > self.attr_keys.len() as u64 {
                return Err(format!("item {i} addresses attributes beyond the batch"));
            }
        }
        Ok(())
    }
}

/// A read-only view of one item of a batch.
#[derive(Debug, Clone, Copy)]
pub struct Item<'a> {
    batch: &'a ItemBatch,
    row: &'a ItemRow,
}

impl<'a> Item<'a> {
    /// The raw row.
    pub fn row(&self) -> &'a ItemRow {
        self.row
    }
    /// Host id.
    pub fn id(&self) -> u64 {
        self.row.id
    }
    /// Channel.
    pub fn channel(&self) -> Channel {
        self.row.channel
    }
    /// Queue the item waits in.
    pub fn queue(&self) -> QueueId {
        QueueId(self.row.queue)
    }
    /// Customer tier.
    pub fn tier(&self) -> Tier {
        Tier::from_u8(self.row.tier)
    }
    /// Contacts about this case in the FCR window (1 = first contact).
    pub fn contacts(&self) -> u16 {
        self.row.contacts
    }
    /// Whether this is a repeat contact (a failed first-contact resolution).
    pub fn is_repeat(&self) -> bool {
        self.row.contacts > 1
    }
    /// Current priority.
    pub fn priority(&self) -> i32 {
        self.row.priority
    }
    /// Age (wait so far) in milliseconds.
    pub fn age_ms(&self) -> u64 {
        self.row.age_ms
    }
    /// Age in whole seconds.
    pub fn age_s(&self) -> u64 {
        self.row.age_ms / 1000
    }
    /// Time left to the due time in ms (negative when overdue), `None` when the
    /// item has no due time.
    pub fn due_in_ms(&self) -> Option<i64> {
        (self.row.due_in_ms != NO_DUE).then_some(self.row.due_in_ms)
    }
    /// Money at stake.
    pub fn value(&self) -> f64 {
        self.row.value
    }
    /// Decision time of the batch, ms since the Unix epoch.
    pub fn now_ms(&self) -> u64 {
        self.batch.now_ms
    }
    /// Required skills.
    pub fn skills(&self) -> &'a [SkillReq] {
        let start = self.row.skill_start as usize;
        let end = start + self.row.skill_count as usize;
        self.batch.skills.get(start..end).unwrap_or(&[])
    }
    /// Minimum level required in `skill`, if the skill is required.
    pub fn required_level(&self, skill: SkillId) -> Option<u8> {
        self.skills().iter().find(|r| r.skill == skill).map(|r| r.level)
    }
    /// The item's attributes as (key, value) pairs.
    pub fn attributes(&self) -> impl Iterator<Item = (AttrKey, &'a str)> + 'a {
        let batch = self.batch;
        let start = self.row.attr_start as usize;
        let end = start + self.row.attr_count as usize;
        (start..end).filter_map(move |i| {
            let key = *batch.attr_keys.get(i)?;
            let value_start = if i == 0 { 0 } else { *batch.attr_value_ends.get(i - 1)? as usize };
            let value_end = *batch.attr_value_ends.get(i)? as usize;
            Some((AttrKey(key), batch.attr_values.get(value_start..value_end)?))
        })
    }
    /// The value of attribute `key`, if present.
    pub fn attr(&self, key: AttrKey) -> Option<&'a str> {
        self.attributes().find(|(k, _)| *k == key).map(|(_, v)| v)
    }
    /// The value of attribute `key` parsed as a number, if present and numeric.
    pub fn attr_f64(&self, key: AttrKey) -> Option<f64> {
        self.attr(key).and_then(|v| v.trim().parse().ok())
    }
}

/// Candidate agents for one item (`candidate-table` in WIT).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CandidateTable {
    /// Host ids of the candidates.
    pub agent_ids: Vec<u64>,
    /// Skill ids that are the columns of `proficiency`.
    pub skill_columns: Vec<u32>,
    /// Row-major `n * k` proficiency, 0 = lacks the skill.
    pub proficiency: Vec<u8>,
    /// Idle time of each agent in ms.
    pub idle_ms: Vec<u64>,
    /// Occupancy so far, 0.0-1.0.
    pub occupancy: Vec<f32>,
    /// Row-major `n * 4` current load per channel.
    pub load: Vec<u8>,
}

/// Everything about one candidate that [`CandidateTable::push`] needs.
#[derive(Debug, Clone, Default)]
pub struct NewCandidate<'a> {
    /// Host id.
    pub id: u64,
    /// Proficiency per skill column, in `skill_columns` order (missing = 0).
    pub proficiency: &'a [u8],
    /// Idle time in ms.
    pub idle_ms: u64,
    /// Occupancy so far.
    pub occupancy: f32,
    /// Load per channel in contract order.
    pub load: [u8; 4],
}

impl CandidateTable {
    /// An empty table whose proficiency columns are `skill_columns`.
    pub fn new(skill_columns: Vec<u32>) -> Self {
        CandidateTable { skill_columns, ..Default::default() }
    }

    /// Append a candidate; returns its index.
    pub fn push(&mut self, candidate: NewCandidate<'_>) -> usize {
        let k = self.skill_columns.len();
        for j in 0..k {
            self.proficiency.push(candidate.proficiency.get(j).copied().unwrap_or(0));
        }
        self.agent_ids.push(candidate.id);
        self.idle_ms.push(candidate.idle_ms);
        self.occupancy.push(candidate.occupancy);
        self.load.extend_from_slice(&candidate.load);
        self.agent_ids.len() - 1
    }

    /// Number of candidates.
    pub fn len(&self) -> usize {
        self.agent_ids.len()
    }

    /// Whether there are no candidates.
    pub fn is_empty(&self) -> bool {
        self.agent_ids.is_empty()
    }

    /// Column of `skill` in the proficiency matrix.
    pub fn column_of(&self, skill: SkillId) -> Option<usize> {
        self.skill_columns.iter().position(|&s| s == skill.0)
    }

    /// `requirements` resolved to this table's columns, once per call, for
    /// [`Candidate::meets`] and [`Candidate::proficiency_sum`]: the same answers
    /// as [`Candidate::qualifies`] and [`Candidate::proficiency`], without
    /// searching the columns again for every candidate (in a component every
    /// loop iteration also checks the call's deadline).
    pub fn resolve(&self, requirements: &[SkillReq]) -> ResolvedSkills {
        ResolvedSkills { columns: requirements.iter().map(|r| (self.column_of(r.skill), r.level)).collect() }
    }

    /// The candidate at `index`.
    pub fn get(&self, index: usize) -> Option<Candidate<'_>> {
        (index < self.len()).then_some(Candidate { table: self, index })
    }

    /// Iterate over the candidates in table order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = Candidate<'_>> + '_ {
        (0..self.len()).map(move |index| Candidate { table: self, index })
    }

    /// Check that every column has the length the table promises.
    pub fn validate(&self) -> Result<(), String> {
        let n = self.agent_ids.len();
        let k = self.skill_columns.len();
        let checks = [
            ("proficiency", self.proficiency.len(), n * k),
            ("idle-ms", self.idle_ms.len(), n),
            ("occupancy", self.occupancy.len(), n),
            ("load", self.load.len(), n * 4),
        ];
        for (name, got, want) in checks {
            if got != want {
                return Err(format!("candidate table column `{name}` has {got} entries, expected {want}"));
            }
        }
        Ok(())
    }
}

/// Skill requirements resolved to a [`CandidateTable`]'s columns
/// ([`CandidateTable::resolve`]): each requirement's column (none when no
/// candidate has the skill) and minimum level.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResolvedSkills {
    columns: Vec<(Option<usize>, u8)>,
}

impl ResolvedSkills {
    /// Number of requirements.
    pub fn len(&self) -> usize {
        self.columns.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.columns.is_empty()
    }
}

/// A read-only view of one candidate agent.
#[derive(Debug, Clone, Copy)]
pub struct Candidate<'a> {
    table: &'a CandidateTable,
    index: usize,
}

impl<'a> Candidate<'a> {
    /// Position in the table (what [`crate::MatchResult::Ranked`] refers to).
    pub fn index(&self) -> usize {
        self.index
    }
    /// Host id of the agent.
    pub fn id(&self) -> u64 {
        self.table.agent_ids.get(self.index).copied().unwrap_or_default()
    }
    /// Proficiency in `skill` (0 when the agent lacks it or the column is absent).
    pub fn proficiency(&self, skill: SkillId) -> u8 {
        match self.table.column_of(skill) {
            Some(column) => self.proficiency_at(column),
            None => 0,
        }
    }
    /// Proficiency in skill column `column`.
    pub fn proficiency_at(&self, column: usize) -> u8 {
        let k = self.table.skill_columns.len();
        self.table.proficiency.get(self.index * k + column).copied().unwrap_or(0)
    }
    /// Whether the agent meets every requirement.
    pub fn qualifies(&self, requirements: &[SkillReq]) -> bool {
        requirements.iter().all(|r| self.proficiency(r.skill) >= r.level)
    }
    /// [`Candidate::qualifies`] for requirements resolved once per call
    /// ([`CandidateTable::resolve`]). Inlined, like the other per-candidate
    /// reads below: wasmtime does not inline calls by default, so in a
    /// component only LLVM's inlining saves a call per candidate.
    #[inline]
    pub fn meets(&self, resolved: &ResolvedSkills) -> bool {
        let row = self.proficiency_row();
        resolved.columns.iter().all(|&(column, level)| Self::level_in(row, column) >= level)
    }
    /// The agent's proficiencies in the resolved skills, summed (0 for a skill
    /// it lacks).
    #[inline]
    pub fn proficiency_sum(&self, resolved: &ResolvedSkills) -> u32 {
        let row = self.proficiency_row();
        resolved.columns.iter().map(|&(column, _)| u32::from(Self::level_in(row, column))).sum()
    }
    /// The agent's row of the proficiency matrix (empty when out of range).
    #[inline]
    fn proficiency_row(&self) -> &'a [u8] {
        let k = self.table.skill_columns.len();
        let start = self.index * k;
        self.table.proficiency.get(start..start + k).unwrap_or(&[])
    }
    #[inline]
    fn level_in(row: &[u8], column: Option<usize>) -> u8 {
        column.and_then(|c| row.get(c).copied()).unwrap_or(0)
    }
    /// Idle time in ms.
    pub fn idle_ms(&self) -> u64 {
        self.table.idle_ms.get(self.index).copied().unwrap_or_default()
    }
    /// Occupancy so far, 0.0-1.0.
    pub fn occupancy(&self) -> f32 {
        self.table.occupancy.get(self.index).copied().unwrap_or_default()
    }
    /// Items the agent handles now on `channel`.
    pub fn load(&self, channel: Channel) -> u8 {
        self.table.load.get(self.index * 4 + channel.index()).copied().unwrap_or_default()
    }
    /// Items the agent handles now, all channels.
    pub fn total_load(&self) -> u32 {
        Channel::ALL.iter().map(|&c| self.load(c) as u32).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attributes_round_trip_through_the_flat_layout() {
        let mut batch = ItemBatch::new(1_000);
        batch.push(NewItem { id: 1, attributes: &[(0, "250.5"), (1, "es")], ..Default::default() });
        batch.push(NewItem { id: 2, attributes: &[(1, "en")], ..Default::default() });
        batch.validate().unwrap();
        let first = batch.get(0).unwrap();
        assert_eq!(first.attr(AttrKey(0)), Some("250.5"));
        assert_eq!(first.attr_f64(AttrKey(0)), Some(250.5));
        assert_eq!(first.attr(AttrKey(1)), Some("es"));
        let second = batch.get(1).unwrap();
        assert_eq!(second.attr(AttrKey(1)), Some("en"));
        assert_eq!(second.attr(AttrKey(0)), None);
    }

    #[test]
    fn corrupt_offsets_are_reported_not_trusted() {
        let mut batch = ItemBatch::new(0);
        batch.push(NewItem { id: 1, skills: &[SkillReq { skill: SkillId(0), level: 3 }], ..Default::default() });
        batch.rows[0].skill_count = 5;
        assert!(batch.validate().unwrap_err().contains("item 0"));
        assert!(batch.get(0).unwrap().skills().is_empty());
    }

    #[test]
    fn candidates_read_their_row_of_the_matrix() {
        let mut table = CandidateTable::new(vec![7, 9]);
        table.push(NewCandidate { id: 10, proficiency: &[5, 0], idle_ms: 100, occupancy: 0.5, load: [0, 2, 0, 0] });
        table.push(NewCandidate { id: 11, proficiency: &[2, 8], ..Default::default() });
        table.validate().unwrap();
        let a = table.get(0).unwrap();
        let b = table.get(1).unwrap();
        assert_eq!(a.proficiency(SkillId(7)), 5);
        assert_eq!(b.proficiency(SkillId(9)), 8);
        assert_eq!(a.load(Channel::Chat), 2);
        assert!(b.qualifies(&[SkillReq { skill: SkillId(9), level: 8 }]));
        assert!(!a.qualifies(&[SkillReq { skill: SkillId(9), level: 1 }]));
        // Resolved once per call, the same answers (a skill nobody has is 0).
        for requirements in [
            vec![SkillReq { skill: SkillId(9), level: 8 }],
            vec![SkillReq { skill: SkillId(9), level: 1 }, SkillReq { skill: SkillId(7), level: 2 }],
            vec![SkillReq { skill: SkillId(3), level: 0 }, SkillReq { skill: SkillId(7), level: 5 }],
            vec![SkillReq { skill: SkillId(3), level: 1 }],
            vec![],
        ] {
            let resolved = table.resolve(&requirements);
            assert_eq!(resolved.len(), requirements.len());
            for agent in [a, b] {
                assert_eq!(agent.meets(&resolved), agent.qualifies(&requirements), "{requirements:?}");
                let sum: u32 = requirements.iter().map(|r| u32::from(agent.proficiency(r.skill))).sum();
                assert_eq!(agent.proficiency_sum(&resolved), sum, "{requirements:?}");
            }
        }
    }
}
