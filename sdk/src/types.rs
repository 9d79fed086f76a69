//! Plain Rust types of the contract: ids, channels, tiers and the decisions a rule
//! returns. They mirror `wit/routing.wit` one to one but carry no ABI detail.

use serde::{Deserialize, Serialize};

/// Interned id of a skill (e.g. `"billing"`, `"lang-es"`). Resolve names with
/// [`crate::Context::skill`].
///
/// `#[repr(transparent)]` over `u32`: [`SkillReq`] is read in place from the
/// canonical-ABI `skill-req` list the host lowers (see `crate::abi`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[repr(transparent)]
pub struct SkillId(pub u32);

/// Interned id of a queue. Resolve names with [`crate::Context::queue`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct QueueId(pub u32);

/// Interned id of an attribute key. Resolve names with [`crate::Context::attribute`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct AttrKey(pub u32);

/// `due_in_ms` of an item that has no due time.
pub const NO_DUE: i64 = i64::MAX;

/// The channel a work item arrived on.
///
/// `#[repr(u8)]` with the WIT enum's discriminants, so that an `item-row` the host
/// lowers can be read in place as an [`crate::ItemRow`] (see `crate::abi`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[repr(u8)]
pub enum Channel {
    /// A live phone call.
    Voice = 0,
    /// A live chat.
    Chat = 1,
    /// An e-mail.
    Email = 2,
    /// A back-office case with a due time.
    Case = 3,
}

impl Channel {
    /// Every channel, in contract order (the column order of `load` in a candidate table).
    pub const ALL: [Channel; 4] = [Channel::Voice, Channel::Chat, Channel::Email, Channel::Case];

    /// Position of the channel in contract order.
    pub fn index(self) -> usize {
        self as usize
    }

    /// The channel at `index` in contract order.
    pub fn from_index(index: usize) -> Option<Channel> {
        Self::ALL.get(index).copied()
    }

    /// Lower-case name, as used in configs and JSON.
    pub fn name(self) -> &'static str {
        match self {
            Channel::Voice => "voice",
            Channel::Chat => "chat",
            Channel::Email => "email",
            Channel::Case => "case",
        }
    }

    /// Whether a customer waits live on this channel (voice, chat).
    pub fn is_live(self) -> bool {
        matches!(self, Channel::Voice | Channel::Chat)
    }
}

impl std::fmt::Display for Channel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Channel {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "voice" => Ok(Channel::Voice),
            "chat" => Ok(Channel::Chat),
            "email" => Ok(Channel::Email),
            "case" => Ok(Channel::Case),
            other => Err(format!("unknown channel `{other}` (expected voice, chat, email or case)")),
        }
    }
}

/// Customer tier, carried as `u8` on the wire (0 standard … 3 platinum).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Tier {
    /// No status.
    #[default]
    Standard,
    /// Silver.
    Silver,
    /// Gold.
    Gold,
    /// Platinum.
    Platinum,
}

impl Tier {
    /// Tier from its wire value; values above 3 saturate to platinum.
    pub fn from_u8(value: u8) -> Tier {
        match value {
            0 => Tier::Standard,
            1 => Tier::Silver,
            2 => Tier::Gold,
            _ => Tier::Platinum,
        }
    }

    /// Wire value.
    pub fn as_u8(self) -> u8 {
        self as u8
    }
}

/// A required skill with its minimum level.
///
/// `#[repr(C)]` in WIT field order: on every target its layout is the canonical-ABI
/// layout of `skill-req` (size 8, align 4: skill @0, level @4), so the guest glue
/// adopts the host's list in place. Checked at compile time below.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[repr(C)]
pub struct SkillReq {
    /// The skill.
    pub skill: SkillId,
    /// Minimum proficiency, 1-10.
    pub level: u8,
}

// The canonical-ABI layout of `skill-req` (see `crate::abi`), as computed from
// the WIT (`switchyard_abi_layout`): a WIT edit fails the build here.
const _: () = {
    use core::mem::{align_of, offset_of, size_of};
    use switchyard_abi_layout::SKILL_REQ;
    assert!(size_of::<SkillReq>() == SKILL_REQ.size && align_of::<SkillReq>() == SKILL_REQ.align);
    assert!(SKILL_REQ.fields.len() == 2);
    assert!(offset_of!(SkillReq, skill) == SKILL_REQ.offset("skill") && SKILL_REQ.field("skill").size == 4);
    assert!(offset_of!(SkillReq, level) == SKILL_REQ.offset("level") && SKILL_REQ.field("level").size == 1);
    assert!(size_of::<Channel>() == 1 && align_of::<Channel>() == 1);
};

