//! The routing core's vocabulary: what a caller passes the router (specs, new
//! items, completions) and what it reads back (events, explanations, desktops,
//! cases). Its own module, below both the router (which changes the state) and
//! the statistics (which observe the router's [`Event`]s), so neither depends
//! on the other's internals; [`crate::router`] re-exports all of it.

use serde::{Deserialize, Serialize};
use switchyard_contract::{Channel, Tier};

use crate::rules::RuleSource;

/// Host id of a work item (assigned by the router, from 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ItemId(pub u64);

/// Host id of an agent (assigned by the router, from 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct AgentId(pub u64);

impl std::fmt::Display for ItemId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "item {}", self.0)
    }
}

/// A department: the unit that owns queues and one rule set.
#[derive(Debug, Clone, PartialEq)]
pub struct DepartmentSpec {
    /// Name (also the plugin name).
    pub name: String,
    /// How long an agent has to accept an offer before it times out.
    pub offer_timeout_ms: u64,
    /// After a reject or timeout, the same item is not offered to the same agent
    /// again for this long (unless nobody else can take it, it simply waits).
    pub reoffer_block_ms: u64,
    /// A new item for the same customer within this window after the previous
    /// one is a repeat contact and counts against first-contact resolution.
    pub fcr_window_ms: u64,
}

impl DepartmentSpec {
    /// A department with default timings: 20 s offer timeout, 60 s re-offer
    /// block, 24 h FCR window.
    pub fn new(name: impl Into<String>) -> Self {
        DepartmentSpec {
            name: name.into(),
            offer_timeout_ms: 20_000,
            reoffer_block_ms: 60_000,
            fcr_window_ms: 24 * 3_600_000,
        }
    }
}

/// A queue of a department.
#[derive(Debug, Clone, PartialEq)]
pub struct QueueSpec {
    /// Name, unique across departments.
    pub name: String,
    /// Owning department.
    pub department: String,
    /// Skill that agents need to serve the queue; defaults to the queue's name.
    pub skill: Option<String>,
    /// Service-level threshold t (answered within t counts as in service level).
    pub service_level_ms: u64,
    /// Abandons before this wait are short abandons, left out of service level.
    pub short_abandon_ms: u64,
}

impl QueueSpec {
    /// A queue with a 20 s service-level threshold and 5 s short-abandon threshold.
    pub fn new(name: impl Into<String>, department: impl Into<String>) -> Self {
        QueueSpec {
            name: name.into(),
            department: department.into(),
            skill: None,
            service_level_ms: 20_000,
            short_abandon_ms: 5_000,
        }
    }
}

/// How much work of each channel an agent can hold at once (blending).
///
/// A call is exclusive: while an agent has a call they take nothing else, and
/// while they have chats or e-mails they take no call. Chats and e-mails share
/// `digital` slots. Cases fill idle time: an agent is offered a case only with no
/// live or digital work, and a case in progress is paused (yields) when a call,
/// chat or e-mail is accepted, and resumes when that work is done.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Capacity {
    /// Simultaneous calls (0 = takes no calls).
    pub voice: u8,
    /// Simultaneous chats.
    pub chat: u8,
    /// Simultaneous e-mails.
    pub email: u8,
    /// Chats and e-mails together.
    pub digital: u8,
    /// Cases in progress (paused ones included).
    pub case: u8,
}

impl Default for Capacity {
    /// One call or up to three chats/e-mails, and one case.
    fn default() -> Self {
        Capacity { voice: 1, chat: 3, email: 3, digital: 3, case: 1 }
    }
}

impl Capacity {
    /// Limit for `channel`.
    pub fn of(&self, channel: Channel) -> u8 {
        match channel {
            Channel::Voice => self.voice,
            Channel::Chat => self.chat,
            Channel::Email => self.email,
            Channel::Case => self.case,
        }
    }
}

