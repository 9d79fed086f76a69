//! The one name of each rule hook: what the WIT calls it, the interface that
//! exports it, the `Rules` method a plugin writes, and the key statistics,
//! fixture files and reports use.

/// A rule hook of the contract. A plugin exports any of them; the host's
/// built-in rule answers the others.
///
/// ```
/// use switchyard_contract::Hook;
/// assert_eq!(Hook::Match.name(), "match-agents");
/// assert_eq!(Hook::Match.interface(), "matcher");
/// assert_eq!(Hook::Match.method(), "match_agents");
/// assert_eq!(Hook::ALL.map(Hook::key), ["prioritise", "escalate", "match"]);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "kebab-case"))]
pub enum Hook {
    /// `prioritise`: a priority (and reason) per item of a batch.
    Prioritise,
    /// `escalate`: an action per waiting item of a batch.
    Escalate,
    /// `match-agents`: rank or score the candidate agents for one item.
    Match,
}

impl Hook {
    /// Every hook, in contract order.
    pub const ALL: [Hook; 3] = [Hook::Prioritise, Hook::Escalate, Hook::Match];

    /// The function's name in the WIT (`match-agents`).
    pub const fn name(self) -> &'static str {
        match self {
            Hook::Prioritise => "prioritise",
            Hook::Escalate => "escalate",
            Hook::Match => "match-agents",
        }
    }

    /// The WIT interface that exports it (`matcher`).
    pub const fn interface(self) -> &'static str {
        match self {
            Hook::Prioritise => "prioritiser",
            Hook::Escalate => "escalator",
            Hook::Match => "matcher",
        }
    }

    /// The method of the SDK's `Rules` trait (`match_agents`).
    pub const fn method(self) -> &'static str {
        match self {
            Hook::Prioritise => "prioritise",
            Hook::Escalate => "escalate",
            Hook::Match => "match_agents",
        }
    }

    /// The short key of statistics, JSON and fixture files (`match`).
    pub const fn key(self) -> &'static str {
        match self {
            Hook::Prioritise => "prioritise",
            Hook::Escalate => "escalate",
            Hook::Match => "match",
        }
    }
}

impl std::fmt::Display for Hook {
    /// The short key (`match`), as fixture files and their reports spell it.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.key())
    }
}
