//! A department's rules decide the same natively and in the sandbox.
//!
//! Each department plugin (`plugins/billing`, `claims`, `tech-support`) is one
//! crate built twice: as an rlib, run here through the SDK's batch drivers with
//! a test context, and as a WebAssembly component, run by the host's
//! [`Runtime`] through the canonical-ABI fast path and the SDK's guest glue.
//! For random batches and candidate tables (every channel and tier, absent and
//! malformed attributes, overdue and missing due times, odd ages, blended
//! loads) both must give the same answers — priorities, queues, reasons,
//! escalation actions, scores — with the same names and the same department
//! config. A difference is a bug in the SDK's glue, the host's ABI or the
//! sandbox, not in the rules.

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock, RwLock};

use proptest::prelude::*;
use switchyard_host::rules::{RuleSource, SharedCatalog};
use switchyard_host::runtime::{DepartmentConfig, Runtime};
use switchyard_sdk::{
    CandidateTable, Catalog, Channel, Context, ItemBatch, NewCandidate, NewItem, Rules, SkillId, SkillReq, TestHost,
    Tier,
};

const NOW_MS: u64 = 1_800_000_000_000;
const QUEUES: &[&str] = &["billing", "billing-disputes", "claims", "claims-overdue", "tech"];
const SKILLS: &[&str] = &["billing", "disputes", "claims", "network", "hardware", "lang-es", "lang-en"];
const ATTRIBUTES: &[&str] = &["amount", "reason", "language"];

/// Each department's config as ops might set it (the rest at the plugin's defaults).
fn config(department: &str) -> Vec<(&'static str, &'static str)> {
    match department {
        "billing" => vec![("weight-tier", "15"), ("dispute-queue", "billing-disputes"), ("dispute-threshold", "500")],
        "claims" => vec![("horizon-h", "96"), ("raise-by", "7"), ("overdue-queue", "claims-overdue")],
        "tech-support" => vec![("weight-skill", "12"), ("occupancy-target", "0.8")],
        _ => Vec::new(),
    }
}

/// One host for the whole test binary: the three components registered under
/// their departments, on a catalogue with every name interned.
fn host() -> &'static (Runtime, SharedCatalog) {
    static HOST: OnceLock<(Runtime, SharedCatalog)> = OnceLock::new();
    HOST.get_or_init(|| {
        let catalog: SharedCatalog = Arc::new(RwLock::new(Catalog::default()));
        {
            let mut names = catalog.write().unwrap();
            for q in QUEUES {
                names.queues.intern(q);
            }
            for s in SKILLS {
                names.skills.intern(s);
            }
            for a in ATTRIBUTES {
                names.attributes.intern(a);
            }
        }
        let cache = tempfile::tempdir().expect("a cache directory").keep();
        let runtime = Runtime::builder().cache_dir(cache).catalog(catalog.clone()).build().expect("a runtime");
        for (department, component) in [
            ("billing", switchyard_plugin_artifacts::BILLING),
            ("claims", switchyard_plugin_artifacts::CLAIMS),
            ("tech-support", switchyard_plugin_artifacts::TECH_SUPPORT),
        ] {
            let config = config(department).into_iter().fold(DepartmentConfig::new(), |c, (k, v)| c.with(k, v));
            runtime.register_file(department, component, config).expect("the component loads");
        }
        (runtime, catalog)
    })
}

/// The native side's context: the host's names and the department's config.
fn native(department: &str) -> Context {
    let (_, catalog) = host();
    let config: BTreeMap<String, String> =
        config(department).into_iter().map(|(k, v)| (k.to_owned(), v.to_owned())).collect();
    Context::for_tests(TestHost {
        catalog: catalog.read().unwrap().clone(),
        config,
        now_ms: NOW_MS,
        ..TestHost::default()
    })
}

fn id(kind: &str, name: &str) -> u32 {
    let names = host().1.read().unwrap();
    let table = match kind {
        "queue" => &names.queues,
        "skill" => &names.skills,
        _ => &names.attributes,
    };
    table.id(name).unwrap_or_else(|| panic!("`{name}` is interned"))
}

/// One generated item, before it becomes a batch row.
#[derive(Debug, Clone)]
struct Item {
    channel: usize,
    queue: usize,
    tier: u8,
    contacts: u16,
    priority: i32,
    age_ms: u64,
    due_in_ms: Option<i64>,
    value: f64,
    skills: Vec<(usize, u8)>,
    attributes: Vec<(usize, String)>,
}

