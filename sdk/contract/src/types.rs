//! Plain Rust types of the contract: ids, channels, tiers and the decisions a rule
//! returns. They mirror `wit/routing.wit` one to one but carry no ABI detail.

/// Interned id of a skill (e.g. `"billing"`, `"lang-es"`). Resolve names with
/// the SDK's `Context::skill`.
///
/// `#[repr(transparent)]` over `u32`: [`SkillReq`] is read in place from the
/// canonical-ABI `skill-req` list the host lowers (the SDK's and the host's `abi` modules).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[repr(transparent)]
pub struct SkillId(pub u32);

/// Interned id of a queue. Resolve names with the SDK's `Context::queue`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct QueueId(pub u32);

/// Interned id of an attribute key. Resolve names with the SDK's `Context::attribute`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct AttrKey(pub u32);

/// `due_in_ms` of an item that has no due time.
pub const NO_DUE: i64 = i64::MAX;

/// The channel a work item arrived on.
///
/// `#[repr(u8)]` with the WIT enum's discriminants, so that an `item-row` the host
/// lowers can be read in place as an [`crate::batch::ItemRow`] (the SDK's and the host's `abi` modules).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "lowercase"))]
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "lowercase"))]
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

    /// Lower-case name, as used in configs, JSON and reasons (`"gold"`).
    pub fn name(self) -> &'static str {
        match self {
            Tier::Standard => "standard",
            Tier::Silver => "silver",
            Tier::Gold => "gold",
            Tier::Platinum => "platinum",
        }
    }
}

impl std::fmt::Display for Tier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A required skill with its minimum level.
///
/// `#[repr(C)]` in WIT field order: on every target its layout is the canonical-ABI
/// layout of `skill-req` (size 8, align 4: skill @0, level @4), so the guest glue
/// adopts the host's list in place. Checked at compile time below.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[repr(C)]
pub struct SkillReq {
    /// The skill.
    pub skill: SkillId,
    /// Minimum proficiency, 1-10.
    pub level: u8,
}

// The canonical-ABI layout of `skill-req` (the SDK's and the host's `abi` modules), as computed from
// the WIT ([`crate::layout`]): a WIT edit fails the build here.
const _: () = {
    use crate::layout::SKILL_REQ;
    use core::mem::{align_of, offset_of, size_of};
    assert!(size_of::<SkillReq>() == SKILL_REQ.size && align_of::<SkillReq>() == SKILL_REQ.align);
    assert!(SKILL_REQ.fields.len() == 2);
    assert!(offset_of!(SkillReq, skill) == SKILL_REQ.offset("skill") && SKILL_REQ.field("skill").size == 4);
    assert!(offset_of!(SkillReq, level) == SKILL_REQ.offset("level") && SKILL_REQ.field("level").size == 1);
    assert!(size_of::<Channel>() == 1 && align_of::<Channel>() == 1);
};

/// Whoever asks for a decision says whether it wants the rule's explanations
/// (reasons, built only then): the SDK's `Context` answers from the
/// department's config, the host always wants them on the agent desktop, a
/// simulation may not. `true` and `false` stand for either in tests.
pub trait Explain {
    /// Whether explanations are wanted.
    fn explain(&self) -> bool;
}

impl Explain for bool {
    fn explain(&self) -> bool {
        *self
    }
}

/// What a prioritise rule decides for one item.
///
/// ```
/// use switchyard_contract::{Priority, QueueId};
/// let p = Priority::new(80).to_queue(QueueId(3)).because("platinum repeat caller");
/// assert_eq!(p.priority, 80);
/// assert_eq!(p.queue, Some(QueueId(3)));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
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

    /// Attach an explanation built only when the host wants explanations
    /// ([`Explain`]; the SDK's `Context` is on unless the department's config turns it
    /// off — the daemon always shows reasons on the agent desktop).
    ///
    /// ```
    /// use switchyard_contract::Priority;
    /// let ctx = true; // whoever asks wants explanations (the SDK's `Context`)
    /// let p = Priority::new(7).because_with(&ctx, || format!("due in {}h", 3));
    /// assert_eq!(p.reason.as_deref(), Some("due in 3h"));
    /// ```
    pub fn because_with(mut self, ctx: &impl Explain, reason: impl FnOnce() -> String) -> Self {
        if ctx.explain() {
            self.reason = Some(reason());
        }
        self
    }

    /// Attach a [`Reason`] built part by part (nothing when it is empty or the
    /// host does not want explanations).
    pub fn with_reason(mut self, reason: Reason) -> Self {
        if let Some(text) = reason.into_text() {
            self.reason = Some(text);
        }
        self
    }
}

