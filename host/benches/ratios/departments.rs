//! The department plugins users copy — `plugins/billing`, `plugins/claims`,
//! `plugins/tech-support` — measured beside the benchmark rule (issue 19).
//!
//! Each plugin crate is also a dev-dependency of the host, so its very `Rules`
//! impl runs natively through the SDK's batch drivers with a test context
//! (`Context::for_tests`, the native harness of `switchyard_sdk::testing`) that
//! lives as long as the benchmark, as the component's context lives as long as
//! its instance. Both sides get the same names and the same department config,
//! and their answers are compared before timing: the ratio isolates the sandbox.
//!
//! The inputs look like each department's traffic: billing's voice/chat/e-mail
//! items with tiers, repeat contacts, `amount` and `reason` attributes and the
//! odd dispute; claims' back-office cases with due times (some overdue) and ages;
//! tech-support's chat with two required skills and a language, against a table
//! of agents with blended load.

use std::collections::BTreeMap;
use std::path::PathBuf;

use switchyard_host::rules::SharedCatalog;
use switchyard_host::runtime::DepartmentConfig;
use switchyard_sdk::{
    CandidateTable, Catalog, Channel, Context, ItemBatch, NewCandidate, NewItem, SkillId, SkillReq, TestHost, Tier,
};

use crate::workload::{NOW_MS, Rng};

/// Names every department workload uses, interned before anything is decided
/// so that the catalog the native side copies is the one the host serves.
const QUEUES: &[&str] = &[
    "billing",
    "billing-disputes",
    "claims",
    "claims-overdue",
    "tech",
    "collections",
    "collections-late-stage",
    "collections-hardship",
    "retail-chat",
];
const SKILLS: &[&str] = &["billing", "claims", "network", "hardware", "lang-es", "lang-en"];
const ATTRIBUTES: &[&str] =
    &["amount", "reason", "language", "days-past-due", "broken-promises", "hardship", "basket-value"];

/// Department config: a few keys set as ops would, the rest left at defaults
/// (an absent key is a lookup too).
pub fn config(department: &str) -> Vec<(&'static str, &'static str)> {
    match department {
        "billing" => vec![("weight-tier", "15"), ("weight-repeat", "20"), ("dispute-queue", "billing-disputes")],
        "claims" => vec![("horizon-h", "120"), ("raise-by", "10")],
        "tech-support" => vec![("weight-skill", "10"), ("occupancy-target", "0.85")],
        _ => Vec::new(),
    }
}

/// The host side's config for `department`.
pub fn department_config(department: &str) -> DepartmentConfig {
    config(department).into_iter().fold(DepartmentConfig::new(), |c, (k, v)| c.with(k, v))
}

/// Intern every name the workloads use.
pub fn intern(catalog: &SharedCatalog) {
    let mut catalog = catalog.write().unwrap_or_else(|e| e.into_inner());
    for q in QUEUES {
        catalog.queues.intern(q);
    }
    for s in SKILLS {
        catalog.skills.intern(s);
    }
    for a in ATTRIBUTES {
        catalog.attributes.intern(a);
    }
}

fn snapshot(catalog: &SharedCatalog) -> Catalog {
    catalog.read().unwrap_or_else(|e| e.into_inner()).clone()
}

/// The native side's context for `department`: the host's names and the same
/// config, kept for the whole run (one per plugin, like one instance).
pub fn native_context(catalog: &SharedCatalog, department: &str) -> Context {
    native_context_with(catalog, department, &[])
}

/// [`native_context`] with `extra` config keys.
pub fn native_context_with(catalog: &SharedCatalog, department: &str, extra: &[(&str, &str)]) -> Context {
    let config: BTreeMap<String, String> = config(department)
        .into_iter()
        .chain(extra.iter().copied())
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    Context::for_tests(TestHost { catalog: snapshot(catalog), config, now_ms: NOW_MS, ..TestHost::default() })
}

fn id(table: &switchyard_sdk::NameTable, name: &str) -> u32 {
    table.id(name).unwrap_or_else(|| panic!("`{name}` was not interned"))
}

/// `n` billing items: voice, chat and e-mail, all tiers, up to four contacts,
/// an `amount` on most (a malformed one now and then), a `reason` on some, and a
/// dispute over the threshold every so often.
pub fn billing_batch(catalog: &SharedCatalog, n: usize, seed: u64) -> ItemBatch {
    let names = snapshot(catalog);
    let queue = id(&names.queues, "billing");
    let amount = id(&names.attributes, "amount");
    let reason = id(&names.attributes, "reason");
    let skill = SkillId(id(&names.skills, "billing"));
    let mut rng = Rng::new(seed);
    let mut batch = ItemBatch::with_capacity(NOW_MS, n);
    for i in 0..n {
        let amount_text = match rng.below(10) {
            0..=5 => format!("{}.{:02}", rng.below(1_500), rng.below(100)),
            6 => "a lot".to_owned(),
            _ => String::new(),
        };
        let reason_text = ["dispute", "refund", "invoice", ""][rng.below(4) as usize];
        let mut attributes: Vec<(u32, &str)> = Vec::new();
        if !amount_text.is_empty() {
            attributes.push((amount, &amount_text));
        }
        if !reason_text.is_empty() {
            attributes.push((reason, reason_text));
        }
        batch.push(NewItem {
            id: 1_000 + i as u64,
            channel: Channel::from_index(rng.below(3) as usize),
            queue,
            tier: Tier::from_u8(rng.below(4) as u8),
            contacts: 1 + rng.below(4) as u16,
            priority: rng.below(11) as i32 - 5,
            age_ms: rng.below(600_000),
            due_in_ms: None,
            value: rng.below(2_000) as f64,
            skills: &[SkillReq { skill, level: 1 + rng.below(5) as u8 }],
            attributes: &attributes,
        });
    }
    batch
}