fn any_item() -> impl Strategy<Value = Item> {
    let attribute_value = prop_oneof![
        (0u32..5_000, 0u32..100).prop_map(|(a, c)| format!("{a}.{c:02}")),
        Just("dispute".to_owned()),
        Just("refund".to_owned()),
        Just("ES".to_owned()),
        Just("a lot".to_owned()),
        Just(String::new()),
        "\\PC{0,12}",
    ];
    (
        (0usize..4, 0usize..QUEUES.len(), 0u8..4, 1u16..6, -50i32..150),
        (0u64..400 * 3_600_000, proptest::option::of(-100i64 * 3_600_000..300 * 3_600_000), 0f64..50_000.0),
        proptest::collection::vec((0usize..SKILLS.len(), 1u8..=10), 0..3),
        proptest::collection::vec((0usize..ATTRIBUTES.len(), attribute_value), 0..3),
    )
        .prop_map(
            |((channel, queue, tier, contacts, priority), (age_ms, due_in_ms, value), skills, attributes)| Item {
                channel,
                queue,
                tier,
                contacts,
                priority,
                age_ms,
                due_in_ms,
                value,
                skills,
                attributes,
            },
        )
}

fn batch(items: &[Item]) -> ItemBatch {
    let mut batch = ItemBatch::with_capacity(NOW_MS, items.len());
    for (i, item) in items.iter().enumerate() {
        let skills: Vec<SkillReq> =
            item.skills.iter().map(|&(s, level)| SkillReq { skill: SkillId(id("skill", SKILLS[s])), level }).collect();
        let attributes: Vec<(u32, &str)> =
            item.attributes.iter().map(|(a, v)| (id("attribute", ATTRIBUTES[*a]), v.as_str())).collect();
        batch.push(NewItem {
            id: 100 + i as u64,
            channel: Channel::from_index(item.channel),
            queue: id("queue", QUEUES[item.queue]),
            tier: Tier::from_u8(item.tier),
            contacts: item.contacts,
            priority: item.priority,
            age_ms: item.age_ms,
            due_in_ms: item.due_in_ms,
            value: item.value,
            skills: &skills,
            attributes: &attributes,
        });
    }
    batch
}

/// (proficiency per column, idle ms, occupancy, load per channel) of one candidate.
type Candidate = (Vec<u8>, u64, f32, [u8; 4]);

fn any_candidates() -> impl Strategy<Value = Vec<Candidate>> {
    proptest::collection::vec(
        (
            proptest::collection::vec(0u8..=10, 4),
            0u64..3_600_000,
            0f32..=1.0,
            (0u8..2, 0u8..4, 0u8..4, 0u8..2).prop_map(|(v, c, e, k)| [v, c, e, k]),
        ),
        0..40,
    )
}

fn table(candidates: &[Candidate]) -> CandidateTable {
    let columns = ["network", "hardware", "lang-es", "lang-en"].iter().map(|s| id("skill", s)).collect();
    let mut table = CandidateTable::new(columns);
    for (i, (proficiency, idle_ms, occupancy, load)) in candidates.iter().enumerate() {
        table.push(NewCandidate {
            id: 1 + i as u64,
            proficiency,
            idle_ms: *idle_ms,
            occupancy: *occupancy,
            load: *load,
        });
    }
    table
}

/// The host's answer must come from the plugin, not a fallback.
fn from_plugin(source: &RuleSource, what: &str) {
    assert!(matches!(source, RuleSource::Plugin { .. }), "{what}: decided by {source}");
}

fn decide_natively<R: Rules>(rules: &R, department: &str, batch: &ItemBatch) -> Vec<switchyard_sdk::Priority> {
    switchyard_sdk::rules::prioritise_batch(rules, &native(department), batch)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn billing_prioritises_the_same_natively_and_sandboxed(items in proptest::collection::vec(any_item(), 1..40)) {
        let batch = batch(&items);
        let sandboxed = host().0.rules("billing").prioritise(&batch);
        from_plugin(&sandboxed.source, "billing");
        prop_assert_eq!(sandboxed.value, decide_natively(&billing::Billing, "billing", &batch));
    }

    #[test]
    fn claims_prioritises_and_escalates_the_same_natively_and_sandboxed(
        items in proptest::collection::vec(any_item(), 1..40),
    ) {
        let batch = batch(&items);
        let rules = host().0.rules("claims");
        let sandboxed = rules.prioritise(&batch);
        from_plugin(&sandboxed.source, "claims prioritise");
        prop_assert_eq!(sandboxed.value, decide_natively(&claims::Claims, "claims", &batch));
        let sandboxed = rules.escalate(&batch);
        from_plugin(&sandboxed.source, "claims escalate");
        let native = switchyard_sdk::rules::escalate_batch(&claims::Claims, &native("claims"), &batch);
        prop_assert_eq!(sandboxed.value, native);
    }

    #[test]
    fn tech_support_matches_the_same_natively_and_sandboxed(item in any_item(), candidates in any_candidates()) {
        let batch = batch(std::slice::from_ref(&item));
        let table = table(&candidates);
        let sandboxed = host().0.rules("tech-support").match_agents(&batch, &table);
        from_plugin(&sandboxed.source, "tech-support");
        let native = switchyard_sdk::rules::match_one(&tech_support::TechSupport, &native("tech-support"), &batch, &table);
        prop_assert_eq!(sandboxed.value, native);
    }
}