/// An explanation built from parts joined by `", "`, only when the host wants
/// explanations ([`Explain`]); otherwise every method is a no-op
/// and nothing is formatted or allocated.
///
/// One `String` grows as parts are added (one allocation for the whole reason,
/// instead of one per `format!` plus one for a `join`).
///
/// ```
/// use switchyard_contract::{Priority, Reason};
/// let ctx = true; // whoever asks wants explanations (the SDK's `Context`)
/// let mut why = Reason::new(&ctx);
/// why.part(format_args!("gold tier +{}", 30));
/// why.part("voice +10");
/// assert_eq!(Priority::new(40).with_reason(why).reason.as_deref(), Some("gold tier +30, voice +10"));
/// ```
#[derive(Debug, Default)]
pub struct Reason {
    text: Option<String>,
}

impl Reason {
    /// An empty reason that collects parts only when `ctx` explains.
    pub fn new(ctx: &impl Explain) -> Self {
        Reason { text: ctx.explain().then(|| String::with_capacity(64)) }
    }

    /// Append one part (anything `Display`: a `&str`, or `format_args!(…)` to
    /// format straight into the reason without an intermediate `String`).
    pub fn part(&mut self, part: impl std::fmt::Display) {
        if let Some(text) = &mut self.text {
            if !text.is_empty() {
                text.push_str(", ");
            }
            let _ = std::fmt::Write::write_fmt(text, format_args!("{part}"));
        }
    }

    /// Start a new part and write it piece by piece, without `core::fmt`:
    ///
    /// ```
    /// use switchyard_contract::{Priority, Reason};
    /// let ctx = true; // whoever asks wants explanations (the SDK's `Context`)
    /// let mut why = Reason::new(&ctx);
    /// why.new_part().text("gold").text(" tier +").fixed(30.0, 0);
    /// why.new_part().int(2).text("nd contact +").int(20);
    /// assert_eq!(Priority::new(50).with_reason(why).reason.as_deref(), Some("gold tier +30, 2nd contact +20"));
    /// ```
    ///
    /// The same text as [`Reason::part`] with `format_args!`, at a fraction of
    /// the cost inside a component: `core::fmt` dispatches every argument
    /// through a function pointer and formats integers with 64-bit divisions,
    /// which made a formatted reason ≈3.5× slower as Wasm than natively
    /// (measured on billing); a [`Piece`] writer appends strings and writes
    /// numbers by hand. Nothing is written when the host does not explain.
    pub fn new_part(&mut self) -> Piece<'_> {
        match &mut self.text {
            Some(text) => {
                if !text.is_empty() {
                    text.push_str(", ");
                }
                Piece(Some(text))
            }
            None => Piece(None),
        }
    }

    /// Whether the reason is being collected (the host wants explanations).
    pub fn is_on(&self) -> bool {
        self.text.is_some()
    }

    /// The text, `None` when nothing was collected.
    pub fn into_text(self) -> Option<String> {
        self.text.filter(|t| !t.is_empty())
    }
}

/// One part of a [`Reason`] being written (see [`Reason::new_part`]); every method
/// is a no-op when the host does not want explanations.
#[derive(Debug)]
pub struct Piece<'a>(Option<&'a mut String>);

impl<'a> Piece<'a> {
    /// Write pieces at the end of `out` (an alert message, say), as
    /// [`Reason::new_part`] writes a reason's part.
    pub fn append_to(out: &'a mut String) -> Self {
        Piece(Some(out))
    }

    /// Append `text`.
    pub fn text(self, text: &str) -> Self {
        if let Some(out) = self.0 {
            push_short(out, text);
            return Piece(Some(out));
        }
        self
    }

    /// Append a whole number in decimal (what `{}` writes).
    pub fn int(self, n: impl Integer) -> Self {
        if let Some(out) = self.0 {
            let (negative, magnitude) = n.sign_and_magnitude();
            push_short(out, fixed_digits(&mut [0; FIXED_BUF], negative, magnitude, 0));
            return Piece(Some(out));
        }
        self
    }

    /// Append `value` with `places` decimals: what [`Fixed`] (and so
    /// `{:.places$}`) writes.
    pub fn fixed(self, value: f64, places: u8) -> Self {
        if let Some(out) = self.0 {
            match Fixed(value, places).digits(&mut [0; FIXED_BUF]) {
                Some(digits) => push_short(out, digits),
                None => {
                    let _ = std::fmt::Write::write_fmt(out, format_args!("{}", Fixed(value, places)));
                }
            }
            return Piece(Some(out));
        }
        self
    }
}

/// Append `text` to `out`. In a component a copy of variable length is a
/// `memory.copy`, which wasmtime runs as a call out of the component: short
/// texts are stored byte by byte there instead (volatile stores, so that the
/// loop is not turned back into a copy). Natively this is `push_str`.
fn push_short(out: &mut String, text: &str) {
    if cfg!(target_arch = "wasm32") && text.len() <= 32 {
        push_bytewise(out, text);
    } else {
        out.push_str(text);
    }
}

