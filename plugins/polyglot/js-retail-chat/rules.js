// The retail chat department's routing rules, as a pure JavaScript module.
//
// This module owns the *decisions* — how urgent a chat is (`prioritise`) and
// which agent should take it (`matchAgents`) — and nothing else. It imports no
// WebAssembly bindings, so `node --test` exercises it directly; `app.js` wires
// it to the host's imports and exports it as the component's hooks.
//
// Values have the shapes jco/componentize-js give the contract's types
// (wit/routing.wit): record fields in camelCase, `u64`/`s64` as BigInt, enums
// as lower-case strings, `list<u8>` as Uint8Array, `option<T>` as T or
// undefined, variants as `{ tag, val }`.
//
// Inputs a chat carries: `tier` (0 standard … 3 platinum), `contacts` (repeat
// contacts about the same issue), attribute `basket-value` (the customer's
// current basket, a decimal number) and attribute `language` (an ISO code such
// as `de`: only agents with skill `lang-<code>` may take the chat).

/** Attribute keys and skill prefix the rules read. */
export const BASKET_VALUE = 'basket-value';
export const LANGUAGE = 'language';
export const LANGUAGE_SKILL_PREFIX = 'lang-';

/** Column of the chat channel in a candidate table's `load` matrix (voice, chat, email, case). */
export const CHAT_LOAD_COLUMN = 1;
/** Score an agent loses for each chat already open. */
export const PER_OPEN_CHAT = 25;
/** A vetoed candidate's score. */
export const VETO = -1;

const TIER_NAMES = ['standard', 'silver', 'gold', 'platinum'];

/**
 * One interned name table (skills, queues or attributes), cached. `fetch(first)`
 * returns the names with ids `first, first + 1, …` — in the component it is
 * `host.names(kind, first)`. Tables only grow and ids never change, so the cache
 * asks only for the tail it has not seen.
 */
export class Names {
  constructor(fetch) {
    this.fetch = fetch;
    this.names = [];
    this.ids = new Map();
  }

  refresh() {
    for (const name of this.fetch(this.names.length)) {
      if (!this.ids.has(name)) this.ids.set(name, this.names.length);
      this.names.push(name);
    }
  }

  /** The name of `id`, or undefined if the host never interned it. */
  name(id) {
    if (id >= this.names.length) this.refresh();
    return this.names[id];
  }

  /** The id of `name`, or undefined if the host never interned it. */
  id(name) {
    if (!this.ids.has(name)) this.refresh();
    return this.ids.get(name);
  }
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/**
 * Reads the variable-size parts of an `item-batch`. Attribute values travel
 * concatenated in one UTF-8 string and `attrValueEnds` holds *byte* offsets, so
 * the string is encoded once per batch and sliced as bytes (JavaScript string
 * indices count UTF-16 code units, not bytes).
 */
export class BatchView {
  constructor(batch, attributeNames) {
    this.batch = batch;
    this.rows = batch.rows;
    this.attributeNames = attributeNames;
    this.values = encoder.encode(batch.attrValues);
  }

  /** The attributes of `row` as a Map from name to value. */
  attributes(row) {
    const { attrKeys, attrValueEnds } = this.batch;
    const out = new Map();
    for (let i = row.attrStart; i < row.attrStart + row.attrCount; i++) {
      const start = i > 0 ? attrValueEnds[i - 1] : 0;
      const name = this.attributeNames.name(attrKeys[i]);
      if (name !== undefined) out.set(name, decoder.decode(this.values.subarray(start, attrValueEnds[i])));
    }
    return out;
  }

  /** The required skills of `row` as `{ skill, level }` records. */
  skills(row) {
    return this.batch.skills.slice(row.skillStart, row.skillStart + row.skillCount);
  }
}

/** Points for the basket value, in bands; absent or malformed counts as 0. */
export function basketPoints(raw) {
  const value = Number.parseFloat(raw ?? '');
  if (!Number.isFinite(value)) return 0;
  if (value >= 500) return 40;
  if (value >= 150) return 25;
  if (value >= 50) return 10;
  return 0;
}

/** Points for repeat contacts: a repeat is a failed first-contact resolution. */
export function repeatPoints(contacts) {
  return 15 * Math.min(Math.max(contacts - 1, 0), 3);
}

/**
 * One `priority` record per chat, in batch order: 20 points per tier step,
 * basket bands (10/25/40 from 50/150/500) and 15 per repeat contact (up to 3).
 */
export function prioritise(view) {
  return view.rows.map((row) => {
    const attrs = view.attributes(row);
    const basket = attrs.get(BASKET_VALUE);
    const priority = 20 * row.tier + basketPoints(basket) + repeatPoints(row.contacts);
    const tier = TIER_NAMES[row.tier] ?? `tier ${row.tier}`;
    const parts = [tier, `basket ${basket ?? 'none'}`];
    if (row.contacts > 1) parts.push(`contact ${row.contacts}`);
    return { priority, queue: undefined, reason: parts.join(', ') };
  });
}

/**
 * Rank the candidates for the single chat in `view` (a batch of one).
 *
 * Hard requirements veto a candidate (score -1): the skill `lang-<language>`
 * when the chat has a `language` attribute, and every required skill at its
 * minimum level. The others score 100, minus 25 per chat they already hold,
 * plus up to 10 for idle time (one point per idle minute) — the agent with the
 * fewest open chats wins, the longest idle breaks ties.
 */
export function matchAgents(view, candidates, skillNames) {
  const n = candidates.agentIds.length;
  const k = candidates.skillColumns.length;
  const row = view.rows[0];
  if (row === undefined) return { tag: 'ranked', val: [] };

  const column = (skill) => {
    for (let j = 0; j < k; j++) if (candidates.skillColumns[j] === skill) return j;
    return -1;
  };
  // Every hard requirement as [column, minimum level]; a missing column vetoes all.
  const requirements = view.skills(row).map(({ skill, level }) => [column(skill), level]);
  const language = view.attributes(row).get(LANGUAGE)?.trim().toLowerCase();
  if (language) {
    const skill = skillNames.id(LANGUAGE_SKILL_PREFIX + language);
    requirements.push([skill === undefined ? -1 : column(skill), 1]);
  }

  const scores = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const qualified = requirements.every(
      ([j, level]) => j >= 0 && candidates.proficiency[i * k + j] >= level,
    );
    if (!qualified) {
      scores[i] = VETO;
      continue;
    }
    const chats = candidates.load[i * 4 + CHAT_LOAD_COLUMN];
    const idleMinutes = Number(candidates.idleMs[i]) / 60_000;
    scores[i] = 100 - PER_OPEN_CHAT * chats + Math.min(idleMinutes, 10);
  }
  return { tag: 'scores', val: scores };
}