/// `n` claims cases: most due within 200 hours, a fifth overdue, a tenth
/// without a due date, aged up to 100 hours.
pub fn claims_batch(catalog: &SharedCatalog, n: usize, seed: u64) -> ItemBatch {
    const HOUR_MS: u64 = 3_600_000;
    let names = snapshot(catalog);
    let queue = id(&names.queues, "claims");
    let skill = SkillId(id(&names.skills, "claims"));
    let mut rng = Rng::new(seed);
    let mut batch = ItemBatch::with_capacity(NOW_MS, n);
    for i in 0..n {
        let due = match rng.below(10) {
            0 => None,
            1 | 2 => Some(-((rng.below(48 * HOUR_MS)) as i64)),
            _ => Some(rng.below(200 * HOUR_MS) as i64 + 1),
        };
        batch.push(NewItem {
            id: 5_000 + i as u64,
            channel: Some(Channel::Case),
            queue,
            tier: Tier::from_u8(rng.below(4) as u8),
            contacts: 1,
            priority: rng.below(50) as i32,
            age_ms: rng.below(100 * HOUR_MS),
            due_in_ms: due,
            value: rng.below(20_000) as f64,
            skills: &[SkillReq { skill, level: 1 + rng.below(8) as u8 }],
            attributes: &[],
        });
    }
    batch
}

/// The chat tech-support matches: network ≥ 4, hardware ≥ 3, language `es`.
pub fn tech_item(catalog: &SharedCatalog) -> ItemBatch {
    let names = snapshot(catalog);
    let mut batch = ItemBatch::new(NOW_MS);
    batch.push(NewItem {
        id: 9_000,
        channel: Some(Channel::Chat),
        queue: id(&names.queues, "tech"),
        skills: &[
            SkillReq { skill: SkillId(id(&names.skills, "network")), level: 4 },
            SkillReq { skill: SkillId(id(&names.skills, "hardware")), level: 3 },
        ],
        attributes: &[(id(&names.attributes, "language"), "ES")],
        ..Default::default()
    });
    batch
}

/// `n` candidate agents with columns network, hardware, lang-es, lang-en and
/// blended load (some on a call, some with chats or a case).
pub fn tech_table(catalog: &SharedCatalog, n: usize, seed: u64) -> CandidateTable {
    let names = snapshot(catalog);
    let columns: Vec<u32> =
        ["network", "hardware", "lang-es", "lang-en"].iter().map(|s| id(&names.skills, s)).collect();
    let mut rng = Rng::new(seed);
    let mut table = CandidateTable::new(columns);
    for i in 0..n {
        let proficiency: Vec<u8> = (0..4).map(|_| rng.below(11) as u8).collect();
        let load = match rng.below(6) {
            0 => [1, 0, 0, 0],
            1 | 2 => [0, rng.below(3) as u8, rng.below(2) as u8, 0],
            3 => [0, 0, 0, 1],
            _ => [0, 0, 0, 0],
        };
        table.push(NewCandidate {
            id: 20_000 + i as u64,
            proficiency: &proficiency,
            idle_ms: rng.below(1_800_000),
            occupancy: rng.below(101) as f32 / 100.0,
            load,
        });
    }
    table
}

/// `n` collections cases for the Python plugin (`days-past-due`,
/// `broken-promises`, `hardship`, balances, due times).
pub fn collections_batch(catalog: &SharedCatalog, n: usize, seed: u64) -> ItemBatch {
    let names = snapshot(catalog);
    let queue = id(&names.queues, "collections");
    let days = id(&names.attributes, "days-past-due");
    let promises = id(&names.attributes, "broken-promises");
    let hardship = id(&names.attributes, "hardship");
    let mut rng = Rng::new(seed);
    let mut batch = ItemBatch::with_capacity(NOW_MS, n);
    for i in 0..n {
        let days_text = rng.below(150).to_string();
        let promises_text = rng.below(4).to_string();
        let mut attributes = vec![(days, days_text.as_str()), (promises, promises_text.as_str())];
        if rng.below(8) == 0 {
            attributes.push((hardship, "yes"));
        }
        batch.push(NewItem {
            id: 7_000 + i as u64,
            channel: Some(Channel::Case),
            queue,
            tier: Tier::from_u8(rng.below(4) as u8),
            value: rng.below(20_000) as f64,
            due_in_ms: Some(rng.below(3 * 86_400_000) as i64 - 86_400_000),
            attributes: &attributes,
            ..Default::default()
        });
    }
    batch
}

/// `n` retail chats for the JavaScript plugin (`basket-value`, repeat contacts).
pub fn retail_batch(catalog: &SharedCatalog, n: usize, seed: u64) -> ItemBatch {
    let names = snapshot(catalog);
    let queue = id(&names.queues, "retail-chat");
    let basket = id(&names.attributes, "basket-value");
    let mut rng = Rng::new(seed);
    let mut batch = ItemBatch::with_capacity(NOW_MS, n);
    for i in 0..n {
        let basket_text = rng.below(800).to_string();
        batch.push(NewItem {
            id: 8_000 + i as u64,
            channel: Some(Channel::Chat),
            queue,
            tier: Tier::from_u8(rng.below(4) as u8),
            contacts: 1 + rng.below(4) as u16,
            attributes: &[(basket, basket_text.as_str())],
            ..Default::default()
        });
    }
    batch
}

/// Where the polyglot build (`plugins/polyglot/build.rs`) leaves its
/// components: `<target>/polyglot/`.
pub fn polyglot_dir(workspace: &std::path::Path) -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => workspace.join(dir).join("polyglot"),
        None => workspace.join("target/polyglot"),
    }
}
