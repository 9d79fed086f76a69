//! The benchmark rule as an Extism plugin, in both of Extism's calling styles:
//! raw bytes (`*_raw`, the encoding of `bench_rules::wire`) and JSON (`*_json`,
//! extism-pdk's `Json<T>` with the shapes of `bench_rules::json`). Each export
//! decodes into the contract's batch and table and calls the same
//! `bench_rules` functions the Switchyard component and the native baseline call.

use bench_rules::json::{JsonBatch, JsonMatch};
use bench_rules::wire;
use extism_pdk::*;
use switchyard_sdk::{MatchResult, Priority};

/// The empty hook: no input, no output.
#[plugin_fn]
pub fn noop(_input: Vec<u8>) -> FnResult<Vec<u8>> {
    Ok(Vec::new())
}

/// `prioritise`, raw bytes in and out.
#[plugin_fn]
pub fn prioritise_raw(input: Vec<u8>) -> FnResult<Vec<u8>> {
    let batch =
        wire::decode_batch(&input).ok_or_else(|| Error::msg("malformed prioritise request"))?;
    Ok(wire::encode_priorities(&bench_rules::prioritise(&batch)))
}

/// `match-agents`, raw bytes in and out.
#[plugin_fn]
pub fn match_raw(input: Vec<u8>) -> FnResult<Vec<u8>> {
    let (item, table) =
        wire::decode_match(&input).ok_or_else(|| Error::msg("malformed match request"))?;
    Ok(wire::encode_match_result(&bench_rules::match_agents(
        &item, &table,
    )))
}

/// `prioritise`, JSON in and out.
#[plugin_fn]
pub fn prioritise_json(Json(batch): Json<JsonBatch>) -> FnResult<Json<Vec<Priority>>> {
    Ok(Json(bench_rules::prioritise(&batch.to_batch())))
}

/// `match-agents`, JSON in and out.
#[plugin_fn]
pub fn match_json(Json(request): Json<JsonMatch>) -> FnResult<Json<MatchResult>> {
    let (item, table) = request.to_parts();
    Ok(Json(bench_rules::match_agents(&item, &table)))
}
