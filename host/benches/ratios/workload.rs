//! The inputs every side decides on: deterministic batches of work items and
//! candidate tables shaped like a contact centre's (four channels, tiers, repeat
//! contacts, due times, two required skills, an attribute; agents with four
//! skill columns, idle time, occupancy and blended load).

use switchyard_sdk::{CandidateTable, Channel, ItemBatch, NewCandidate, NewItem, SkillId, SkillReq, Tier};

/// A small deterministic generator (xorshift64*), so runs decide on the same data.
pub struct Rng(u64);

impl Rng {
    /// Seeded generator.
    pub fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }
    /// Next value below `n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n.max(1)
    }
}

/// Decision time of every batch.
pub const NOW_MS: u64 = 1_750_000_000_000;

/// Interned skill ids the items require and the tables have columns for.
pub const SKILLS: [u32; 4] = [0, 1, 2, 3];

/// A batch of `n` items.
pub fn batch(n: usize, seed: u64) -> ItemBatch {
    let mut rng = Rng::new(seed);
    let mut batch = ItemBatch::with_capacity(NOW_MS, n);
    for i in 0..n {
        let skills = [
            SkillReq { skill: SkillId(SKILLS[0]), level: 1 + rng.below(5) as u8 },
            SkillReq { skill: SkillId(SKILLS[1 + rng.below(3) as usize]), level: 1 + rng.below(4) as u8 },
        ];
        let due = match rng.below(3) {
            0 => None,
            1 => Some(rng.below(3_600_000) as i64),
            _ => Some(3_600_000 + rng.below(86_400_000) as i64),
        };
        batch.push(NewItem {
            id: 1_000 + i as u64,
            channel: Channel::from_index(rng.below(4) as usize),
            queue: rng.below(3) as u32,
            tier: Tier::from_u8(rng.below(4) as u8),
            contacts: 1 + rng.below(5) as u16,
            priority: rng.below(21) as i32 - 10,
            age_ms: rng.below(900_000),
            due_in_ms: due,
            value: rng.below(2_000) as f64 + 0.5,
            skills: &skills,
            attributes: &[(0, "es")],
        });
    }
    batch
}

/// A candidate table of `n` agents with a column per skill of [`SKILLS`].
pub fn table(n: usize, seed: u64) -> CandidateTable {
    let mut rng = Rng::new(seed);
    let mut table = CandidateTable::new(SKILLS.to_vec());
    for i in 0..n {
        let proficiency: Vec<u8> = SKILLS.iter().map(|_| rng.below(11) as u8).collect();
        let chats = rng.below(3) as u8;
        table.push(NewCandidate {
            id: 10_000 + i as u64,
            proficiency: &proficiency,
            idle_ms: rng.below(1_200_000),
            occupancy: rng.below(101) as f32 / 100.0,
            load: [0, chats, rng.below(2) as u8, 0],
        });
    }
    table
}
