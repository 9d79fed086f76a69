//! `billing-candidate`: a change to billing's prioritisation that ops might
//! want to try before promoting it — the example candidate of a backtest
//! (`switchyard simulate … --rules billing=billing_candidate.wasm`, see the
//! README's "Backtesting a rule change").
//!
//! Where `plugins/billing` weighs tier, repeat contacts, the amount at stake
//! and the channel (voice first) and sends large disputes to
//! `billing-disputes`, this candidate puts chats before calls (chat agents
//! handle several at once, so the bet is that chats waiting hurt more), ranks
//! by tier within a channel, and leaves every item in the queue it came to.

use switchyard_sdk::{Channel, Context, Item, Priority, Rules};

/// Points per tier step (standard 0 … platinum 3).
const TIER_POINTS: i32 = 10;
/// Points for a chat (or e-mail) over a call.
const DIGITAL_POINTS: i32 = 50;

/// The candidate rule set.
#[derive(Debug, Default)]
pub struct ChatsFirst;

#[switchyard_sdk::rules]
impl Rules for ChatsFirst {
    fn prioritise(&self, _ctx: &Context, item: Item<'_>) -> Priority {
        let digital = if matches!(item.channel(), Channel::Chat | Channel::Email) { DIGITAL_POINTS } else { 0 };
        let tier = TIER_POINTS * i32::from(item.tier().as_u8());
        Priority::new(item.priority().saturating_add(digital).saturating_add(tier)).because("chats first, then tier")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchyard_sdk::testing::TestBench;

    #[test]
    fn fixtures_pass_natively() {
        TestBench::new(ChatsFirst)
            .run_fixtures(concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures.toml"))
            .unwrap()
            .assert_ok();
    }
}
