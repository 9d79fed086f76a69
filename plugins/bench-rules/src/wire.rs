//! The raw-bytes encoding of the Extism raw calling style: the contract's batch
//! and candidate table as little-endian fields and length-prefixed lists, the
//! answers likewise. Reasons are not carried (the benchmark rule gives none).
//! Decoding checks every length and returns `None` on anything malformed.

use switchyard_sdk::{CandidateTable, Channel, ItemBatch, ItemRow, MatchResult, Priority, QueueId, SkillId, SkillReq};

/// Appends little-endian values to a buffer.
struct Writer(Vec<u8>);

impl Writer {
    fn u8(&mut self, v: u8) {
        self.0.push(v);
    }
    fn u16(&mut self, v: u16) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn u32(&mut self, v: u32) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn len(&mut self, n: usize) {
        self.u32(n as u32);
    }
}

/// Reads little-endian values, `None` past the end.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Some(head)
    }
    fn array<const N: usize>(&mut self) -> Option<[u8; N]> {
        self.take(N)?.try_into().ok()
    }
    fn u8(&mut self) -> Option<u8> {
        Some(self.take(1)?[0])
    }
    fn u16(&mut self) -> Option<u16> {
        Some(u16::from_le_bytes(self.array()?))
    }
    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.array()?))
    }
    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.array()?))
    }
    /// A list length, refused when the rest of the input cannot hold that many
    /// elements of `size` bytes (so a hostile length cannot make us allocate).
    fn len(&mut self, size: usize) -> Option<usize> {
        let n = self.u32()? as usize;
        (n.checked_mul(size)? <= self.0.len()).then_some(n)
    }
}

fn write_batch(w: &mut Writer, batch: &ItemBatch) {
    w.u64(batch.now_ms);
    w.len(batch.rows.len());
    for r in &batch.rows {
        w.u64(r.id);
        w.u8(r.channel.index() as u8);
        w.u32(r.queue);
        w.u8(r.tier);
        w.u16(r.contacts);
        w.u32(r.priority as u32);
        w.u64(r.age_ms);
        w.u64(r.due_in_ms as u64);
        w.u64(r.value.to_bits());
        w.u32(r.skill_start);
        w.u32(r.skill_count);
        w.u32(r.attr_start);
        w.u32(r.attr_count);
    }
    w.len(batch.skills.len());
    for s in &batch.skills {
        w.u32(s.skill.0);
        w.u8(s.level);
    }
    w.len(batch.attr_keys.len());
    batch.attr_keys.iter().for_each(|&k| w.u32(k));
    w.len(batch.attr_value_ends.len());
    batch.attr_value_ends.iter().for_each(|&e| w.u32(e));
    w.len(batch.attr_values.len());
    w.0.extend_from_slice(batch.attr_values.as_bytes());
}

fn read_batch(r: &mut Reader<'_>) -> Option<ItemBatch> {
    let now_ms = r.u64()?;
    let n = r.len(60)?;
    let mut rows = Vec::with_capacity(n);
    for _ in 0..n {
        rows.push(ItemRow {
            id: r.u64()?,
            channel: Channel::from_index(r.u8()? as usize)?,
            queue: r.u32()?,
            tier: r.u8()?,
            contacts: r.u16()?,
            priority: r.u32()? as i32,
            age_ms: r.u64()?,
            due_in_ms: r.u64()? as i64,
            value: f64::from_bits(r.u64()?),
            skill_start: r.u32()?,
            skill_count: r.u32()?,
            attr_start: r.u32()?,
            attr_count: r.u32()?,
        });
    }
    let n = r.len(5)?;
    let mut skills = Vec::with_capacity(n);
    for _ in 0..n {
        skills.push(SkillReq { skill: SkillId(r.u32()?), level: r.u8()? });
    }
    let n = r.len(4)?;
    let attr_keys = (0..n).map(|_| r.u32()).collect::<Option<Vec<_>>>()?;
    let n = r.len(4)?;
    let attr_value_ends = (0..n).map(|_| r.u32()).collect::<Option<Vec<_>>>()?;
    let n = r.len(1)?;
    let attr_values = String::from_utf8(r.take(n)?.to_vec()).ok()?;
    Some(ItemBatch { now_ms, rows, skills, attr_keys, attr_value_ends, attr_values })
}

fn write_table(w: &mut Writer, t: &CandidateTable) {
    w.len(t.agent_ids.len());
    t.agent_ids.iter().for_each(|&v| w.u64(v));
    w.len(t.skill_columns.len());
    t.skill_columns.iter().for_each(|&v| w.u32(v));
    w.len(t.proficiency.len());
    w.0.extend_from_slice(&t.proficiency);
    w.len(t.idle_ms.len());
    t.idle_ms.iter().for_each(|&v| w.u64(v));
    w.len(t.occupancy.len());
    t.occupancy.iter().for_each(|&v| w.u32(v.to_bits()));
    w.len(t.load.len());
    w.0.extend_from_slice(&t.load);
}