/// An agent as registered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentSpec {
    /// Display name / login (unique).
    pub name: String,
    /// Group for reports (e.g. the roster line).
    pub group: String,
    /// Skills with proficiency 1-10.
    pub skills: Vec<(String, u8)>,
    /// Blending capacity.
    pub capacity: Capacity,
    /// After-work time following each item, during which its slot stays taken.
    pub wrap_up_ms: u64,
}

/// What the agent says about themself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Presence {
    /// Ready for offers.
    Available,
    /// Logged in but not taking new work (break, meeting, missed offer); work in
    /// hand is finished.
    Away,
    /// Logged out; work in hand is finished first.
    Offline,
}

/// The state an agent is in, as shown on a wallboard.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AgentState {
    /// Ready and idle (or with spare capacity and nothing in hand).
    Available,
    /// Handling at least one item.
    Busy,
    /// Only after-work left.
    WrapUp,
    /// Away (new work is not offered).
    Away,
    /// Logged out.
    Offline,
}

impl AgentState {
    /// The state's name, as it serializes (`wrap-up`).
    pub fn name(self) -> &'static str {
        match self {
            AgentState::Available => "available",
            AgentState::Busy => "busy",
            AgentState::WrapUp => "wrap-up",
            AgentState::Away => "away",
            AgentState::Offline => "offline",
        }
    }
}

/// A new work item.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NewWorkItem {
    /// Department name.
    pub department: String,
    /// Queue name.
    pub queue: String,
    /// Channel.
    pub channel: Option<Channel>,
    /// Extra required skills (the queue's skill at level 1 is always required
    /// unless given here with another level).
    pub skills: Vec<(String, u8)>,
    /// Attributes.
    pub attributes: Vec<(String, String)>,
    /// Initial priority (the department's prioritise rule may change it).
    pub priority: i32,
    /// Customer tier.
    pub tier: Tier,
    /// Money at stake.
    pub value: f64,
    /// Customer id (for FCR and case history).
    pub customer: Option<String>,
    /// Case id; items of one case share a history across departments.
    pub case: Option<String>,
    /// Due time relative to creation (back-office SLA).
    pub due_in_ms: Option<u64>,
}

/// A hand-off to another department, made when an item completes.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HandOff {
    /// The follow-up item; its customer and case are taken from the finished item.
    pub item: NewWorkItem,
    /// The id reserved for it ([`Router::reserve_item_id`](crate::router::Router::reserve_item_id))
    /// when its rules were asked before the completion ([`Router::plan_handoff`](crate::router::Router::plan_handoff));
    /// `None` (or an id in use): the next id.
    pub id: Option<ItemId>,
}

/// How an item ended.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Completion {
    /// Whether the customer's request was resolved (first-contact resolution).
    pub resolved: bool,
    /// Follow-up work in another department (same case).
    pub handoff: Option<HandOff>,
}

/// Why an item sits in the exception queue.
///
/// In JSON (and other human-readable formats) `{"kind": "unknown-queue",
/// "detail": "sales"}`; binary formats (a router snapshot in postcard) get the
/// externally tagged form, since they cannot read an adjacently tagged enum.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExceptionReason {
    /// The item names a department the router does not know.
    UnknownDepartment(String),
    /// The item names a queue the department does not have.
    UnknownQueue(String),
    /// The item's data is invalid (e.g. a skill level outside 1-10).
    InvalidData(String),
    /// The rules gave no usable answer (e.g. moved the item to a queue that does
    /// not exist) and there is nothing to fall back on.
    NoUsableRule(String),
}

/// [`ExceptionReason`] as serde sees it in human-readable formats (`S` is
/// `&str` on the way out, `String` on the way in).
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "kind", content = "detail")]
enum TaggedReason<S> {
    UnknownDepartment(S),
    UnknownQueue(S),
    InvalidData(S),
    NoUsableRule(S),
}

/// [`ExceptionReason`] as serde sees it in binary formats.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
enum PlainReason<S> {
    UnknownDepartment(S),
    UnknownQueue(S),
    InvalidData(S),
    NoUsableRule(S),
}