/// `out.push_str(text)` by single-byte stores (see [`push_short`]).
fn push_bytewise(out: &mut String, text: &str) {
    out.reserve(text.len());
    // SAFETY: `reserve` made room for `text.len()` more bytes after `len`;
    // the bytes written are a whole `str`'s, so the string stays UTF-8, and
    // they are initialised before `set_len` covers them.
    unsafe {
        let bytes = out.as_mut_vec();
        let len = bytes.len();
        let end = bytes.as_mut_ptr().add(len);
        for (i, &b) in text.as_bytes().iter().enumerate() {
            end.add(i).write_volatile(b);
        }
        bytes.set_len(len + text.len());
    }
}

/// A whole number [`Piece::int`] writes: any of Rust's integers up to 64 bits.
pub trait Integer: Copy {
    /// Whether it is below zero, and its absolute value.
    fn sign_and_magnitude(self) -> (bool, u64);
}

macro_rules! integer {
    (unsigned: $($u:ty),*; signed: $($i:ty),*) => {
        $(impl Integer for $u {
            fn sign_and_magnitude(self) -> (bool, u64) {
                (false, self as u64)
            }
        })*
        $(impl Integer for $i {
            fn sign_and_magnitude(self) -> (bool, u64) {
                (self < 0, (self as i64).unsigned_abs())
            }
        })*
    };
}
integer!(unsigned: u8, u16, u32, u64, usize; signed: i8, i16, i32, i64, isize);

/// A number written with a fixed number of decimal places — the same text as
/// `format!("{:.places$}", value)`, without the slow path: std's exact float
/// formatting falls back to big-number arithmetic for most values, which made
/// `{:.2}` the most expensive part of a reason (measured in `plugins/billing`:
/// ≈40 % of a 1,024-item call). Values below 10^11 / 10^places that are not
/// within 10^-4 of a rounding tie are written from an integer; the rest (huge
/// values, near-ties, NaN, infinities) go to std. At most 9 places.
///
/// ```
/// use switchyard_contract::Fixed;
/// assert_eq!(Fixed(1234.5, 2).to_string(), "1234.50");
/// assert_eq!(Fixed(37.5, 0).to_string(), format!("{:.0}", 37.5));
/// assert_eq!(Fixed(-0.004, 2).to_string(), "-0.00");
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Fixed(pub f64, pub u8);

impl Fixed {
    /// The text written from an integer into `buf`, or `None` when std must
    /// write it (huge values, near-ties, NaN, infinities).
    fn digits(self, buf: &mut [u8; FIXED_BUF]) -> Option<&str> {
        let Fixed(value, places) = self;
        let places = places.min(9) as usize;
        let unit = 10u64.pow(places as u32);
        let scaled = value.abs() * unit as f64;
        // Below 1e11 the product's rounding error is under 1e-5, so a fraction
        // further than 1e-4 from .5 rounds the same way as the exact value.
        if scaled < 1e11 {
            let whole = scaled.floor();
            let fraction = scaled - whole;
            if (fraction - 0.5).abs() > 1e-4 {
                let rounded = whole as u64 + u64::from(fraction > 0.5);
                return Some(fixed_digits(buf, value.is_sign_negative(), rounded, places));
            }
        }
        None
    }
}

impl std::fmt::Display for Fixed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.digits(&mut [0; FIXED_BUF]) {
            Some(digits) => f.write_str(digits),
            None => {
                let Fixed(value, places) = *self;
                let places = places.min(9) as usize;
                write!(f, "{value:.places$}")
            }
        }
    }
}

/// Room for what [`fixed_digits`] writes: a sign, 20 digits, a point.
const FIXED_BUF: usize = 24;

/// `rounded / 10^places` written with `places` decimals (and a `-` when
/// `negative`) into the end of `buf`, by hand: one `write_str` of the result
/// instead of a nested `write!` through `core::fmt`'s integer formatting and
/// padding (≈3.5× slower in a component than natively, measured on billing).
fn fixed_digits(buf: &mut [u8; FIXED_BUF], negative: bool, rounded: u64, places: usize) -> &str {
    let mut at = FIXED_BUF;
    let mut put = |at: &mut usize, byte: u8| {
        *at -= 1;
        buf[*at] = byte;
    };
    // The fraction's digits, then the point, then at least one whole digit
    // (u64 has at most 20). Amounts fit 32 bits: dividing those by 10 is a
    // multiply and a shift (exact for every u32), where Cranelift emits a
    // 64-bit division per digit.
    let mut wide = rounded;
    let mut i = 0;
    while wide > u64::from(u32::MAX) {
        if i == places && places > 0 {
            put(&mut at, b'.');
        }
        put(&mut at, b'0' + (wide % 10) as u8);
        wide /= 10;
        i += 1;
    }
    let mut narrow = wide as u32;
    while narrow > 0 || i <= places {
        if i == places && places > 0 {
            put(&mut at, b'.');
        }
        let q = ((u64::from(narrow) * 0xCCCC_CCCD) >> 35) as u32;
        put(&mut at, b'0' + (narrow - q * 10) as u8);
        narrow = q;
        i += 1;
    }
    if negative {
        put(&mut at, b'-');
    }
    // SAFETY: only ASCII digits, '.' and '-' were written to `buf[at..]`.
    unsafe { std::str::from_utf8_unchecked(&buf[at..]) }
}