fn read_table(r: &mut Reader<'_>) -> Option<CandidateTable> {
    let n = r.len(8)?;
    let agent_ids = (0..n).map(|_| r.u64()).collect::<Option<Vec<_>>>()?;
    let n = r.len(4)?;
    let skill_columns = (0..n).map(|_| r.u32()).collect::<Option<Vec<_>>>()?;
    let n = r.len(1)?;
    let proficiency = r.take(n)?.to_vec();
    let n = r.len(8)?;
    let idle_ms = (0..n).map(|_| r.u64()).collect::<Option<Vec<_>>>()?;
    let n = r.len(4)?;
    let occupancy = (0..n).map(|_| r.u32().map(f32::from_bits)).collect::<Option<Vec<_>>>()?;
    let n = r.len(1)?;
    let load = r.take(n)?.to_vec();
    Some(CandidateTable { agent_ids, skill_columns, proficiency, idle_ms, occupancy, load })
}

/// Encode a `prioritise` request.
pub fn encode_batch(batch: &ItemBatch) -> Vec<u8> {
    let mut w = Writer(Vec::with_capacity(64 + batch.rows.len() * 70));
    write_batch(&mut w, batch);
    w.0
}

/// Decode a `prioritise` request.
pub fn decode_batch(bytes: &[u8]) -> Option<ItemBatch> {
    let mut r = Reader(bytes);
    let batch = read_batch(&mut r)?;
    r.0.is_empty().then_some(batch)
}

/// Encode a `match-agents` request.
pub fn encode_match(item: &ItemBatch, table: &CandidateTable) -> Vec<u8> {
    let mut w = Writer(Vec::with_capacity(128 + table.len() * 30));
    write_batch(&mut w, item);
    write_table(&mut w, table);
    w.0
}

/// Decode a `match-agents` request.
pub fn decode_match(bytes: &[u8]) -> Option<(ItemBatch, CandidateTable)> {
    let mut r = Reader(bytes);
    let batch = read_batch(&mut r)?;
    let table = read_table(&mut r)?;
    r.0.is_empty().then_some((batch, table))
}

/// Encode priorities (priority and queue; no queue is `u32::MAX`).
pub fn encode_priorities(priorities: &[Priority]) -> Vec<u8> {
    let mut w = Writer(Vec::with_capacity(4 + priorities.len() * 8));
    w.len(priorities.len());
    for p in priorities {
        w.u32(p.priority as u32);
        w.u32(p.queue.map_or(u32::MAX, |q| q.0));
    }
    w.0
}

/// Decode priorities.
pub fn decode_priorities(bytes: &[u8]) -> Option<Vec<Priority>> {
    let mut r = Reader(bytes);
    let n = r.len(8)?;
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let priority = r.u32()? as i32;
        let queue = r.u32()?;
        let mut p = Priority::new(priority);
        if queue != u32::MAX {
            p = p.to_queue(QueueId(queue));
        }
        out.push(p);
    }
    Some(out)
}

/// Encode a match answer.
pub fn encode_match_result(result: &MatchResult) -> Vec<u8> {
    let mut w = Writer(Vec::new());
    match result {
        MatchResult::Scores(scores) => {
            w.u8(0);
            w.len(scores.len());
            scores.iter().for_each(|s| w.u32(s.to_bits()));
        }
        MatchResult::Ranked(ranked) => {
            w.u8(1);
            w.len(ranked.len());
            ranked.iter().for_each(|&i| w.u32(i));
        }
    }
    w.0
}

/// Decode a match answer.
pub fn decode_match_result(bytes: &[u8]) -> Option<MatchResult> {
    let mut r = Reader(bytes);
    let tag = r.u8()?;
    let n = r.len(4)?;
    match tag {
        0 => Some(MatchResult::Scores((0..n).map(|_| r.u32().map(f32::from_bits)).collect::<Option<Vec<_>>>()?)),
        1 => Some(MatchResult::Ranked((0..n).map(|_| r.u32()).collect::<Option<Vec<_>>>()?)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchyard_sdk::{NewCandidate, NewItem};

    #[test]
    fn batches_tables_and_answers_round_trip() {
        let mut batch = ItemBatch::new(42);
        let skills = [SkillReq { skill: SkillId(3), level: 4 }];
        batch.push(NewItem {
            id: 7,
            channel: Some(Channel::Chat),
            tier: switchyard_sdk::Tier::Gold,
            priority: -3,
            value: 12.5,
            skills: &skills,
            attributes: &[(1, "es")],
            due_in_ms: Some(-5),
            ..Default::default()
        });
        assert_eq!(decode_batch(&encode_batch(&batch)), Some(batch.clone()));
        let mut table = CandidateTable::new(vec![3, 4]);
        table.push(NewCandidate { id: 9, proficiency: &[5, 1], idle_ms: 1_000, occupancy: 0.25, load: [0, 1, 0, 0] });
        assert_eq!(decode_match(&encode_match(&batch, &table)), Some((batch.clone(), table)));
        let answer = vec![Priority::new(5), Priority::new(-1).to_queue(QueueId(2))];
        assert_eq!(decode_priorities(&encode_priorities(&answer)), Some(answer));
        for result in [MatchResult::Scores(vec![1.5, -1.0]), MatchResult::Ranked(vec![2, 0])] {
            assert_eq!(decode_match_result(&encode_match_result(&result)), Some(result));
        }
    }

    #[test]
    fn truncated_or_padded_input_is_refused() {
        let bytes = encode_batch(&ItemBatch::new(1));
        assert_eq!(decode_batch(&bytes[..bytes.len() - 1]), None);
        let mut padded = bytes.clone();
        padded.push(0);
        assert_eq!(decode_batch(&padded), None);
        // A list length far beyond the input is refused before allocating.
        let mut huge = 1u64.to_le_bytes().to_vec();
        huge.extend_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(decode_batch(&huge), None);
    }
}