impl Serialize for ExceptionReason {
    fn serialize<Z: serde::Serializer>(&self, serializer: Z) -> Result<Z::Ok, Z::Error> {
        let (tagged, plain) = match self {
            ExceptionReason::UnknownDepartment(d) => {
                (TaggedReason::UnknownDepartment(d.as_str()), PlainReason::UnknownDepartment(d.as_str()))
            }
            ExceptionReason::UnknownQueue(q) => {
                (TaggedReason::UnknownQueue(q.as_str()), PlainReason::UnknownQueue(q.as_str()))
            }
            ExceptionReason::InvalidData(m) => {
                (TaggedReason::InvalidData(m.as_str()), PlainReason::InvalidData(m.as_str()))
            }
            ExceptionReason::NoUsableRule(m) => {
                (TaggedReason::NoUsableRule(m.as_str()), PlainReason::NoUsableRule(m.as_str()))
            }
        };
        if serializer.is_human_readable() { tagged.serialize(serializer) } else { plain.serialize(serializer) }
    }
}

impl<'de> Deserialize<'de> for ExceptionReason {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let plain = if deserializer.is_human_readable() {
            match TaggedReason::<String>::deserialize(deserializer)? {
                TaggedReason::UnknownDepartment(d) => PlainReason::UnknownDepartment(d),
                TaggedReason::UnknownQueue(q) => PlainReason::UnknownQueue(q),
                TaggedReason::InvalidData(m) => PlainReason::InvalidData(m),
                TaggedReason::NoUsableRule(m) => PlainReason::NoUsableRule(m),
            }
        } else {
            PlainReason::<String>::deserialize(deserializer)?
        };
        Ok(match plain {
            PlainReason::UnknownDepartment(d) => ExceptionReason::UnknownDepartment(d),
            PlainReason::UnknownQueue(q) => ExceptionReason::UnknownQueue(q),
            PlainReason::InvalidData(m) => ExceptionReason::InvalidData(m),
            PlainReason::NoUsableRule(m) => ExceptionReason::NoUsableRule(m),
        })
    }
}

impl std::fmt::Display for ExceptionReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ExceptionReason::UnknownDepartment(d) => write!(f, "unknown department `{d}`"),
            ExceptionReason::UnknownQueue(q) => write!(f, "unknown queue `{q}`"),
            ExceptionReason::InvalidData(m) => write!(f, "invalid data: {m}"),
            ExceptionReason::NoUsableRule(m) => write!(f, "no usable rule: {m}"),
        }
    }
}

/// Where an item is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ItemStatus {
    /// Waiting in its queue.
    Queued,
    /// Offered to an agent, waiting for accept/reject.
    Offered,
    /// Being handled.
    Active,
    /// A case that yielded to live work and waits to resume.
    Paused,
    /// Handled; the agent is in after-work.
    WrapUp,
    /// In the exception queue.
    Exception,
}

/// One escalation step taken on an item, for the explanation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EscalationNote {
    /// When.
    pub at_ms: u64,
    /// Which rule.
    pub source: RuleSource,
    /// What it did, in words.
    pub actions: Vec<String>,
}

/// Why an item is where it is: rule sources, priority, score and candidates.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Explanation {
    /// Rule that set the priority.
    pub prioritised_by: Option<RuleSource>,
    /// Priority after the prioritise rule and escalations.
    pub priority: i32,
    /// The rule's reason for the priority.
    pub priority_reason: Option<String>,
    /// Rule that chose the agent of the latest offer.
    pub matched_by: Option<RuleSource>,
    /// The chosen agent's score (for score-based rules).
    pub score: Option<f32>,
    /// Candidates in the latest match table.
    pub candidates_considered: usize,
    /// Candidates the rule did not veto.
    pub candidates_qualified: usize,
    /// The agent of the latest offer.
    pub agent: Option<String>,
    /// Escalation steps taken, oldest first (the most recent
    /// [`Retention::notes_per_item`]).
    pub escalations: Vec<EscalationNote>,
    /// Older escalation steps dropped from `escalations`.
    pub escalations_dropped: u64,
}

