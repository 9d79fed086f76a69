//! Recorded traffic: what arrived, when, and what became of it — the input of a
//! backtest (`switchyard simulate --traffic FILE`), written by a run of the
//! simulator (`--record-traffic FILE`).
//!
//! The file is JSON lines, one [`Arrival`] per line in arrival order:
//!
//! ```text
//! {"at_ms":1200,"department":"billing","queue":"billing-general","channel":"voice","tier":"gold",
//!  "customer":"c-17","case":"case-4","value":120.5,"handle_ms":184000,"answered_after_ms":12000,"resolved":true}
//! ```
//!
//! An arrival is a new contact (a call-back is one too). What the recording
//! knows of it: the work it needed (`handle_ms`), whether and when an agent
//! took it (`answered_after_ms`) or the customer gave up (`abandoned_after_ms`),
//! and, once completed, whether it was resolved and the hand-off chain that
//! followed. A replay takes the arrivals as they are and the rest where it
//! exists; what a recording cannot know — agent rosters and shifts, handle
//! times or patience it did not see — comes from the scenario (see
//! [`super::SimOptions::traffic`]).

use std::collections::BTreeMap;
use std::io::{BufRead, Write};
use std::path::Path;

use serde::{Deserialize, Serialize};
use switchyard_contract::{Channel, Tier};

use crate::error::{Error, Result};

/// One recorded arrival. See the module docs for the file format.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Arrival {
    /// When it arrived, ms from the start of the recording.
    pub at_ms: u64,
    /// Department.
    pub department: String,
    /// Queue it was posted to.
    pub queue: String,
    /// Channel.
    pub channel: Channel,
    /// Required skills and minimum levels.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub skills: BTreeMap<String, u8>,
    /// Attributes.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub attributes: BTreeMap<String, String>,
    /// Priority it arrived with.
    #[serde(default)]
    pub priority: i32,
    /// Customer tier.
    #[serde(default)]
    pub tier: Tier,
    /// Customer (repeat contacts and cases follow it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer: Option<String>,
    /// Case it belongs to (the case timeline follows it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub case: Option<String>,
    /// Money at stake.
    #[serde(default, skip_serializing_if = "crate::serve::traffic::is_zero")]
    pub value: f64,
    /// Due time after arrival, ms (back office).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub due_in_ms: Option<u64>,
    /// The work it needed, ms (answer to end of work; the agent's after-work
    /// is the roster's, on top), if known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handle_ms: Option<u64>,
    /// An agent took it after this wait, ms (the recording saw it answered).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answered_after_ms: Option<u64>,
    /// The customer gave up after this wait, ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub abandoned_after_ms: Option<u64>,
    /// Completed: resolved at first contact or not (absent: not completed
    /// while recorded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolved: Option<bool>,
    /// The follow-up its completion handed off to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handoff: Option<Box<Handoff>>,
}

/// A recorded hand-off: the follow-up item, the work it needed and, if it was
/// completed, its own hand-off.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Handoff {
    /// Department.
    pub department: String,
    /// Queue.
    pub queue: String,
    /// Channel.
    pub channel: Channel,
    /// Required skills.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub skills: BTreeMap<String, u8>,
    /// Priority.
    #[serde(default)]
    pub priority: i32,
    /// Due time after the hand-off, ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub due_in_ms: Option<u64>,
    /// The work it needed, ms, if known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handle_ms: Option<u64>,
    /// Whether it was completed while recorded (then `then` is what followed).
    #[serde(default)]
    pub completed: bool,
    /// The hand-off that followed it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub then: Option<Box<Handoff>>,
}

/// Write `arrivals` as JSON lines.
pub fn write(path: &Path, arrivals: &[Arrival]) -> Result<()> {
    let file = std::fs::File::create(path).map_err(|e| Error::Invalid(format!("{}: {e}", path.display())))?;
    let mut out = std::io::BufWriter::new(file);
    for arrival in arrivals {
        let line = serde_json::to_string(arrival).map_err(|e| Error::Invalid(format!("traffic record: {e}")))?;
        writeln!(out, "{line}").map_err(|e| Error::Invalid(format!("{}: {e}", path.display())))?;
    }
    out.flush().map_err(|e| Error::Invalid(format!("{}: {e}", path.display())))
}

/// Read a traffic file. A line that is not a record is an error naming the
/// file, the line and what is wrong; arrivals must be in time order.
pub fn read(path: &Path) -> Result<Vec<Arrival>> {
    let file = std::fs::File::open(path).map_err(|e| Error::Invalid(format!("{}: {e}", path.display())))?;
    let mut arrivals: Vec<Arrival> = Vec::new();
    for (n, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line = line.map_err(|e| Error::Invalid(format!("{}:{}: {e}", path.display(), n + 1)))?;
        if line.trim().is_empty() {
            continue;
        }
        let arrival: Arrival = serde_json::from_str(&line)
            .map_err(|e| Error::Invalid(format!("{}:{}: not a traffic record: {e}", path.display(), n + 1)))?;
        if let Some(last) = arrivals.last()
            && arrival.at_ms < last.at_ms
        {
            return Err(Error::Invalid(format!(
                "{}:{}: arrivals must be in time order ({} ms after {} ms)",
                path.display(),
                n + 1,
                arrival.at_ms,
                last.at_ms
            )));
        }
        arrivals.push(arrival);
    }
    Ok(arrivals)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn arrival(at_ms: u64) -> Arrival {
        Arrival {
            at_ms,
            department: "billing".into(),
            queue: "billing-general".into(),
            channel: Channel::Voice,
            skills: BTreeMap::new(),
            attributes: BTreeMap::from([("amount".into(), "300".into())]),
            priority: 0,
            tier: Tier::Gold,
            customer: Some("c-1".into()),
            case: Some("case-9".into()),
            value: 120.5,
            due_in_ms: None,
            handle_ms: Some(180_000),
            answered_after_ms: Some(12_000),
            abandoned_after_ms: None,
            resolved: Some(false),
            handoff: Some(Box::new(Handoff {
                department: "claims".into(),
                queue: "claims".into(),
                channel: Channel::Case,
                skills: BTreeMap::new(),
                priority: 0,
                due_in_ms: Some(86_400_000),
                handle_ms: Some(3_600_000),
                completed: false,
                then: None,
            })),
        }
    }

    #[test]
    fn a_traffic_file_reads_back_what_was_written() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("traffic.jsonl");
        let abandoned = Arrival {
            answered_after_ms: None,
            abandoned_after_ms: Some(40_000),
            resolved: None,
            handoff: None,
            ..arrival(5)
        };
        let written = vec![arrival(0), abandoned];
        write(&path, &written).unwrap();
        assert_eq!(read(&path).unwrap(), written);
    }

    #[test]
    fn a_bad_line_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("traffic.jsonl");
        let good = serde_json::to_string(&arrival(10)).unwrap();
        std::fs::write(&path, format!("{good}\n{{\"at_ms\": 3, \"queue\": \"x\"}}\n")).unwrap();
        let error = read(&path).unwrap_err().to_string();
        assert!(error.contains("traffic.jsonl:2: not a traffic record"), "{error}");
        std::fs::write(&path, format!("{good}\n{}\n", serde_json::to_string(&arrival(3)).unwrap())).unwrap();
        let error = read(&path).unwrap_err().to_string();
        assert!(error.contains(":2: arrivals must be in time order"), "{error}");
    }
}