/// What a prioritise rule decides for one item.
///
/// ```
/// use switchyard_sdk::{Priority, QueueId};
/// let p = Priority::new(80).to_queue(QueueId(3)).because("platinum repeat caller");
/// assert_eq!(p.priority, 80);
/// assert_eq!(p.queue, Some(QueueId(3)));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Priority {
    /// New priority; higher is served first.
    pub priority: i32,
    /// Move (classify) the item into this queue.
    pub queue: Option<QueueId>,
    /// Short explanation for the agent desktop and audits.
    pub reason: Option<String>,
}

impl Priority {
    /// A priority with no queue change and no reason.
    pub fn new(priority: i32) -> Self {
        Priority { priority, queue: None, reason: None }
    }

    /// Also move the item to `queue`.
    pub fn to_queue(mut self, queue: QueueId) -> Self {
        self.queue = Some(queue);
        self
    }

    /// Attach an explanation.
    pub fn because(mut self, reason: impl Into<String>) -> Self {
        self.reason = Some(reason.into());
        self
    }
}

/// One step an escalation rule takes on a waiting item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "action", content = "value")]
pub enum EscalationAction {
    /// Raise priority by this amount.
    RaiseBy(i32),
    /// Set priority to at least this value.
    RaiseTo(i32),
    /// Lower every required skill level by this many levels (never below 1).
    RelaxLevels(u8),
    /// Drop one required skill.
    DropSkill(SkillId),
    /// Move the item to another queue; it keeps its age.
    MoveTo(QueueId),
    /// Alert the department's supervisor.
    Alert(String),
}

/// What an escalation rule decides for one waiting item.
///
/// ```
/// use switchyard_sdk::{Escalation, EscalationAction};
/// let e = Escalation::none().then(EscalationAction::RaiseBy(10)).recheck_in_ms(60_000);
/// assert_eq!(e.actions.len(), 1);
/// assert_eq!(e.recheck_in_ms, Some(60_000));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Escalation {
    /// Actions to apply now, in order.
    pub actions: Vec<EscalationAction>,
    /// Look again after this many milliseconds; `None` = never again.
    pub recheck_in_ms: Option<u64>,
}

impl Escalation {
    /// Nothing to do and no recheck.
    pub fn none() -> Self {
        Escalation::default()
    }

    /// Append an action.
    pub fn then(mut self, action: EscalationAction) -> Self {
        self.actions.push(action);
        self
    }

    /// Ask to be called again for this item after `ms` milliseconds.
    pub fn recheck_in_ms(mut self, ms: u64) -> Self {
        self.recheck_in_ms = Some(ms);
        self
    }
}

/// How a match rule ranks candidate agents.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MatchResult {
    /// One score per candidate in table order; higher is better; negative vetoes.
    Scores(Vec<f32>),
    /// Candidate indices, best first; candidates left out are vetoed.
    Ranked(Vec<u32>),
}

impl MatchResult {
    /// Index of the best candidate that is not vetoed, if any. Ties go to the
    /// earlier candidate (the host orders candidates longest-idle first).
    pub fn best(&self) -> Option<usize> {
        match self {
            MatchResult::Scores(scores) => {
                let mut best: Option<(usize, f32)> = None;
                for (i, &s) in scores.iter().enumerate() {
                    if s.is_nan() || s < 0.0 {
                        continue;
                    }
                    if best.is_none_or(|(_, b)| s > b) {
                        best = Some((i, s));
                    }
                }
                best.map(|(i, _)| i)
            }
            MatchResult::Ranked(order) => order.first().map(|&i| i as usize),
        }
    }

    /// Candidate indices that are not vetoed, best first.
    pub fn ranking(&self) -> Vec<usize> {
        match self {
            MatchResult::Scores(scores) => {
                let mut idx: Vec<usize> =
                    (0..scores.len()).filter(|&i| !scores[i].is_nan() && scores[i] >= 0.0).collect();
                // Stable sort keeps table order among equal scores.
                idx.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
                idx
            }
            MatchResult::Ranked(order) => order.iter().map(|&i| i as usize).collect(),
        }
    }
}

/// Severity of a log record a plugin writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    /// Very detailed.
    Trace,
    /// Debugging.
    Debug,
    /// Normal operation.
    Info,
    /// Something is off.
    Warn,
    /// Something failed.
    Error,
}

/// Which interned name table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NameKind {
    /// Skill names.
    Skill,
    /// Queue names.
    Queue,
    /// Attribute keys.
    Attribute,
}