/// One item as an agent desktop shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DesktopItem {
    /// Item id.
    pub id: ItemId,
    /// Status (offered, active, paused, wrap-up).
    pub status: ItemStatus,
    /// Channel.
    pub channel: Channel,
    /// Department.
    pub department: String,
    /// Queue.
    pub queue: String,
    /// Priority.
    pub priority: i32,
    /// Wait before being answered (or so far, while offered), ms.
    pub wait_ms: u64,
    /// Attributes.
    pub attributes: Vec<(String, String)>,
    /// Customer id.
    pub customer: Option<String>,
    /// Case id.
    pub case: Option<String>,
    /// Why it was routed here.
    pub explanation: Explanation,
}

/// An agent's desktop: who they are and what they hold.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Desktop {
    /// Agent id.
    pub agent: AgentId,
    /// Agent name.
    pub name: String,
    /// Current state.
    pub state: AgentState,
    /// Items offered to or held by the agent.
    pub items: Vec<DesktopItem>,
}

/// One step in a case's life.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CaseStep {
    /// When.
    pub at_ms: u64,
    /// Item concerned.
    pub item: ItemId,
    /// Department of the item.
    pub department: String,
    /// What happened (created, answered by X, completed, handed off to Y, …).
    pub what: String,
}

/// A case's life cycle across departments.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CaseView {
    /// Case id.
    pub case: String,
    /// Customer id.
    pub customer: Option<String>,
    /// When the first item of the case was created.
    pub opened_ms: u64,
    /// When the last item of the case ended, if it has.
    pub closed_ms: Option<u64>,
    /// Departments visited, in order (repeats kept).
    pub departments: Vec<String>,
    /// Every step (the most recent [`Retention::case_steps`]).
    pub history: Vec<CaseStep>,
    /// Older steps dropped from `history`.
    pub history_dropped: u64,
}

/// A supervisor alert raised by an escalation rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    /// Id, from 1, increasing: what `acknowledge_alert` takes.
    pub id: u64,
    /// When.
    pub at_ms: u64,
    /// Item.
    pub item: ItemId,
    /// Department.
    pub department: String,
    /// The rule's message (at most [`Limits::alert_bytes`]).
    pub message: String,
    /// Who acknowledged it and when; `None` while open.
    pub acknowledged: Option<Acknowledgement>,
}

/// A supervisor's acknowledgement of an [`Alert`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Acknowledgement {
    /// Who (the supervisor's login).
    pub by: String,
    /// When, ms on the router's clock.
    pub at_ms: u64,
}

/// How long the router remembers what it no longer needs for routing. The
/// router prunes on [`Router::on_tick`](crate::router::Router::on_tick) and every
/// [`Retention::prune_every`] new items, popping only what expired (amortised
/// O(1) per record), never scanning everything per request.
#[derive(Debug, Clone, PartialEq)]
pub struct Retention {
    /// Alerts kept (the most recent, acknowledged or not). Default 10,000: more
    /// than a supervisor works through in days; ~1 KB each at most (message cap
    /// 4 KiB is the worst case, ~40 MB), so the list stays bounded.
    pub alerts: usize,
    /// A closed case's history is forgotten this long after it closed (a new item
    /// of the same case starts a fresh record). Default 7 days: covers the
    /// week-long look-back of a supervisor's case search.
    pub closed_case_ms: u64,
    /// Steps kept per case history (the most recent; a counter says how many were
    /// dropped). Default 1,000: a case routed through that many steps is a
    /// runaway escalation loop, not a story anyone reads.
    pub case_steps: usize,
    /// Escalation notes kept per item's explanation (the most recent; a counter
    /// says how many were dropped). Default 50: the desktop shows a handful.
    pub notes_per_item: usize,
    /// Items kept in the exception queue. Past it the oldest entry is discarded
    /// (its item is forgotten and counted). Default 10,000: ops resolve
    /// exceptions within hours; a flood of bad items must not grow the daemon.
    pub exceptions: usize,
    /// Prune at least every this many new items, for embedders that do not tick.
    /// Default 1,024.
    pub prune_every: u64,
}