/// One step an escalation rule takes on a waiting item.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "kebab-case", tag = "action", content = "value"))]
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
/// use switchyard_contract::{Escalation, EscalationAction};
/// let e = Escalation::none().then(EscalationAction::RaiseBy(10)).recheck_in_ms(60_000);
/// assert_eq!(e.actions.len(), 1);
/// assert_eq!(e.recheck_in_ms, Some(60_000));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
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
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "kebab-case"))]
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "lowercase"))]
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "lowercase"))]
pub enum NameKind {
    /// Skill names.
    Skill,
    /// Queue names.
    Queue,
    /// Attribute keys.
    Attribute,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytewise_pushes_append_like_push_str() {
        let mut out = String::from("ab");
        for text in ["", "c", "dé", "fghijklmnopqrstuvwxyz-0123456789", "ü"] {
            let mut want = out.clone();
            want.push_str(text);
            push_bytewise(&mut out, text);
            assert_eq!(out, want);
        }
    }

    #[test]
    fn pieces_write_what_format_writes() {
        let ctx = true;
        let ints: [i64; 9] = [0, 1, -1, 9, 10, 4_294_967_295, 4_294_967_296, i64::MAX, i64::MIN];
        for n in ints {
            let mut why = Reason::new(&ctx);
            why.new_part().int(n).text("|").int(n.unsigned_abs()).text("|").fixed(n as f64 / 7.0, 3);
            let want = format!("{n}|{}|{:.3}", n.unsigned_abs(), n as f64 / 7.0);
            assert_eq!(why.into_text().as_deref(), Some(want.as_str()));
        }
        let mut why = Reason::new(&ctx);
        why.new_part().fixed(f64::NAN, 2);
        why.new_part().int(7u8).text(" of ").int(-3i32);
        assert_eq!(why.into_text().as_deref(), Some("NaN, 7 of -3"));

        let quiet = false;
        let mut why = Reason::new(&quiet);
        why.new_part().text("x").int(1).fixed(1.0, 1);
        assert_eq!(why.into_text(), None);
    }

    #[test]
    fn fixed_writes_exactly_what_std_writes() {
        let mut values = vec![
            0.0,
            -0.0,
            0.5,
            1.5,
            2.5,
            0.125,
            0.375,
            1.005,
            -0.004,
            -2.5,
            37.5,
            1234.56,
            999.995,
            0.045,
            1e10,
            99_999_999.995,
            1e15,
            1e300,
            f64::MIN_POSITIVE,
            f64::NAN,
            f64::INFINITY,
            -f64::INFINITY,
        ];
        // A deterministic spread of amounts with up to four decimals, and of
        // arbitrary doubles.
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            values.push((x % 10_000_000) as f64 / 10_000.0);
            values.push(f64::from_bits(x) % 1e12);
            values.push((x % 1000) as f64 * 0.05);
        }
        for value in values {
            for places in 0..=9u8 {
                let p = places as usize;
                assert_eq!(Fixed(value, places).to_string(), format!("{value:.p$}"), "{value:e} to {places} places");
            }
        }
    }

    #[test]
    fn a_reason_collects_parts_only_when_explaining() {
        let (on, off) = (true, false);

        let mut why = Reason::new(&on);
        why.part(format_args!("{} tier +{}", Tier::Gold, Fixed(30.0, 0)));
        why.part("voice +10");
        assert_eq!(Priority::new(1).with_reason(why).reason.as_deref(), Some("gold tier +30, voice +10"));
        assert_eq!(Priority::new(1).with_reason(Reason::new(&on)).reason, None, "an empty reason is none");

        let mut why = Reason::new(&off);
        why.part("voice +10");
        assert!(!why.is_on());
        assert_eq!(Priority::new(1).with_reason(why).reason, None);
        let built = std::cell::Cell::new(false);
        let p = Priority::new(1).because_with(&off, || {
            built.set(true);
            "never".into()
        });
        assert_eq!((p.reason, built.get()), (None, false));
    }
}