impl Default for Retention {
    fn default() -> Self {
        Retention {
            alerts: 10_000,
            closed_case_ms: 7 * 24 * 3_600_000,
            case_steps: 1_000,
            notes_per_item: 50,
            exceptions: 10_000,
            prune_every: 1_024,
        }
    }
}

impl Retention {
    /// Keep everything (bounded runs: the simulator, tests).
    pub fn unbounded() -> Self {
        Retention {
            alerts: usize::MAX,
            closed_case_ms: u64::MAX,
            case_steps: usize::MAX,
            notes_per_item: usize::MAX,
            exceptions: usize::MAX,
            prune_every: 1_024,
        }
    }
}

/// Upper bounds on what one item, one agent or one plugin answer may bring in.
/// An item over a limit is refused by [`Router::check_item`](crate::router::Router::check_item)
/// with [`Error::Limit`](crate::error::Error::Limit); given to `create_item`
/// anyway it lands in the exception queue with its oversized data left out.
#[derive(Debug, Clone, PartialEq)]
pub struct Limits {
    /// Distinct skill and attribute names in the shared catalogue (which only
    /// grows: plugins cache ids). Default 10,000: a large centre has hundreds.
    pub catalog_names: usize,
    /// Total bytes of those names. Default 1 MiB.
    pub catalog_bytes: usize,
    /// Bytes of one name: skill, attribute key, department, queue. Default 128.
    pub name_bytes: usize,
    /// Attributes per item. Default 64.
    pub attributes_per_item: usize,
    /// Bytes of one attribute value. Default 4 KiB (a subject line or a short
    /// note, not a document).
    pub attribute_value_bytes: usize,
    /// Skills per item. Default 32.
    pub skills_per_item: usize,
    /// Bytes of a customer or case id. Default 256.
    pub id_bytes: usize,
    /// Bytes of an alert message kept (longer ones are cut at a character
    /// boundary). Default 4 KiB, as the contract's per-message cap.
    pub alert_bytes: usize,
    /// Escalation rechecks per item; past it the rule is not asked again for
    /// that item. Default 10,000 (at a 30 s recheck, 3.5 days of waiting).
    pub rechecks_per_item: u32,
    /// Longest recheck delay a rule may ask for; longer ones are shortened.
    /// Default 30 days.
    pub max_recheck_ms: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            catalog_names: 10_000,
            catalog_bytes: 1 << 20,
            name_bytes: 128,
            attributes_per_item: 64,
            attribute_value_bytes: 4 << 10,
            skills_per_item: 32,
            id_bytes: 256,
            alert_bytes: 4 << 10,
            rechecks_per_item: 10_000,
            max_recheck_ms: 30 * 24 * 3_600_000,
        }
    }
}

/// How many records of each kind a router holds (for a gauge or a test).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct RecordCounts {
    /// Items in the system (waiting, offered, in hand, exceptions).
    pub items: usize,
    /// Customer (repeat-contact) records.
    pub customers: usize,
    /// Case records, open and closed.
    pub cases: usize,
    /// Alerts kept.
    pub alerts: usize,
    /// Exception entries.
    pub exceptions: usize,
    /// Armed timers, stale ones included.
    pub timers: usize,
    /// Per-interval statistics entries (see `Metrics::interval_entries`).
    pub interval_entries: usize,
}

/// What retention and limits have dropped or refused so far (for a gauge).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetentionStats {
    /// Alerts dropped past [`Retention::alerts`].
    pub alerts_dropped: u64,
    /// Closed cases forgotten.
    pub cases_forgotten: u64,
    /// Case history steps dropped past [`Retention::case_steps`].
    pub case_steps_dropped: u64,
    /// Customer (repeat-contact) records forgotten past every FCR window.
    pub customers_forgotten: u64,
    /// Escalation notes dropped past [`Retention::notes_per_item`].
    pub notes_dropped: u64,
    /// Exception entries (and their items) discarded past [`Retention::exceptions`].
    pub exceptions_dropped: u64,
    /// Items that broke a [`Limits`] entry (sent to the exception queue).
    pub items_over_limit: u64,
    /// Escalation rechecks not armed because an item reached
    /// [`Limits::rechecks_per_item`].
    pub rechecks_refused: u64,
    /// Stale timers dropped when the timer heap was compacted.
    pub timers_compacted: u64,
}

/// An entry of the exception queue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExceptionEntry {
    /// Item.
    pub item: ItemId,
    /// When it landed there.
    pub at_ms: u64,
    /// Why.
    pub reason: ExceptionReason,
    /// Department the item asked for.
    pub department: String,
    /// Queue the item asked for.
    pub queue: String,
}

/// A decision the router asked for and got [`RuleSource::Deferred`]
/// instead of an answer: what to do again, with the answer at hand, through
/// [`Router::decide_deferred`](crate::router::Router::decide_deferred). Until then the
/// item waits as it was; a retry timer asks again if nobody does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeferredCall {
    /// Offer this waiting item to the best free candidate (`match-agents`
    /// over every qualified free agent).
    Dispatch {
        /// The item.
        item: ItemId,
    },
    /// Offer waiting work to this agent (`match-agents` over the agent alone,
    /// for each waiting item in turn).
    Fill {
        /// The agent.
        agent: AgentId,
    },
    /// Ask `escalate` about this waiting item, if its recheck is still the
    /// one that came due.
    Escalate {
        /// The item.
        item: ItemId,
        /// The recheck's generation: a later escalation makes this one stale.
        generation: u64,
    },
}

/// What a queue holds right now.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize)]
pub struct QueueSnapshot {
    /// Items waiting (not offered).
    pub waiting: usize,
    /// Items offered, awaiting an answer.
    pub offered: usize,
    /// Age of the oldest waiting item, ms.
    pub oldest_wait_ms: u64,
    /// Mean age of waiting items, ms.
    pub mean_wait_ms: f64,
    /// Waiting items past their due time.
    pub overdue: usize,
}

/// What an agent is doing, for time accounting (occupancy).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Activity {
    /// Logged in, available, nothing in hand.
    Idle,
    /// Handling or wrapping up at least one item.
    Busy,
    /// Logged in but away, nothing in hand.
    Away,
    /// Logged out.
    Offline,
}

/// Something that happened in the router. Every event carries the time; item
/// events carry the queue and the item's creation time so statistics can bucket
/// them without looking the item up.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "event")]
pub enum Event {
    /// An item entered the system (queued, offered or put in the exception queue).
    Created {
        /// When.
        at_ms: u64,
        /// Item.
        item: ItemId,
        /// Queue (index into the router's queues; `None` for an exception).
        queue: Option<usize>,
        /// Channel.
        channel: Channel,
    },
    /// A new item for a customer within the FCR window of their previous item.
    Repeat {
        /// When.
        at_ms: u64,
        /// The new item.
        item: ItemId,
        /// The previous item.
        previous: ItemId,
        /// The queue of the previous item (its FCR is what fails).
        previous_queue: usize,
    },
    /// An item was offered to an agent.
    Offered {
        /// When.
        at_ms: u64,
        /// Item.
        item: ItemId,
        /// Agent.
        agent: AgentId,
    },
    /// The agent accepted: the item is answered.
    Accepted {
        /// When.
        at_ms: u64,
        /// Item.
        item: ItemId,
        /// Agent.
        agent: AgentId,
        /// Queue.
        queue: usize,
        /// Item creation time.
        created_ms: u64,
        /// Whether this is the item's first answer (a case resumed after a
        /// hand-back is answered again, but counted once).
        first: bool,
    },
    /// An offer was rejected, timed out or cancelled; the item is back in its queue
    /// (unless cancelled by a withdrawal).
    OfferEnded {
        /// When.
        at_ms: u64,
        /// Item.
        item: ItemId,
        /// Agent.
        agent: AgentId,
        /// `rejected`, `timed-out` or `cancelled`.
        how: &'static str,
    },
    /// A case in progress yielded to live work.
    Paused {
        /// When.
        at_ms: u64,
        /// Item.
        item: ItemId,
        /// Agent.
        agent: AgentId,
    },
    /// A paused case resumed.
    Resumed {
        /// When.
        at_ms: u64,
        /// Item.
        item: ItemId,
        /// Agent.
        agent: AgentId,
    },
    /// The agent finished the item (after-work included) and the slot is free.
    Completed {
        /// When.
        at_ms: u64,
        /// Item.
        item: ItemId,
        /// Agent.
        agent: AgentId,
        /// Queue.
        queue: usize,
        /// Item creation time.
        created_ms: u64,
        /// Time from answer to end of after-work, pauses excluded.
        handle_ms: u64,
        /// Due time, if any.
        due_ms: Option<u64>,
        /// Whether the request was resolved.
        resolved: bool,
    },
    /// A waiting or offered item was withdrawn (the customer abandoned).
    Abandoned {
        /// When.
        at_ms: u64,
        /// Item.
        item: ItemId,
        /// Queue.
        queue: usize,
        /// Item creation time.
        created_ms: u64,
    },
    /// An escalation rule acted on an item.
    Escalated {
        /// When.
        at_ms: u64,
        /// Item.
        item: ItemId,
        /// What it did.
        actions: Vec<String>,
    },
    /// An item moved to another queue (prioritise or escalate).
    Moved {
        /// When.
        at_ms: u64,
        /// Item.
        item: ItemId,
        /// From queue.
        from: usize,
        /// To queue.
        to: usize,
    },
    /// An item landed in the exception queue.
    Exception {
        /// When.
        at_ms: u64,
        /// Item.
        item: ItemId,
        /// Why.
        reason: ExceptionReason,
    },
    /// A supervisor alert.
    Alert(Alert),
    /// Work of a case moved to another department.
    HandedOff {
        /// When.
        at_ms: u64,
        /// Finished item.
        from: ItemId,
        /// Follow-up item.
        to: ItemId,
        /// Case.
        case: String,
    },
    /// The last open item of a case ended.
    CaseClosed {
        /// When.
        at_ms: u64,
        /// Case.
        case: String,
        /// When it opened.
        opened_ms: u64,
        /// Department names visited, in order.
        departments: Vec<String>,
    },
    /// An agent's activity changed (for occupancy).
    Activity {
        /// When.
        at_ms: u64,
        /// Agent.
        agent: AgentId,
        /// New activity.
        activity: Activity,
    },
}

impl Event {
    /// When it happened.
    pub fn at_ms(&self) -> u64 {
        match self {
            Event::Created { at_ms, .. }
            | Event::Repeat { at_ms, .. }
            | Event::Offered { at_ms, .. }
            | Event::Accepted { at_ms, .. }
            | Event::OfferEnded { at_ms, .. }
            | Event::Paused { at_ms, .. }
            | Event::Resumed { at_ms, .. }
            | Event::Completed { at_ms, .. }
            | Event::Abandoned { at_ms, .. }
            | Event::Escalated { at_ms, .. }
            | Event::Moved { at_ms, .. }
            | Event::Exception { at_ms, .. }
            | Event::HandedOff { at_ms, .. }
            | Event::CaseClosed { at_ms, .. }
            | Event::Activity { at_ms, .. } => *at_ms,
            Event::Alert(alert) => alert.at_ms,
        }
    }
}
